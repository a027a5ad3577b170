//! No leaks at the ABI over 10,000 calls: the exports are driven in-process (so this binary's
//! counting allocator sees every allocation of the library) against the emulator, and the bytes
//! still allocated after a warm-up and after 10,000 more calls are compared.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::atomic::{AtomicIsize, Ordering};

use graph_emulator::{spawn_blocking_runtime, Config};
use mgkeepalive::ffi::*;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(p, layout)
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(p, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// One round of every kind of call a host makes, each answer freed as documented.
fn round(active: &CString, ended: &CString, identity: &CString) {
    unsafe {
        let mut out: *mut c_char = ptr::null_mut();
        assert_eq!(mgka_keep_alive_by_id(active.as_ptr(), ptr::null(), &mut out), MgkaStatus::Ok);
        mgka_string_free(out);
        out = ptr::null_mut();
        assert_eq!(mgka_keep_alive_by_id(ended.as_ptr(), ptr::null(), &mut out), MgkaStatus::GraphError);
        mgka_string_free(out);
        out = ptr::null_mut();
        assert_eq!(mgka_keep_alive_by_identity(identity.as_ptr(), ptr::null(), &mut out), MgkaStatus::Ok);
        mgka_string_free(out);
        out = ptr::null_mut();
        assert_eq!(mgka_keep_alive_by_id(c"..".as_ptr(), ptr::null(), &mut out), MgkaStatus::InvalidArgument);
        mgka_string_free(out);
        let mut handle = 0;
        assert_eq!(mgka_keep_alive_by_id_start(active.as_ptr(), ptr::null(), &mut handle), MgkaStatus::Ok);
        out = ptr::null_mut();
        while mgka_operation_wait(handle, 100, &mut out) == MgkaStatus::Pending {}
        mgka_string_free(out);
        assert_eq!(mgka_keep_alive_by_id_start(active.as_ptr(), ptr::null(), &mut handle), MgkaStatus::Ok);
        mgka_operation_cancel(handle);
        out = ptr::null_mut();
        mgka_context(&mut out);
        mgka_string_free(out);
    }
}

#[test]
fn ten_thousand_calls_leak_nothing() {
    let emu = spawn_blocking_runtime(Config::default()).unwrap();
    emu.set_log_capacity(0);
    let env = CString::new(format!(r#"{{"name":"Leaks","azureADEndpoint":"{0}","graphEndpoint":"{0}"}}"#, emu.base_url())).unwrap();
    let token = b"leak-test-token";
    unsafe {
        assert_eq!(mgka_environment_add(env.as_ptr(), ptr::null_mut()), MgkaStatus::Ok);
        let request = c"{\"authType\":\"AccessToken\",\"environment\":\"Leaks\"}";
        assert_eq!(mgka_connect(request.as_ptr(), token.as_ptr(), token.len(), ptr::null_mut()), MgkaStatus::Ok);
    }
    let active = CString::new(emu.create_call(None)).unwrap();
    let ended_id = emu.create_call(None);
    emu.end_call(&ended_id);
    let ended = CString::new(ended_id).unwrap();
    let identity = CString::new(format!(r#"{{"CallId":"{}"}}"#, active.to_str().unwrap())).unwrap();

    // Warm-up: the runtime, the client, its connection pool and the emulator reach steady state.
    for _ in 0..200 {
        round(&active, &ended, &identity);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = live();
    let rounds = 10_000 / 6; // six ABI calls that answer per round // six ABI calls that answer per round // six ABI calls that answer per round // six ABI calls that answer per round
    for _ in 0..rounds {
        round(&active, &ended, &identity);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let growth = live() - before;
    println!("live heap growth over {} calls: {growth} bytes", rounds * 6);
    // Pools and caches move by tens of KiB either way; a leak of 26 bytes per call would not fit.
    assert!(growth < 256 * 1024, "live heap grew by {growth} bytes over 10,000 calls");
    assert_eq!(mgkeepalive::ffi::outstanding_operations(), 0, "every operation handle was released");
}
