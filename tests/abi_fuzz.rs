//! Property tests at the C ABI: random bytes, NULLs, invalid UTF-8 and forged handles thrown at
//! every export of the built cdylib. Whatever comes in, each call returns a documented status,
//! and every string it hands out is valid JSON that the library frees.

use std::ffi::{c_char, CStr};
use std::ptr;

use libloading::{Library, Symbol};
use once_cell::sync::Lazy;
use proptest::prelude::*;

type OutJson = *mut *mut c_char;
const LAST_STATUS: u32 = 13;
const PENDING: u32 = 9;

static LIB: Lazy<Library> = Lazy::new(|| {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.join(format!("{}mgkeepalive{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
});

fn sym<T>(name: &str) -> Symbol<'static, T> {
    unsafe { LIB.get(name.as_bytes()) }.unwrap()
}

/// An argument: NULL, or arbitrary bytes (possibly invalid UTF-8) made into a C string.
#[derive(Debug, Clone)]
enum Arg {
    Null,
    Bytes(Vec<u8>),
}

impl Arg {
    fn c_string(&self) -> Option<Vec<u8>> {
        match self {
            Arg::Null => None,
            Arg::Bytes(b) => {
                let mut v: Vec<u8> = b.iter().copied().filter(|&c| c != 0).collect();
                v.push(0);
                Some(v)
            }
        }
    }
}

fn ptr_of(buf: &Option<Vec<u8>>) -> *const c_char {
    buf.as_ref().map_or(ptr::null(), |b| b.as_ptr().cast())
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        1 => Just(Arg::Null),
        3 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Arg::Bytes),
        2 => "[ -~]{0,40}".prop_map(|s| Arg::Bytes(s.into_bytes())),
        2 => prop_oneof![
            Just("{}".to_string()), Just("[]".to_string()), Just("null".to_string()),
            Just(r#"{"CallId":"x"}"#.to_string()), Just(r#"{"authType":"AccessToken"}"#.to_string()),
            Just(r#"{"name":"X","azureADEndpoint":"ftp://a","graphEndpoint":"https://g"}"#.to_string()),
            Just(r#"{"headers":{"Authorization":"x"}}"#.to_string()), Just("{\"maxRetry\":99}".to_string()),
        ].prop_map(|s| Arg::Bytes(s.into_bytes())),
    ]
}

/// Checks the status and the JSON answer, frees it, and returns the status.
fn check(status: u32, out: *mut c_char) -> u32 {
    assert!(status <= LAST_STATUS, "undocumented status {status}");
    if !out.is_null() {
        let text = unsafe { CStr::from_ptr(out) }.to_str().expect("answers are UTF-8").to_owned();
        let free: Symbol<unsafe extern "C" fn(*mut c_char)> = sym("mgka_string_free");
        unsafe { free(out) };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        if status != 0 {
            assert!(json["kind"].is_string() && json["message"].is_string(), "error JSON: {text}");
        }
    }
    status
}

fn out_slot(want: bool, slot: &mut *mut c_char) -> OutJson {
    if want { slot } else { ptr::null_mut() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn string_exports_never_crash(a in arg(), b in arg(), want_out in any::<bool>()) {
        let (a, b) = (a.c_string(), b.c_string());
        let two: [&str; 5] =
            ["mgka_keep_alive_by_id", "mgka_keep_alive_by_identity", "mgka_environment_add", "mgka_request_context_set", "mgka_url_redact"];
        for name in two {
            let mut out = ptr::null_mut();
            let status = if name.starts_with("mgka_keep_alive") {
                let f: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, OutJson) -> u32> = sym(name);
                unsafe { f(ptr_of(&a), ptr_of(&b), out_slot(want_out, &mut out)) }
            } else {
                let f: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = sym(name);
                unsafe { f(ptr_of(&a), out_slot(want_out, &mut out)) }
            };
            check(status, out);
        }
        let remove: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = sym("mgka_environment_remove");
        let mut out = ptr::null_mut();
        check(unsafe { remove(ptr_of(&a), out_slot(want_out, &mut out)) }, out);
    }

    #[test]
    fn started_operations_always_finish_or_cancel(a in arg(), b in arg(), cancel in any::<bool>()) {
        let (a, b) = (a.c_string(), b.c_string());
        let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = sym("mgka_operation_wait");
        let cancel_fn: Symbol<extern "C" fn(u64) -> u32> = sym("mgka_operation_cancel");
        for name in ["mgka_keep_alive_by_id_start", "mgka_keep_alive_by_identity_start"] {
            let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = sym(name);
            let mut handle = 0u64;
            let status = unsafe { start(ptr_of(&a), ptr_of(&b), &mut handle) };
            prop_assert!(status <= LAST_STATUS);
            if status != 0 {
                prop_assert_eq!(handle, 0);
                continue;
            }
            if cancel {
                prop_assert!(matches!(cancel_fn(handle), 0 | 10));
                continue;
            }
            // Not connected (this process never connects): every operation ends quickly.
            let final_status = loop {
                let mut out = ptr::null_mut();
                match unsafe { wait(handle, 1000, &mut out) } {
                    PENDING => continue,
                    s => break check(s, out),
                };
            };
            prop_assert_ne!(final_status, 0);
        }
    }

    #[test]
    fn connect_with_random_requests_and_secrets(a in arg(), secret in proptest::collection::vec(any::<u8>(), 0..48), null_secret in any::<bool>()) {
        let a = a.c_string();
        let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = sym("mgka_connect");
        let mut out = ptr::null_mut();
        let (p, n) = if null_secret { (ptr::null(), secret.len()) } else { (secret.as_ptr(), secret.len()) };
        let status = check(unsafe { connect(ptr_of(&a), p, n, &mut out) }, out);
        if status == 0 {
            // A random request that happens to be valid: leave the process unconnected again.
            let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = sym("mgka_disconnect");
            prop_assert_eq!(unsafe { disconnect(ptr::null_mut()) }, 0);
        }
    }

    #[test]
    fn forged_handles_are_refused(handle in any::<u64>(), timeout in 0u32..5) {
        let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = sym("mgka_operation_wait");
        let cancel: Symbol<extern "C" fn(u64) -> u32> = sym("mgka_operation_cancel");
        let mut out = ptr::null_mut();
        prop_assert_eq!(check(unsafe { wait(handle, timeout, &mut out) }, out), 10);
        prop_assert_eq!(cancel(handle), 10);
    }
}

#[test]
fn answer_only_exports_accept_null_out() {
    for name in ["mgka_environment_list", "mgka_context", "mgka_disconnect", "mgka_request_context_get"] {
        let f: Symbol<unsafe extern "C" fn(OutJson) -> u32> = sym(name);
        assert_eq!(unsafe { f(ptr::null_mut()) }, 0, "{name}");
        let mut out = ptr::null_mut();
        assert_eq!(check(unsafe { f(&mut out) }, out), 0, "{name}");
    }
}
