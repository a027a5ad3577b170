//! Loads the built cdylib the way a host does (dlopen + symbols) and drives the C ABI:
//! NULLs, invalid UTF-8, identity variants, operations, and the panic boundary.

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use graph_emulator::{spawn_blocking_runtime, Config, EmulatorThread, FaultResponse, FaultScript};
use libloading::{Library, Symbol};
use once_cell::sync::Lazy;

// Status values from include/mgkeepalive.h.
const OK: u32 = 0;
const GRAPH_ERROR: u32 = 1;
const NOT_CONNECTED: u32 = 2;
const INVALID_ARGUMENT: u32 = 3;
const NULL_POINTER: u32 = 4;
const INVALID_UTF8: u32 = 5;
const TIMEOUT: u32 = 7;
const PENDING: u32 = 9;
const INVALID_HANDLE: u32 = 10;
const PANIC: u32 = 12;
const NOT_FOUND: u32 = 13;

/// Far longer than anything below needs, short enough that a hang fails the test instead of CI.
const HANG_BOUND: Duration = Duration::from_secs(30);

type OutJson = *mut *mut c_char;

struct Abi {
    lib: Library,
}

/// The cdylib that cargo built next to this test binary (target/<profile>/deps).
static ABI: Lazy<Abi> = Lazy::new(|| {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.join(format!("{}mgkeepalive{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    let lib = unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    Abi { lib }
});

/// The library has one process-wide session: tests that connect run one at a time.
static SESSION: Mutex<()> = Mutex::new(());

impl Abi {
    fn sym<T>(&self, name: &str) -> Symbol<'_, T> {
        unsafe { self.lib.get(name.as_bytes()) }.unwrap_or_else(|e| panic!("missing export {name}: {e}"))
    }

    fn take(&self, s: *mut c_char) -> String {
        assert!(!s.is_null(), "expected a string");
        let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
        let free: Symbol<unsafe extern "C" fn(*mut c_char)> = self.sym("mgka_string_free");
        unsafe { free(s) };
        text
    }

    /// Calls an export of shape `(…, char **out_json)` and returns (status, parsed JSON).
    fn json_call(&self, f: impl FnOnce(OutJson) -> u32) -> (u32, serde_json::Value) {
        let mut out: *mut c_char = ptr::null_mut();
        let status = f(&mut out);
        let text = self.take(out);
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }

    fn by_id(&self, id: &CStr, options: Option<&CStr>) -> (u32, serde_json::Value) {
        let f: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, OutJson) -> u32> = self.sym("mgka_keep_alive_by_id");
        self.json_call(|out| unsafe { f(id.as_ptr(), options.map_or(ptr::null(), CStr::as_ptr), out) })
    }

    fn by_identity(&self, identity: &str) -> (u32, serde_json::Value) {
        let f: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, OutJson) -> u32> = self.sym("mgka_keep_alive_by_identity");
        let identity = CString::new(identity).unwrap();
        self.json_call(|out| unsafe { f(identity.as_ptr(), ptr::null(), out) })
    }

    fn connect(&self, emu: &EmulatorThread, token: &str) {
        let add: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = self.sym("mgka_environment_add");
        let env = CString::new(format!(
            r#"{{"name":"AbiEmulator","azureADEndpoint":"{0}","graphEndpoint":"{0}"}}"#,
            emu.base_url()
        ))
        .unwrap();
        assert_eq!(self.json_call(|out| unsafe { add(env.as_ptr(), out) }).0, OK);
        let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = self.sym("mgka_connect");
        let (status, context) = self.json_call(|out| unsafe {
            connect(c"{\"authType\":\"AccessToken\",\"environment\":\"AbiEmulator\"}".as_ptr(), token.as_ptr(), token.len(), out)
        });
        assert_eq!(status, OK, "{context}");
        assert_eq!(context["authType"], "UserProvidedAccessToken");
        assert!(!context.to_string().contains(token), "the context never shows the token");
    }
}

fn emulator() -> EmulatorThread {
    spawn_blocking_runtime(Config::default()).unwrap()
}

/// Runs `f` on its own thread and returns its result, failing the test if it has not returned
/// within [`HANG_BOUND`] (the thread is then left behind: the test has failed anyway).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_BOUND).unwrap_or_else(|_| panic!("{what} did not return within {HANG_BOUND:?}"))
}

/// Waits for an operation in short slices, as hosts do; fails the test if it is still pending
/// after [`HANG_BOUND`].
fn collect(abi: &Abi, handle: u64) -> (u32, serde_json::Value) {
    let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_operation_wait");
    let started = Instant::now();
    loop {
        let mut out = ptr::null_mut();
        match unsafe { wait(handle, 50, &mut out) } {
            PENDING => assert!(started.elapsed() < HANG_BOUND, "operation {handle} still pending after {HANG_BOUND:?}"),
            status => break (status, serde_json::from_str(&abi.take(out)).unwrap()),
        }
    }
}

#[test]
fn version_matches_the_crate() {
    let f: Symbol<extern "C" fn() -> *const c_char> = ABI.sym("mgka_version");
    assert_eq!(unsafe { CStr::from_ptr(f()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn null_pointers_are_status_codes() {
    let abi = &*ABI;
    let by_id: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, OutJson) -> u32> = abi.sym("mgka_keep_alive_by_id");
    let (status, err) = abi.json_call(|out| unsafe { by_id(ptr::null(), ptr::null(), out) });
    assert_eq!((status, err["kind"].as_str()), (NULL_POINTER, Some("NullPointer")));
    assert_eq!(unsafe { by_id(ptr::null(), ptr::null(), ptr::null_mut()) }, NULL_POINTER, "NULL out_json is allowed");

    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_by_id_start");
    assert_eq!(unsafe { start(c"x".as_ptr(), ptr::null(), ptr::null_mut()) }, NULL_POINTER);
    let mut handle = 0;
    assert_eq!(unsafe { start(ptr::null(), ptr::null(), &mut handle) }, NULL_POINTER);
    assert_eq!(handle, 0, "no handle is written on failure");

    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = abi.sym("mgka_connect");
    assert_eq!(unsafe { connect(c"{\"authType\":\"AccessToken\"}".as_ptr(), ptr::null(), 5, ptr::null_mut()) }, NULL_POINTER);
    let add: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_add");
    assert_eq!(unsafe { add(ptr::null(), ptr::null_mut()) }, NULL_POINTER);

    let free: Symbol<unsafe extern "C" fn(*mut c_char)> = abi.sym("mgka_string_free");
    unsafe { free(ptr::null_mut()) };
}

#[test]
fn invalid_utf8_is_refused_not_decoded_lossily() {
    let abi = &*ABI;
    let bad = CString::new(vec![b'a', 0xff, 0xfe, b'b']).unwrap();
    let (status, err) = abi.by_id(&bad, None);
    assert_eq!((status, err["kind"].as_str()), (INVALID_UTF8, Some("InvalidUtf8")));
    assert!(err["message"].as_str().unwrap().contains("call_id"));
    let (status, _) = abi.by_id(c"x", Some(&bad));
    assert_eq!(status, INVALID_UTF8);
    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = abi.sym("mgka_connect");
    let token = [0xffu8, 0x00, 0x41];
    let (status, err) = abi.json_call(|out| unsafe { connect(c"{\"authType\":\"AccessToken\"}".as_ptr(), token.as_ptr(), 3, out) });
    assert_eq!(status, INVALID_ARGUMENT, "{err}");
}

#[test]
fn keep_alive_by_id_and_identity_variants() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let id = emu.create_call(Some("abi-call"));

    let (status, ok) = abi.by_id(c"abi-call", None);
    assert_eq!(status, OK, "{ok}");
    assert_eq!((ok["httpStatus"].as_u64(), ok["callId"].as_str()), (Some(200), Some(id.as_str())));
    assert!(ok["headers"]["request-id"][0].is_string());

    for identity in [r#"{"CallId":"abi-call"}"#, r#"{"callId":"abi-call"}"#, r#"{"CALLID":"abi-call","UserId":"u"}"#, r#"{"Id":"abi-call","State":"established"}"#] {
        let (status, json) = abi.by_identity(identity);
        assert_eq!(status, OK, "{identity}: {json}");
    }
    for (identity, needle) in [
        (r#"{"UserId":"u"}"#, "InputObject has null value for InputObject.CallId"),
        (r#"{"CallId":42}"#, "must be a string"),
        ("[\"abi-call\"]", "must be an object"),
        ("{\"CallId\":", "not valid JSON"),
        ("null", "must be an object"),
    ] {
        let (status, err) = abi.by_identity(identity);
        assert_eq!(status, INVALID_ARGUMENT, "{identity}");
        assert_eq!(err["parameter"], "InputObject");
        assert!(err["message"].as_str().unwrap().contains(needle), "{identity}: {err}");
    }
    assert_eq!(emu.requests().len(), 5, "refused identities send nothing");

    emu.end_call(&id);
    let (status, err) = abi.by_id(c"abi-call", None);
    assert_eq!(status, GRAPH_ERROR);
    assert_eq!((err["httpStatus"].as_u64(), err["reason"].as_str()), (Some(404), Some("NotFound")));
    assert_eq!(err["kind"], "GraphError");
    assert_eq!(err["callId"], "abi-call");
    assert!(err["message"].as_str().unwrap().starts_with("[itemNotFound] : "));
    // The error record a host shows: decided by the library, headers named as .NET names them.
    let record = &err["record"];
    assert_eq!((record["errorId"].as_str(), record["category"].as_str(), record["exception"].as_str()), (Some("itemNotFound"), Some("InvalidOperation"), Some("HttpRequest")), "{record}");
    assert_eq!((record["httpStatus"].as_u64(), record["message"].as_str()), (Some(404), err["message"].as_str()));
    let details = record["details"].as_str().unwrap();
    let nl = if cfg!(windows) { "\r\n" } else { "\n" };
    assert!(details.starts_with(&format!("{}{nl}{nl}Status: 404 (NotFound){nl}ErrorCode: itemNotFound{nl}Date: ", err["graphMessage"].as_str().unwrap())), "{details}");
    assert!(details.contains(&format!("{nl}Date                          : ")) && details.contains(&format!("{nl}request-id                    : {}", err["requestId"].as_str().unwrap())), "{details}");
    assert!(!details.to_ascii_lowercase().contains("content-type"), "content headers are left out: {details}");
    assert!(details.ends_with(&format!("{nl}{nl}")));
    assert_eq!(record["recommendedAction"], "See service error codes: https://learn.microsoft.com/graph/errors");
    let names: Vec<&str> = record["properties"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(names, ["ErrorCode", "GraphMessage", "RequestId", "ClientRequestId", "Date", "ResponseHeaders", "ResponseBody", "Attempts", "AttemptLog", "CallId"]);
    assert_eq!(record["properties"][5][1], err["headers"]);

    let (status, err) = abi.by_id(c"..", None);
    assert_eq!((status, err["parameter"].as_str()), (INVALID_ARGUMENT, Some("CallId")));
    let (status, err) = abi.by_id(c"x", Some(c"{\"headers\":{\"Authorization\":\"Bearer stolen\"}}"));
    assert_eq!((status, err["parameter"].as_str()), (INVALID_ARGUMENT, Some("Headers")));

    let text = emu.requests().iter().map(|r| format!("{r:?}")).collect::<String>();
    assert!(text.contains("Bearer abi-token"));

    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    let (status, closed) = abi.json_call(|out| unsafe { disconnect(out) });
    assert_eq!((status, closed["environment"].as_str()), (OK, Some("AbiEmulator")));
    let (status, err) = abi.by_id(c"abi-call", None);
    assert_eq!((status, err["message"].as_str()), (NOT_CONNECTED, Some("Authentication needed. Please call Connect-MgGraph.")));
    let context: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_context");
    let mut out = ptr::null_mut();
    assert_eq!(unsafe { context(&mut out) }, OK);
    assert_eq!(abi.take(out), "null");
}

#[test]
fn operations_wait_in_slices_and_cancel_promptly() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(200).delay_ms(20_000)]));
    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_by_id_start");
    let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_operation_wait");
    let cancel: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_operation_cancel");

    let cid = CString::new(id.clone()).unwrap();
    let mut handle = 0u64;
    assert_eq!(unsafe { start(cid.as_ptr(), ptr::null(), &mut handle) }, OK);
    let mut out: *mut c_char = ptr::null_mut();
    let started = Instant::now();
    assert_eq!(unsafe { wait(handle, 100, &mut out) }, PENDING);
    assert!(out.is_null(), "a pending wait hands back nothing");
    assert!(started.elapsed() < Duration::from_millis(1000));
    let started = Instant::now();
    assert_eq!(cancel(handle), OK);
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(cancel(handle), INVALID_HANDLE);
    assert_eq!(abi.json_call(|out| unsafe { wait(handle, 0, out) }).0, INVALID_HANDLE);
    assert_eq!(abi.json_call(|out| unsafe { wait(u64::MAX, 0, out) }).0, INVALID_HANDLE);

    // The timeout bounds the wait for an answer from a hung server.
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(200).delay_ms(20_000)]));
    assert_eq!(unsafe { start(cid.as_ptr(), c"{\"timeoutMs\":300}".as_ptr(), &mut handle) }, OK);
    let (status, err) = loop {
        let mut out = ptr::null_mut();
        match unsafe { wait(handle, 50, &mut out) } {
            PENDING => continue,
            status => break (status, abi.take(out)),
        }
    };
    assert_eq!(status, TIMEOUT, "{err}");

    // Bad input started as an operation is reported by its wait.
    assert_eq!(unsafe { start(c"..".as_ptr(), ptr::null(), &mut handle) }, OK);
    assert_eq!(abi.json_call(|out| unsafe { wait(handle, 5_000, out) }).0, INVALID_ARGUMENT);
}

#[test]
fn environments_list_and_refuse_insecure_endpoints() {
    let abi = &*ABI;
    let list: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_environment_list");
    let (status, envs) = abi.json_call(|out| unsafe { list(out) });
    assert_eq!(status, OK);
    let names: Vec<&str> = envs.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..4], ["Global", "USGov", "USGovDoD", "China"]);
    let add: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_add");
    let insecure = c"{\"name\":\"Plain\",\"azureADEndpoint\":\"https://login.example\",\"graphEndpoint\":\"http://graph.example\"}";
    let (status, err) = abi.json_call(|out| unsafe { add(insecure.as_ptr(), out) });
    assert_eq!((status, err["parameter"].as_str()), (INVALID_ARGUMENT, Some("GraphEndpoint")));
    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = abi.sym("mgka_connect");
    let (status, _) = abi.json_call(|out| unsafe { connect(c"{\"authType\":\"AccessToken\",\"environment\":\"Nowhere\"}".as_ptr(), b"t".as_ptr(), 1, out) });
    assert_eq!(status, NOT_FOUND);
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_becomes_a_status_and_the_library_stays_usable() {
    let abi = &*ABI;
    let panic: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_test_panic");
    let (status, err) = abi.json_call(|out| unsafe { panic(out) });
    assert_eq!((status, err["kind"].as_str()), (12, Some("Panic")));
    let version: Symbol<extern "C" fn() -> *const c_char> = abi.sym("mgka_version");
    assert!(!version().is_null());
}

#[test]
fn connect_start_reports_entra_errors_through_the_wait() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    emu.register_app("tenant-a", "app-a", "right-secret");
    abi.connect(&emu, "abi-token"); // defines the AbiEmulator environment
    let start: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, *mut u64) -> u32> = abi.sym("mgka_connect_start");
    let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_operation_wait");
    let request = c"{\"authType\":\"ClientSecret\",\"environment\":\"AbiEmulator\",\"tenantId\":\"tenant-a\",\"clientId\":\"app-a\"}";
    let collect = |secret: &[u8]| {
        let mut handle = 0;
        assert_eq!(unsafe { start(request.as_ptr(), secret.as_ptr(), secret.len(), &mut handle) }, OK);
        loop {
            let mut out = ptr::null_mut();
            match unsafe { wait(handle, 50, &mut out) } {
                PENDING => continue,
                status => break (status, serde_json::from_str::<serde_json::Value>(&abi.take(out)).unwrap()),
            }
        }
    };
    let (status, err) = collect(b"wrong-secret");
    assert_eq!(status, 11, "MGKA_STATUS_AUTH_ERROR: {err}");
    assert_eq!(err["errorCodes"][0], 7000215);
    assert!(err["traceId"].is_string() && err["correlationId"].is_string());
    assert!(!err.to_string().contains("wrong-secret"));
    let (status, context) = collect(b"right-secret");
    assert_eq!((status, context["tokenCredentialType"].as_str()), (OK, Some("ClientSecret")));

    let mut handle = 0;
    assert_eq!(unsafe { start(request.as_ptr(), ptr::null(), 3, &mut handle) }, NULL_POINTER, "NULL secret with a length");

    let remove: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_remove");
    assert_eq!(abi.json_call(|out| unsafe { remove(c"AbiEmulator".as_ptr(), out) }).0, INVALID_ARGUMENT, "in use");
    assert_eq!(abi.json_call(|out| unsafe { remove(c"Global".as_ptr(), out) }).0, INVALID_ARGUMENT, "built-in");
    assert_eq!(abi.json_call(|out| unsafe { remove(c"NoSuchCloud".as_ptr(), out) }).0, NOT_FOUND);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    assert_eq!(unsafe { disconnect(ptr::null_mut()) }, OK);
    assert_eq!(abi.json_call(|out| unsafe { remove(c"AbiEmulator".as_ptr(), out) }).0, OK);
}

#[test]
fn urls_are_redacted_by_the_library_for_hosts() {
    let abi = &*ABI;
    let redact: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_url_redact");
    let (status, shown) = abi.json_call(|out| unsafe { redact(c"http://alice:p@ss:w%40rd@127.0.0.1:3128".as_ptr(), out) });
    assert_eq!((status, shown.as_str()), (OK, Some("http://***@127.0.0.1:3128")));
    let (status, shown) = abi.json_call(|out| unsafe { redact(c"https://proxy.example".as_ptr(), out) });
    assert_eq!((status, shown.as_str()), (OK, Some("https://proxy.example")));
    assert_eq!(abi.json_call(|out| unsafe { redact(ptr::null(), out) }).0, NULL_POINTER);
    assert_eq!(abi.json_call(|out| unsafe { redact(c"\xff@x".as_ptr(), out) }).0, INVALID_UTF8);
}

#[test]
fn many_threads_share_the_library_and_one_token_renewal() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    emu.set_log_capacity(100_000);
    abi.connect(&emu, "abi-token"); // defines the environment
    emu.register_app("tenant-t", "app-t", "secret-t");
    // The connect's token is due for renewal one second after it is issued (5-minute margin) ...
    emu.set_token_lifetime(Duration::from_secs(301));
    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = abi.sym("mgka_connect");
    let request = c"{\"authType\":\"ClientSecret\",\"environment\":\"AbiEmulator\",\"tenantId\":\"tenant-t\",\"clientId\":\"app-t\"}";
    assert_eq!(unsafe { connect(request.as_ptr(), b"secret-t".as_ptr(), 8, ptr::null_mut()) }, OK);
    // ... and its renewal lives an hour: however long the 1,000 keep-alives take (a loaded machine),
    // a second token request can only come from threads renewing on their own, not from the
    // renewed token falling due in turn.
    emu.set_token_lifetime(Duration::from_secs(3600));
    let ids: Vec<String> = (0..8).map(|_| emu.create_call(None)).collect();
    std::thread::sleep(Duration::from_millis(1100));

    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let id = CString::new(id.as_str()).unwrap();
            std::thread::spawn(move || {
                for _ in 0..125 {
                    let (status, json) = ABI.by_id(&id, None);
                    assert_eq!(status, OK, "{json}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread failed");
    }
    let log = emu.requests();
    assert_eq!(log.iter().filter(|r| r.kind == "keepAlive").count(), 1000);
    assert_eq!(log.iter().filter(|r| r.kind == "token").count(), 2, "connect plus exactly one renewal");
    // Every keep-alive was sent with a token the emulator accepted (the renewed one once it came).
    assert!(log.iter().filter(|r| r.kind == "keepAlive").all(|r| r.status == Some(200)));
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    assert_eq!(unsafe { disconnect(ptr::null_mut()) }, OK);
}

#[test]
fn bulk_keep_alive_answers_every_item_in_input_order() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let good: Vec<String> = (0..50).map(|_| emu.create_call(None)).collect();
    let ended = emu.create_call(None);
    emu.end_call(&ended);
    let mut items: Vec<serde_json::Value> = good.iter().map(|id| serde_json::json!({"callId": id})).collect();
    items.insert(10, serde_json::json!({"callId": ended}));
    items.insert(20, serde_json::json!({"callId": ".."}));
    items.insert(30, serde_json::json!({"identity": format!(r#"{{"callid":"{}"}}"#, good[0])}));
    items.insert(40, serde_json::json!({"identity": "{\"UserId\":\"u\"}"}));
    let request = CString::new(serde_json::json!({"items": items, "concurrency": 8}).to_string()).unwrap();

    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_bulk_start");
    let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_operation_wait");
    let mut handle = 0;
    assert_eq!(unsafe { start(request.as_ptr(), ptr::null(), &mut handle) }, OK);
    let (status, answers) = loop {
        let mut out = ptr::null_mut();
        match unsafe { wait(handle, 100, &mut out) } {
            PENDING => continue,
            s => break (s, serde_json::from_str::<serde_json::Value>(&abi.take(out)).unwrap()),
        }
    };
    assert_eq!(status, OK);
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 54);
    for (i, answer) in answers.iter().enumerate() {
        match i {
            10 => assert_eq!((answer["ok"].as_bool(), answer["error"]["httpStatus"].as_u64()), (Some(false), Some(404))),
            20 => assert_eq!(answer["error"]["parameter"], "CallId"),
            40 => assert_eq!(answer["error"]["message"], "InputObject has null value for InputObject.CallId"),
            30 => assert_eq!(answer["result"]["callId"], good[0].as_str()),
            _ => assert_eq!(answer["ok"], true, "item {i}: {answer}"),
        }
    }
    // 52 keep-alives to send (refused items send nothing): 3 JSON batches, the 404 final.
    let log = emu.requests();
    assert_eq!(log.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), ["batch"; 3]);
    assert_eq!(log.iter().map(|r| r.items.as_ref().map_or(0, Vec::len)).sum::<usize>(), 52);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

/// Starts a bulk keep-alive with `request` and waits for its (status, answer).
fn bulk(abi: &Abi, request: &serde_json::Value) -> (u32, serde_json::Value) {
    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_bulk_start");
    let wait: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_operation_wait");
    let request = CString::new(request.to_string()).unwrap();
    let mut handle = 0;
    assert_eq!(unsafe { start(request.as_ptr(), ptr::null(), &mut handle) }, OK);
    loop {
        let mut out = ptr::null_mut();
        match unsafe { wait(handle, 100, &mut out) } {
            PENDING => continue,
            s => break (s, serde_json::from_str::<serde_json::Value>(&abi.take(out)).unwrap()),
        }
    }
}

#[test]
fn bulk_keep_alive_takes_plain_call_ids_answers_without_details_and_refuses_both_forms_at_once() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let mut ids: Vec<String> = (0..25).map(|_| emu.create_call(None)).collect();
    ids.insert(3, "..".into());
    let (status, answers) = bulk(abi, &serde_json::json!({"callIds": ids, "concurrency": 2}));
    assert_eq!(status, OK);
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 26);
    for (i, (answer, id)) in answers.iter().zip(&ids).enumerate() {
        if i == 3 {
            assert_eq!((answer["ok"].as_bool(), answer["error"]["parameter"].as_str()), (Some(false), Some("CallId")));
        } else {
            assert_eq!((answer["ok"].as_bool(), answer["result"]["callId"].as_str()), (Some(true), Some(id.as_str())), "item {i}");
        }
    }
    assert_eq!(emu.requests().iter().filter(|r| r.kind == "batch").count(), 2);

    // "details":false: a success is only {"ok":true}; an error keeps its details.
    let ended = emu.create_call(None);
    emu.end_call(&ended);
    let (status, answers) = bulk(abi, &serde_json::json!({"callIds": [ids[0], ended, ids[1]], "details": false}));
    assert_eq!(status, OK);
    assert_eq!(answers[0], serde_json::json!({"ok": true}));
    assert_eq!(answers[2], serde_json::json!({"ok": true}));
    assert_eq!((answers[1]["ok"].as_bool(), answers[1]["error"]["httpStatus"].as_u64(), answers[1]["error"]["callId"].as_str()), (Some(false), Some(404), Some(ended.as_str())));

    emu.clear_requests();
    for refused in [
        serde_json::json!({"callIds": [ids[0]], "items": [{"callId": ids[1]}]}),
        serde_json::json!({"concurrency": 4}),
        serde_json::json!({"callIds": [1, 2]}),
    ] {
        let (status, error) = bulk(abi, &refused);
        assert_eq!((status, error["kind"].as_str(), error["parameter"].as_str()), (INVALID_ARGUMENT, Some("InvalidArgument"), Some("InputObject")), "{refused}");
    }
    assert!(emu.requests().is_empty(), "a refused request sends nothing");
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

/// A blocking `mgka_connect` through the real symbol, with the JSON answer parsed.
fn connect_blocking(request: String, secret: &'static [u8]) -> (u32, serde_json::Value) {
    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = ABI.sym("mgka_connect");
    let request = CString::new(request).unwrap();
    ABI.json_call(|out| unsafe { connect(request.as_ptr(), secret.as_ptr(), secret.len(), out) })
}

#[test]
fn absurd_token_lifetimes_give_a_usable_token_not_a_hang() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token"); // defines the AbiEmulator environment
    emu.register_app("tenant-l", "app-l", "secret-l");
    let call = CString::new(emu.create_call(None)).unwrap();
    let secret_request = r#"{"authType":"ClientSecret","environment":"AbiEmulator","tenantId":"tenant-l","clientId":"app-l","timeoutMs":3000}"#.to_owned();
    let identity_request = format!(
        r#"{{"authType":"ManagedIdentity","environment":"AbiEmulator","managedIdentity":{{"imdsEndpoint":"{}"}},"timeoutMs":3000}}"#,
        emu.base_url()
    );
    // What a broken or hostile token endpoint may announce: beyond Duration, beyond Instant,
    // negative, not a number; the same through refresh_in and a managed identity's expires_on.
    // A lifetime too long to believe keeps the token (capped); one that gives nothing to go on
    // makes it due at once, so the keep-alive renews it first.
    let (keeps, renews) = (true, false);
    let cases = [
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":1e300"#, keeps),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":"inf""#, keeps),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":1e19"#, keeps),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":-5"#, renews),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":"NaN""#, renews),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":3599,"refresh_in":1e300"#, keeps),
        (&secret_request, "/oauth2/v2.0/token", r#""expires_in":3599,"refresh_in":-1e19"#, renews),
        (&identity_request, "/metadata/identity/", r#""expires_on":"1e300""#, keeps),
        (&identity_request, "/metadata/identity/", r#""expires_in":"1e19""#, keeps),
        (&identity_request, "/metadata/identity/", r#""expires_on":"-1e300""#, renews),
    ];
    emu.register_token("abi-lifetime-token", Duration::from_secs(3600));
    for (request, path, lifetime, kept) in cases {
        let body = format!(r#"{{"token_type":"Bearer",{lifetime},"access_token":"abi-lifetime-token"}}"#);
        emu.push_faults(FaultScript::for_path(path, vec![FaultResponse::status(200).body(&body, "application/json")]));
        // The connect's timeout is 3 s: it must return, whatever the lifetime says.
        let request = request.clone();
        let (status, context) = within(&format!("mgka_connect with {lifetime}"), move || connect_blocking(request, b"secret-l"));
        assert_eq!(status, OK, "{lifetime}: {context}");
        let (status, answer) = within(&format!("a keep-alive after {lifetime}"), {
            let call = call.clone();
            move || ABI.by_id(&call, None)
        });
        assert_eq!(status, OK, "{lifetime}: {answer}");
        let sent = emu.requests_for_call(call.to_str().unwrap()).pop().unwrap();
        assert_eq!(sent.headers["authorization"] == "Bearer abi-lifetime-token", kept, "{lifetime}: {}", sent.headers["authorization"]);
    }
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    assert_eq!(unsafe { disconnect(ptr::null_mut()) }, OK);
}

#[test]
fn a_renewal_with_an_absurd_lifetime_does_not_stop_the_keeper() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token"); // defines the AbiEmulator environment
    emu.register_app("tenant-k", "app-k", "secret-k");
    // The first token is due for renewal one second after it is issued (5-minute margin) ...
    emu.set_token_lifetime(Duration::from_secs(301));
    let (status, context) = connect_blocking(
        r#"{"authType":"ClientSecret","environment":"AbiEmulator","tenantId":"tenant-k","clientId":"app-k"}"#.into(),
        b"secret-k",
    );
    assert_eq!(status, OK, "{context}");
    std::thread::sleep(Duration::from_millis(1100));
    // ... and its renewal, made by the keeper's first keep-alive, announces 1e300 seconds.
    let body = r#"{"token_type":"Bearer","expires_in":1e300,"access_token":"abi-renewed-token"}"#;
    emu.register_token("abi-renewed-token", Duration::from_secs(3600));
    emu.push_faults(FaultScript::for_path("/oauth2/v2.0/token", vec![FaultResponse::status(200).body(body, "application/json")]));
    let call = emu.create_call(None);
    let start: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_start");
    let request = CString::new(serde_json::json!({"callIds": [call], "intervalMs": 1000}).to_string()).unwrap();
    assert_eq!(abi.json_call(|out| unsafe { start(request.as_ptr(), out) }).0, OK);
    // Two keep-alives (the first and one an interval later) prove the call is still being kept.
    let started = Instant::now();
    while emu.requests_for_call(&call).len() < 2 {
        assert!(started.elapsed() < HANG_BOUND, "the keeper stopped keeping {call}: {:?}", keeper_list(abi));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(emu.requests_for_call(&call).iter().all(|r| r.headers["authorization"] == "Bearer abi-renewed-token"));
    let listed = keeper_list(abi);
    assert_eq!((listed[0]["state"].as_str(), listed[0]["lastError"].as_str()), (Some("Active"), None), "{listed}");
    let stop: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_stop");
    assert_eq!(unsafe { stop(c"{\"all\":true}".as_ptr(), ptr::null_mut()) }, OK);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    assert_eq!(unsafe { disconnect(ptr::null_mut()) }, OK);
}

fn keeper_list(abi: &Abi) -> serde_json::Value {
    let list: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_list");
    abi.json_call(|out| unsafe { list(ptr::null(), out) }).1
}

/// With `test-hooks`, a keep-alive for a call id starting with this panics inside the library's
/// background work (graph::keep_alive_from), wherever that work runs.
#[cfg(feature = "test-hooks")]
const PANICKING_CALL: &str = "mgka-test-panic";

#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_in_background_work_ends_its_operation_with_the_panic_status() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_by_id_start");
    let id = CString::new(PANICKING_CALL).unwrap();
    let mut handle = 0;
    assert_eq!(unsafe { start(id.as_ptr(), ptr::null(), &mut handle) }, OK);
    let (status, err) = collect(abi, handle);
    assert_eq!((status, err["kind"].as_str(), err["callId"].as_str()), (PANIC, Some("Panic"), Some(PANICKING_CALL)), "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.starts_with("Internal error in MgKeepAlive: ") && message.contains("forced panic"), "{message}");

    // The blocking form answers the same, and the library stays usable.
    let (status, err) = within("a blocking keep-alive that panics", move || ABI.by_id(&id, None));
    assert_eq!((status, err["kind"].as_str()), (PANIC, Some("Panic")), "{err}");
    let good = CString::new(emu.create_call(None)).unwrap();
    assert_eq!(abi.by_id(&good, None).0, OK);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_bulk_item_whose_worker_panicked_gets_a_panic_error_and_the_others_their_answers() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let good: Vec<String> = (0..4).map(|_| emu.create_call(None)).collect();
    let panicking = format!("{PANICKING_CALL}-in-a-batch");
    // Answered 503 inside the batch, the item is retried singly, in a task of its own: that task panics.
    emu.push_faults(FaultScript::for_call(&panicking, vec![FaultResponse::status(503)]));
    let start: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64) -> u32> = abi.sym("mgka_keep_alive_bulk_start");
    for (ids, options) in [
        (vec![good[0].clone(), panicking.clone(), good[1].clone()], c"{}"),
        // Single requests (-Debug): each item is a task of the bulk operation itself.
        (vec![good[2].clone(), PANICKING_CALL.to_owned(), good[3].clone()], c"{\"debug\":true}"),
    ] {
        let request = CString::new(serde_json::json!({"callIds": ids}).to_string()).unwrap();
        let mut handle = 0;
        assert_eq!(unsafe { start(request.as_ptr(), options.as_ptr(), &mut handle) }, OK);
        let (status, answers) = collect(abi, handle);
        assert_eq!(status, OK, "{answers}");
        let answers = answers.as_array().unwrap();
        assert_eq!(answers.len(), 3);
        for (i, answer) in answers.iter().enumerate() {
            if i == 1 {
                let error = &answer["error"];
                assert_eq!((answer["ok"].as_bool(), error["kind"].as_str(), error["callId"].as_str()), (Some(false), Some("Panic"), Some(ids[1].as_str())), "{answer}");
                assert!(error["message"].as_str().unwrap().contains("forced panic"), "{answer}");
            } else {
                assert_eq!((answer["ok"].as_bool(), answer["result"]["callId"].as_str()), (Some(true), Some(ids[i].as_str())), "item {i}: {answer}");
            }
        }
    }
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

#[cfg(feature = "test-hooks")]
#[test]
fn the_keeper_records_a_panic_on_its_call_and_keeps_the_others() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-token");
    let events: Symbol<unsafe extern "C" fn(u64, u32, OutJson) -> u32> = abi.sym("mgka_keeper_events");
    let (_, before) = abi.json_call(|out| unsafe { events(u64::MAX, 0, out) });
    let kept: Vec<String> = (0..3).map(|_| emu.create_call(None)).collect();
    let mut ids = kept.clone();
    ids.insert(1, PANICKING_CALL.to_owned());
    let start: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_start");
    let request = CString::new(serde_json::json!({"callIds": ids, "intervalMs": 1000}).to_string()).unwrap();
    assert_eq!(abi.json_call(|out| unsafe { start(request.as_ptr(), out) }).0, OK);

    // The panicking call ends in an event that says why ...
    let (status, answer) = abi.json_call(|out| unsafe { events(before["lastSeq"].as_u64().unwrap(), HANG_BOUND.as_millis() as u32, out) });
    assert_eq!(status, OK);
    let event = &answer["events"][0];
    assert_eq!((event["callId"].as_str(), event["state"].as_str()), (Some(PANICKING_CALL), Some("Failed")), "{answer}");
    assert!(event["error"].as_str().unwrap().contains("Internal error in MgKeepAlive: forced panic"), "{answer}");
    // ... and the others are kept: each gets a second keep-alive an interval after the first.
    let started = Instant::now();
    while kept.iter().any(|id| emu.requests_for_call(id).len() < 2) {
        assert!(started.elapsed() < HANG_BOUND, "the keeper stopped keeping the other calls: {}", keeper_list(abi));
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = keeper_list(abi);
    for call in listed.as_array().unwrap() {
        if call["callId"] == PANICKING_CALL {
            assert_eq!((call["state"].as_str(), call["attempts"].as_u64(), call["nextDueUnixMs"].as_u64()), (Some("Failed"), Some(1), None), "{call}");
            assert!(call["lastError"].as_str().unwrap().contains("forced panic"), "{call}");
        } else {
            assert_eq!((call["state"].as_str(), call["lastError"].as_str()), (Some("Active"), None), "{call}");
        }
    }
    let stop: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_stop");
    assert_eq!(unsafe { stop(c"{\"all\":true}".as_ptr(), ptr::null_mut()) }, OK);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

#[test]
fn bulk_keep_alive_with_notes_answers_an_object_and_says_when_graph_refuses_batched_keep_alives() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    emu.set_refuse_batched_keep_alive(true);
    abi.connect(&emu, "abi-token");
    let ids: Vec<String> = (0..30).map(|_| emu.create_call(None)).collect();

    // Without "notes": the array alone, every item kept alive (sent again singly).
    let (status, answers) = bulk(abi, &serde_json::json!({"callIds": ids, "details": false}));
    assert_eq!(status, OK);
    assert_eq!(answers, serde_json::json!(vec![serde_json::json!({"ok": true}); 30]));
    assert!(ids.iter().all(|id| emu.call_state(id).unwrap().keep_alive_count == 1));

    // With "notes": {"answers":[...],"notes":[...]}; the refusal is remembered: single requests only.
    emu.clear_requests();
    let (status, answer) = bulk(abi, &serde_json::json!({"callIds": ids, "details": false, "notes": true}));
    assert_eq!(status, OK);
    assert_eq!(answer["answers"], serde_json::json!(vec![serde_json::json!({"ok": true}); 30]));
    let notes = answer["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].as_str().unwrap().contains(&emu.base_url()), "{notes:?}");
    assert!(emu.requests().iter().all(|r| r.kind == "keepAlive" && r.status == Some(200)));
    assert_eq!(emu.requests().len(), 30);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
}

type Push = unsafe extern "C" fn(u64, u32, *const u16, usize, *const u16, usize, u32, OutJson) -> u32;

fn utf16(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

#[test]
fn identity_resolve_applies_the_one_rule_to_every_kind_of_item() {
    let abi = &*ABI;
    let resolve: Symbol<unsafe extern "C" fn(u32, *const u16, usize, *const u16, usize, u32, OutJson) -> u32> = abi.sym("mgka_identity_resolve");
    let text = |kind: u32, a: Option<&[u16]>, b: Option<&[u16]>, flags: u32| {
        abi.json_call(|out| unsafe {
            resolve(kind, a.map_or(ptr::null(), <[u16]>::as_ptr), a.map_or(0, <[u16]>::len), b.map_or(ptr::null(), <[u16]>::as_ptr), b.map_or(0, <[u16]>::len), flags, out)
        })
    };
    let (status, json) = text(0, Some(&utf16("plain-id")), None, 0);
    assert_eq!((status, json["callId"].as_str(), json["verbatim"].as_bool()), (OK, Some("plain-id"), Some(true)));
    let (status, json) = text(0, Some(&utf16(r#" {"cAlLiD":"from-json"}"#)), None, 0);
    assert_eq!((status, json["callId"].as_str(), json["verbatim"].as_bool()), (OK, Some("from-json"), Some(false)));
    let (status, json) = text(0, Some(&utf16(r#"[{"CallId":"x"}]"#)), None, 0);
    assert_eq!((status, json["parameter"].as_str()), (INVALID_ARGUMENT, Some("InputObject")));
    assert!(json["message"].as_str().unwrap().contains("JSON array"));
    let (status, json) = text(0, Some(&utf16(r#"{"other":1}"#)), None, 0);
    assert_eq!((status, json["parameter"].as_str(), json["message"].as_str()), (INVALID_ARGUMENT, Some("InputObject.CallId"), Some("InputObject has null value for InputObject.CallId")));
    let (status, json) = text(1, Some(&utf16("{literal")), None, 0);
    assert_eq!((status, json["callId"].as_str()), (OK, Some("{literal")));
    let (status, json) = text(2, Some(&utf16("")), Some(&utf16("by-id")), 0);
    assert_eq!((status, json["callId"].as_str()), (OK, Some("by-id")), "an empty CallId falls back to Id");
    let (status, json) = text(2, Some(&utf16("Hashtable")), Some(&utf16("by-id")), 1);
    assert_eq!((status, json["message"].as_str()), (INVALID_ARGUMENT, Some("InputObject.CallId must be a string, not Hashtable.")));
    let (status, json) = text(2, None, None, 0);
    assert_eq!((status, json["parameter"].as_str()), (INVALID_ARGUMENT, Some("InputObject.CallId")));
    // Lone surrogates and NUL are refused, never replaced or truncated.
    let (status, json) = text(0, Some(&[u16::from(b'a'), 0xD800, u16::from(b'b')]), None, 0);
    assert_eq!((status, json["parameter"].as_str()), (INVALID_ARGUMENT, Some("CallId")));
    assert!(json["message"].as_str().unwrap().contains("lone surrogate"));
    let (status, json) = text(0, Some(&[u16::from(b'{'), 0xDC00]), None, 0);
    assert_eq!((status, json["parameter"].as_str()), (INVALID_ARGUMENT, Some("InputObject")));
    let (status, json) = text(1, Some(&utf16("a\0b")), None, 0);
    assert_eq!((status, json["message"].as_str()), (INVALID_ARGUMENT, Some("The value of CallId contains a NUL character, which cannot be passed on.")));
    // A NULL pointer with a length is a misuse of the ABI, not an item's error.
    let (status, _) = abi.json_call(|out| unsafe { resolve(0, ptr::null(), 3, ptr::null(), 0, 0, out) });
    assert_eq!(status, NULL_POINTER);
}

/// Reads a stream to its end: (successes counted, answers with JSON), in order.
fn read_stream(abi: &Abi, stream: u64) -> Vec<Result<u64, serde_json::Value>> {
    let next: Symbol<unsafe extern "C" fn(u64, u32, *mut u64, OutJson) -> u32> = abi.sym("mgka_keep_alive_stream_next");
    let mut read = Vec::new();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < HANG_BOUND, "the stream never completed");
        let (mut ok, mut out) = (0u64, ptr::null_mut());
        match unsafe { next(stream, 50, &mut ok, &mut out) } {
            PENDING => continue,
            OK => {}
            other => panic!("next failed: {other}"),
        }
        if ok > 0 {
            read.push(Ok(ok));
        }
        if out.is_null() {
            if ok == 0 {
                return read;
            }
        } else {
            read.push(Err(serde_json::from_str(&abi.take(out)).unwrap()));
        }
    }
}

#[test]
fn a_stream_takes_items_one_at_a_time_and_answers_in_input_order() {
    let _session = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "stream-token");
    let open: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64, OutJson) -> u32> = abi.sym("mgka_keep_alive_stream_open");
    let push: Symbol<Push> = abi.sym("mgka_keep_alive_stream_push");
    let withdraw: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_withdraw");
    let finish: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_finish");
    let close: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_close");
    let good: Vec<String> = (0..1100).map(|_| emu.create_call(None)).collect();
    let ended = emu.create_call(None);
    emu.end_call(&ended);

    let mut stream = 0;
    let mut out = ptr::null_mut();
    assert_eq!(unsafe { open(ptr::null(), c"{\"concurrency\":8}".as_ptr(), &mut stream, &mut out) }, OK);
    let push_text = |text: &str, out: &mut *mut c_char| {
        let units = utf16(text);
        unsafe { push(stream, 0, units.as_ptr(), units.len(), ptr::null(), 0, 0, out) }
    };
    let mut due = 0;
    for (i, id) in good.iter().enumerate() {
        let mut call_id = ptr::null_mut();
        let status = match i {
            // An identity names its call id back; a refused item is answered in its place.
            3 => {
                let status = push_text(&format!(r#"{{"id":"{id}"}}"#), &mut call_id);
                assert_eq!(abi.take(call_id), *id);
                status
            }
            _ => push_text(id, &mut call_id),
        };
        assert!(matches!(status, OK | PENDING), "{status}");
        if status == PENDING {
            due += 1;
        }
        if i == 5 {
            assert_eq!(push_text(r#"{"nothing":1}"#, &mut call_id), INVALID_ARGUMENT);
            assert_eq!(push_text(&ended, &mut call_id), OK);
            assert_eq!(push_text("withdrawn", &mut call_id), OK);
            assert_eq!(withdraw(stream), OK, "the user said no");
        }
    }
    assert_eq!(due, 2, "1,102 items are three chunks of 512: two were sent while pushing");
    assert_eq!(finish(stream), OK);
    let answers = read_stream(abi, stream);
    let successes: u64 = answers.iter().filter_map(|a| a.as_ref().ok()).sum();
    assert_eq!(successes, 1100);
    let failures: Vec<&serde_json::Value> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0]["error"]["parameter"], "InputObject.CallId");
    assert_eq!((failures[1]["error"]["httpStatus"].as_u64(), failures[1]["error"]["callId"].as_str()), (Some(404), Some(ended.as_str())));
    // In input order: six successes, then the refused item, then the ended call.
    let flat: Vec<bool> = answers.iter().flat_map(|a| match a { Ok(n) => vec![true; *n as usize], Err(_) => vec![false] }).collect();
    assert_eq!(flat.len(), 1102);
    assert_eq!(flat.iter().position(|ok| !ok), Some(6));
    assert!(!flat[7] && flat[8..].iter().all(|ok| *ok));
    assert_eq!(close(stream), OK);
    assert_eq!(close(stream), INVALID_HANDLE, "a handle is released once");
    let units = utf16("x");
    assert_eq!(unsafe { push(stream, 0, units.as_ptr(), 1, ptr::null(), 0, 0, ptr::null_mut()) }, INVALID_HANDLE);
}

#[test]
fn a_stream_refuses_bad_settings_and_a_single_item_is_a_single_request() {
    let _session = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "stream-token");
    let open: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64, OutJson) -> u32> = abi.sym("mgka_keep_alive_stream_open");
    let push: Symbol<Push> = abi.sym("mgka_keep_alive_stream_push");
    let finish: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_finish");
    let close: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_close");
    let mut stream = 0;
    for refused in [c"{\"concurrency\":0}", c"{\"concurrency\":257}", c"{\"unknown\":1}"] {
        let (status, error) = abi.json_call(|out| unsafe { open(ptr::null(), refused.as_ptr(), &mut stream, out) });
        assert_eq!((status, error["parameter"].as_str()), (INVALID_ARGUMENT, Some("ThrottleLimit")), "{refused:?}");
    }
    let (status, error) = abi.json_call(|out| unsafe { open(c"{\"headers\":{\"Authorization\":\"x\"}}".as_ptr(), ptr::null(), &mut stream, out) });
    assert_eq!((status, error["parameter"].as_str()), (INVALID_ARGUMENT, Some("Headers")));

    let id = emu.create_call(None);
    let mut out = ptr::null_mut();
    assert_eq!(unsafe { open(c"{\"apiVersion\":\"beta\"}".as_ptr(), c"{\"details\":true}".as_ptr(), &mut stream, &mut out) }, OK);
    let units = utf16(&id);
    assert_eq!(unsafe { push(stream, 1, units.as_ptr(), units.len(), ptr::null(), 0, 0, &mut out) }, OK);
    assert!(out.is_null(), "a call id is its own text");
    assert_eq!(finish(stream), OK);
    let answers = read_stream(abi, stream);
    assert_eq!(answers.len(), 1, "with details, a success is answered with its result");
    let answer = answers[0].as_ref().unwrap_err();
    assert_eq!((answer["ok"].as_bool(), answer["result"]["callId"].as_str()), (Some(true), Some(id.as_str())));
    assert!(answer["result"]["uri"].as_str().unwrap().ends_with(&format!("/beta/communications/calls/{id}/keepAlive")));
    assert_eq!(close(stream), OK);
}

#[test]
fn settling_a_stream_answers_plain_successes_in_one_call_and_leaves_the_rest_to_next() {
    let _session = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "settle-token");
    let open: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *mut u64, OutJson) -> u32> = abi.sym("mgka_keep_alive_stream_open");
    let push: Symbol<Push> = abi.sym("mgka_keep_alive_stream_push");
    let withdraw: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_withdraw");
    let settle: Symbol<extern "C" fn(u64, u32) -> u32> = abi.sym("mgka_keep_alive_stream_settle");
    let close: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_keep_alive_stream_close");
    let opened = |settings: &std::ffi::CStr| {
        let (mut stream, mut out) = (0u64, ptr::null_mut());
        assert_eq!(unsafe { open(c"{\"apiVersion\":\"v1.0\",\"environmentProxy\":{}}".as_ptr(), settings.as_ptr(), &mut stream, &mut out) }, OK);
        assert!(out.is_null());
        stream
    };
    let push_id = |stream: u64, id: &str| {
        let units = utf16(id);
        let mut out = ptr::null_mut();
        let status = unsafe { push(stream, 1, units.as_ptr(), units.len(), ptr::null(), 0, 0, &mut out) };
        assert!(out.is_null());
        status
    };

    // One call id that succeeds: settled in one call, one request, nothing left to read.
    let id = emu.create_call(None);
    let stream = opened(c"{}");
    assert_eq!(push_id(stream, &id), OK);
    assert_eq!(settle(stream, 10_000), OK);
    assert_eq!(emu.requests_for_call(&id).len(), 1);
    assert!(read_stream(abi, stream).is_empty(), "a settled stream is complete");
    assert_eq!(settle(stream, 0), OK, "settling again finds nothing more");
    assert_eq!(close(stream), OK);

    // A withdrawn item: nothing is sent, nothing to read.
    let stream = opened(c"{}");
    assert_eq!(push_id(stream, &id), OK);
    assert_eq!(withdraw(stream), OK);
    assert_eq!(settle(stream, 10_000), OK);
    assert_eq!(emu.requests_for_call(&id).len(), 1, "a withdrawn item is not sent");
    assert_eq!(close(stream), OK);

    // A failure is left in the stream, unread, for next.
    let ended = emu.create_call(None);
    emu.end_call(&ended);
    let stream = opened(c"{}");
    assert_eq!(push_id(stream, &ended), OK);
    assert_eq!(settle(stream, 10_000), PENDING);
    let answers = read_stream(abi, stream);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].as_ref().unwrap_err()["error"]["httpStatus"].as_u64(), Some(404));
    assert_eq!(close(stream), OK);

    // A refused item likewise (its error is answered in its place).
    let stream = opened(c"{}");
    assert_eq!(push_id(stream, "a\0b"), INVALID_ARGUMENT);
    assert_eq!(settle(stream, 10_000), PENDING);
    let answers = read_stream(abi, stream);
    assert_eq!(answers[0].as_ref().unwrap_err()["error"]["parameter"].as_str(), Some("CallId"));
    assert_eq!(close(stream), OK);

    // A stream with details answers every success through next.
    let stream = opened(c"{\"details\":true}");
    assert_eq!(push_id(stream, &id), OK);
    assert_eq!(settle(stream, 10_000), PENDING);
    let answers = read_stream(abi, stream);
    assert_eq!(answers[0].as_ref().unwrap_err()["ok"].as_bool(), Some(true));
    assert_eq!(close(stream), OK);

    // No answer within the wait: PENDING after about the wait, never longer; next reads it later.
    let slow = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&slow, vec![FaultResponse::status(200).delay_ms(400)]));
    let stream = opened(c"{}");
    assert_eq!(push_id(stream, &slow), OK);
    let started = Instant::now();
    assert_eq!(settle(stream, 50), PENDING);
    assert!(started.elapsed() < Duration::from_millis(350), "settle waited {:?}", started.elapsed());
    assert_eq!(read_stream(abi, stream), vec![Ok(1)]);
    assert_eq!(close(stream), OK);

    assert_eq!(settle(stream, 0), INVALID_HANDLE, "a closed stream");
    assert_eq!(settle(u64::MAX, 0), INVALID_HANDLE);
}

fn wait_start(abi: &Abi, request: serde_json::Value) -> u64 {
    let start: Symbol<unsafe extern "C" fn(*const c_char, *mut u64) -> u32> = abi.sym("mgka_keeper_wait_start");
    let request = CString::new(request.to_string()).unwrap();
    let mut handle = 0u64;
    assert_eq!(unsafe { start(request.as_ptr(), &mut handle) }, OK);
    handle
}

#[test]
fn the_keeper_answers_not_kept_calls_per_id_and_waits_as_an_operation_step_by_step() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let emu = emulator();
    abi.connect(&emu, "abi-wait-token");
    let (a, b) = (emu.create_call(None), emu.create_call(None));
    let start: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_start");
    let request = CString::new(serde_json::json!({"callIds": ["..", a, b], "intervalMs": 1000}).to_string()).unwrap();
    let (status, started) = abi.json_call(|out| unsafe { start(request.as_ptr(), out) });
    assert_eq!(status, OK);
    assert_eq!((started[0]["callId"].as_str(), started[0]["error"]["parameter"].as_str()), (Some(".."), Some("CallId")), "{started}");
    assert_eq!(started[0]["error"]["kind"], "InvalidArgument");
    assert_eq!((started[1]["callId"].as_str(), started[1]["state"].as_str()), (Some(a.as_str()), Some("Active")));

    // Named lists and stops answer a call that is not kept with a CallNotKept entry, once.
    let list: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_list");
    let request = CString::new(serde_json::json!({"callIds": [b, "nope", "nope"], "states": ["Ended"]}).to_string()).unwrap();
    let (status, listed) = abi.json_call(|out| unsafe { list(request.as_ptr(), out) });
    assert_eq!(status, OK);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!((listed[0]["callId"].as_str(), listed[0]["error"]["errorId"].as_str()), (Some("nope"), Some("CallNotKept")));
    assert_eq!(listed[0]["error"]["kind"], "NotFound");
    let stop: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keeper_stop");
    let (_, stopped) = abi.json_call(|out| unsafe { stop(c"{\"callIds\":[\"nope\"]}".as_ptr(), out) });
    assert_eq!(stopped[0]["error"]["message"], "Call 'nope' is not kept alive by MgKeepAlive (see Start-MgCommunicationCallKeepAlive).");

    // The first step reports the call that is not kept at once; the next waits for the others.
    let handle = wait_start(abi, serde_json::json!({"callIds": [a, b, "never-kept"], "timeoutMs": 20000}));
    let (status, step) = collect(abi, handle);
    assert_eq!(status, OK, "{step}");
    assert_eq!(step["calls"][0]["error"]["errorId"], "CallNotKept", "{step}");
    let next = step["next"].as_u64().unwrap();
    assert_ne!(next, 0);
    emu.end_call(&a);
    let (status, step) = collect(abi, next);
    assert_eq!(status, OK, "{step}");
    assert_eq!((step["calls"][0]["callId"].as_str(), step["calls"][0]["state"].as_str()), (Some(a.as_str()), Some("Ended")), "{step}");
    let next = step["next"].as_u64().unwrap();
    assert_ne!(next, 0, "b is still kept");
    // A call stopped meanwhile is no longer waited for: a note, and the wait is over.
    let request = CString::new(serde_json::json!({"callIds": [b]}).to_string()).unwrap();
    assert_eq!(unsafe { stop(request.as_ptr(), ptr::null_mut()) }, OK);
    let (status, step) = collect(abi, next);
    assert_eq!(status, OK, "{step}");
    assert_eq!(step["notes"][0], format!("Call '{b}' is no longer kept; not waiting for it."));
    assert_eq!(step["next"], 0);

    // A timeout names the calls still kept, in the host's TimeSpan words.
    let c = emu.create_call(None);
    let request = CString::new(serde_json::json!({"callIds": [c], "intervalMs": 1000}).to_string()).unwrap();
    assert_eq!(abi.json_call(|out| unsafe { start(request.as_ptr(), out) }).0, OK);
    let started = Instant::now();
    let (status, step) = collect(abi, wait_start(abi, serde_json::json!({"callIds": [c], "timeoutMs": 300.0, "any": true})));
    assert_eq!(status, OK, "{step}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(step["timedOut"]["callIds"], serde_json::json!([c]));
    assert_eq!(step["timedOut"]["message"], format!("Timed out after 00:00:00.3000000 waiting for kept calls to end or fail; still kept: {c}."));
    assert_eq!(step["next"], 0);

    // Cancelling a step gives the wait up.
    let handle = wait_start(abi, serde_json::json!({}));
    let cancel: Symbol<extern "C" fn(u64) -> u32> = abi.sym("mgka_operation_cancel");
    assert_eq!(cancel(handle), OK);
    assert_eq!(unsafe { stop(c"{\"all\":true}".as_ptr(), ptr::null_mut()) }, OK);
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    assert_eq!(unsafe { disconnect(ptr::null_mut()) }, OK);
}

#[test]
fn environments_are_set_in_one_step_and_name_their_cloud() {
    let abi = &*ABI;
    let set: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_set");
    let add: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_add");
    let definition = c"{\"name\":\"AbiSet\",\"azureADEndpoint\":\"https://login.set.test\",\"graphEndpoint\":\"https://graph.set.test\"}";
    let (status, added) = abi.json_call(|out| unsafe { add(definition.as_ptr(), out) });
    assert_eq!((status, added["cloud"].as_str()), (OK, Some("Other")));
    // A preview changes nothing and shows endpoints without user info.
    let preview = c"{\"name\":\"abiset\",\"graphEndpoint\":\"https://u:p@graph.microsoft.us\",\"preview\":true}";
    let (status, shown) = abi.json_call(|out| unsafe { set(preview.as_ptr(), out) });
    assert_eq!(status, OK, "{shown}");
    assert_eq!((shown["name"].as_str(), shown["graphEndpoint"].as_str()), (Some("AbiSet"), Some("https://***@graph.microsoft.us")));
    assert_eq!(shown["azureADEndpoint"], "https://login.set.test");
    let (status, changed) = abi.json_call(|out| unsafe { set(c"{\"name\":\"AbiSet\",\"graphEndpoint\":\"https://graph.microsoft.us/\"}".as_ptr(), out) });
    assert_eq!(status, OK, "{changed}");
    assert_eq!((changed["graphEndpoint"].as_str(), changed["azureADEndpoint"].as_str()), (Some("https://graph.microsoft.us"), Some("https://login.set.test")));
    assert_eq!((changed["type"].as_str(), changed["cloud"].as_str()), (Some("User-defined"), Some("USGov")));
    // An endpoint given as null or empty is not given: it keeps its value.
    let (status, kept) = abi.json_call(|out| unsafe { set(c"{\"name\":\"AbiSet\",\"azureADEndpoint\":\"\",\"graphEndpoint\":null}".as_ptr(), out) });
    assert_eq!(status, OK, "{kept}");
    assert_eq!((kept["graphEndpoint"].as_str(), kept["azureADEndpoint"].as_str()), (Some("https://graph.microsoft.us"), Some("https://login.set.test")));
    // Refusals carry the error id hosts show.
    let (status, error) = abi.json_call(|out| unsafe { set(c"{\"name\":\"global\",\"graphEndpoint\":\"https://g.test\"}".as_ptr(), out) });
    assert_eq!((status, error["errorId"].as_str()), (INVALID_ARGUMENT, Some("BuiltInEnvironment")));
    assert_eq!(error["message"], "'Global' is a built-in environment and cannot be changed; add a user-defined one with Add-MgEnvironment.");
    let (status, error) = abi.json_call(|out| unsafe { set(c"{\"name\":\"NoSuchCloud\",\"preview\":true}".as_ptr(), out) });
    assert_eq!((status, error["errorId"].as_str()), (NOT_FOUND, Some("EnvironmentNotFound")));
    assert_eq!(error["message"], "Environment 'NoSuchCloud' was not found; add it with Add-MgEnvironment.");
    let (status, error) = abi.json_call(|out| unsafe { set(c"{\"name\":\"AbiSet\",\"graphEndpoint\":\"http://graph.test\"}".as_ptr(), out) });
    assert_eq!((status, error["parameter"].as_str()), (INVALID_ARGUMENT, Some("GraphEndpoint")));
    let list: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_environment_list");
    let (_, all) = abi.json_call(|out| unsafe { list(out) });
    let clouds: Vec<&str> = all.as_array().unwrap().iter().take(4).map(|e| e["cloud"].as_str().unwrap()).collect();
    assert_eq!(clouds, ["Global", "USGov", "USGovDoD", "China"]);
    let remove: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_remove");
    assert_eq!(unsafe { remove(c"AbiSet".as_ptr(), ptr::null_mut()) }, OK);
}

#[test]
fn the_cloud_warning_comes_from_the_library_once_per_cloud_and_version() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let warning: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_keep_alive_warning");
    let disconnect: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_disconnect");
    unsafe { disconnect(ptr::null_mut()) };
    assert_eq!(abi.json_call(|out| unsafe { warning(c"v1.0".as_ptr(), out) }), (OK, serde_json::Value::Null), "not connected");
    assert_eq!(abi.json_call(|out| unsafe { warning(c"v2".as_ptr(), out) }).0, INVALID_ARGUMENT);
    let add: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_environment_add");
    let china = c"{\"name\":\"AbiChina\",\"azureADEndpoint\":\"https://login.chinacloudapi.cn\",\"graphEndpoint\":\"https://microsoftgraph.chinacloudapi.cn\"}";
    assert_eq!(unsafe { add(china.as_ptr(), ptr::null_mut()) }, OK);
    let connect: Symbol<unsafe extern "C" fn(*const c_char, *const u8, usize, OutJson) -> u32> = abi.sym("mgka_connect");
    let (status, context) = abi.json_call(|out| unsafe {
        connect(c"{\"authType\":\"AccessToken\",\"environment\":\"AbiChina\"}".as_ptr(), b"t".as_ptr(), 1, out)
    });
    assert_eq!((status, context["cloud"].as_str()), (OK, Some("China")), "{context}");
    let (status, text) = abi.json_call(|out| unsafe { warning(c"v1.0".as_ptr(), out) });
    assert_eq!(status, OK);
    assert_eq!(
        text,
        "Microsoft documents call keepAlive (v1.0) as available in the Global, USGov and USGovDoD clouds, not in China; you are \
         connected to the China cloud. MgKeepAlive sends the request anyway; if it fails, check with your cloud's Graph \
         documentation. (This warning is shown once per process.)"
    );
    assert_eq!(abi.json_call(|out| unsafe { warning(c"v1.0".as_ptr(), out) }).1, serde_json::Value::Null, "once per process");
    let (_, beta) = abi.json_call(|out| unsafe { warning(c"beta".as_ptr(), out) });
    assert!(beta.as_str().unwrap().starts_with("Microsoft documents call keepAlive (beta) as available only in the Global cloud;"), "{beta}");
    unsafe { disconnect(ptr::null_mut()) };
}

#[test]
fn the_request_context_speaks_camel_case_milliseconds() {
    let _one = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let abi = &*ABI;
    let get: Symbol<unsafe extern "C" fn(OutJson) -> u32> = abi.sym("mgka_request_context_get");
    let set: Symbol<unsafe extern "C" fn(*const c_char, OutJson) -> u32> = abi.sym("mgka_request_context_set");
    let (status, before) = abi.json_call(|out| unsafe { get(out) });
    assert_eq!(status, OK);
    let keys: Vec<&String> = before.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientTimeoutMs", "maxRetry", "retriesTimeLimitMs", "retryDelayMs"]);
    let (status, changed) = abi.json_call(|out| unsafe { set(c"{\"retryDelayMs\":1500,\"clientTimeoutMs\":42000}".as_ptr(), out) });
    assert_eq!(status, OK);
    assert_eq!((changed["retryDelayMs"].as_u64(), changed["clientTimeoutMs"].as_u64()), (Some(1500), Some(42000)));
    assert_eq!(changed["maxRetry"], before["maxRetry"]);
    for (refused, parameter) in [
        (c"{\"retryDelayMs\":180001}", Some("RetryDelay")),
        (c"{\"clientTimeoutMs\":0}", Some("ClientTimeout")),
        (c"{\"maxRetry\":11}", Some("MaxRetry")),
        (c"{\"ClientTimeout\":20}", Some("RequestContext")),
    ] {
        let (status, error) = abi.json_call(|out| unsafe { set(refused.as_ptr(), out) });
        assert_eq!((status, error["parameter"].as_str()), (INVALID_ARGUMENT, parameter), "{refused:?}: {error}");
    }
    assert_eq!(abi.json_call(|out| unsafe { get(out) }).1["clientTimeoutMs"], 42000, "a refused change changes nothing");
    let restore = CString::new(before.to_string()).unwrap();
    assert_eq!(unsafe { set(restore.as_ptr(), ptr::null_mut()) }, OK);
}

#[test]
fn error_records_for_errors_without_a_record() {
    let abi = &*ABI;
    let record: Symbol<unsafe extern "C" fn(u32, *const c_char, *const c_char, OutJson) -> u32> = abi.sym("mgka_error_record");
    let (status, r) = abi.json_call(|out| unsafe { record(INVALID_HANDLE, ptr::null(), c"Wait".as_ptr(), out) });
    assert_eq!(status, OK);
    assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("InternalInvalidHandle"), Some("NotSpecified"), Some("InvalidOperation")));
    assert_eq!(r["message"], "MgKeepAlive internal error (InvalidHandle): MgKeepAlive: Wait failed (InvalidHandle). Please report it.");
    let info = c"{\"kind\":\"InvalidArgument\",\"parameter\":\"InputObject\",\"message\":\"InputObject.CallId must be a string, not System.Int32.\"}";
    let (status, r) = abi.json_call(|out| unsafe { record(INVALID_ARGUMENT, info.as_ptr(), ptr::null(), out) });
    assert_eq!(status, OK);
    assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("InvalidIdentity"), Some("InvalidArgument"), Some("Argument")));
    assert_eq!((r["properties"].as_array().map(Vec::len), &r["details"]), (Some(0), &serde_json::Value::Null));
    // Without a kind the status names it; an unknown status is named by its value.
    let (_, r) = abi.json_call(|out| unsafe { record(NOT_CONNECTED, c"{}".as_ptr(), c"Get-MgContext".as_ptr(), out) });
    assert_eq!((r["errorId"].as_str(), r["message"].as_str()), (Some("NotConnected"), Some("Authentication needed. Please call Connect-MgGraph.")));
    let (_, r) = abi.json_call(|out| unsafe { record(99, c"not json".as_ptr(), c"X".as_ptr(), out) });
    assert_eq!(r["errorId"], "InternalStatus99");
    // ABI failures carry their record too.
    let (_, r) = abi.json_call(|out| unsafe { record(OK, ptr::null(), [0xffu8, 0].as_ptr().cast(), out) });
    assert_eq!((r["kind"].as_str(), r["record"]["errorId"].as_str()), (Some("InvalidUtf8"), Some("InternalInvalidUtf8")), "{r}");
}
