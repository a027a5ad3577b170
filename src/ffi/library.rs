//! The library itself: its version, freeing the strings it hands out, URL redaction for hosts.

use std::ffi::{c_char, CString};

use super::boundary::{guard, respond, str_arg, to_json};
use super::MgkaStatus;

/// The library version, e.g. "0.1.0". A static string: do NOT free it. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_version() -> *const c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// The library version, e.g. "0.1.0", as NUL-terminated text in data: the same text as
/// `mgka_version()`, readable by symbol lookup right after loading, without calling into the
/// library (the PowerShell module checks it on import this way). Read-only.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mgka_version_string: [c_char; 16] = version_bytes(concat!(env!("CARGO_PKG_VERSION"), "\0"));

const fn version_bytes(text: &str) -> [c_char; 16] {
    let bytes = text.as_bytes();
    assert!(bytes.len() <= 16, "the version string must fit in 16 bytes");
    let mut out = [0 as c_char; 16];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i] as c_char;
        i += 1;
    }
    out
}

/// Frees a string returned by this library. NULL is a no-op. Each string must be freed once.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mgka_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = guard(|| {
            drop(CString::from_raw(s));
            MgkaStatus::Ok
        });
    }
}

/// `url` as messages may show it: everything between the scheme's `://` and the last `@` (a
/// user name and password) replaced by `***`, whatever the text holds, URL or not.
/// `*out_json`: the result as a JSON string, e.g. `"http://***@proxy:3128"`. The one redaction
/// the library applies to every URL in its own messages; hosts use it for the URLs they print
/// (proxies, endpoints) rather than their own. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `url` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_url_redact(url: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&crate::redact::url(str_arg(url, "url")?)))
}

/// Panics inside the boundary on purpose, so tests can prove a panic becomes `MGKA_STATUS_PANIC`.
/// Built only with the `test-hooks` feature; not in the header.
///
/// # Safety
/// `out_json` is NULL or writable.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub unsafe extern "C" fn mgka_test_panic(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || panic!("forced panic for a test"))
}
