//! Piped items and keep-alive streams: the identity rule (`mgka_identity_resolve`) and streamed
//! bulk keep-alives (`mgka_keep_alive_stream_*`). Items come in as UTF-16 (pointer + length, as
//! .NET holds strings): the library checks them for NUL and lone surrogates, the host encodes
//! nothing.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{answer, catch, guard, optional_str_arg, respond, write_string, Failure};
use super::error::core_error_json;
use super::MgkaStatus;
use crate::error::CoreError;
use crate::graph::stream::{self, Next, Pushed, StreamAnswer, StreamSettings};
use crate::graph::{resolve_item, KeepAliveOptions, PipedItem, PropertyValue};

/// Item kind: a string piped as it is. `text` is the string: a JSON identity when its first
/// non-blank character is `{`, refused when it is a JSON array, else the call id itself.
pub const MGKA_ITEM_TEXT: u32 = 0;
/// Item kind: a call id given as such (`-CallId`); `text` is taken as it is.
pub const MGKA_ITEM_CALL_ID: u32 = 1;
/// Item kind: an object or dictionary; `text` is its `CallId` value and `id` its `Id` value as
/// text (NULL: absent or null). The first non-empty one names the call.
pub const MGKA_ITEM_PROPERTIES: u32 = 2;
/// `not_text` flag (MGKA_ITEM_PROPERTIES): the `CallId` value has no text form; `text` is its
/// type's name (such as `Hashtable`). The item is refused, naming that type.
pub const MGKA_ITEM_CALL_ID_NOT_TEXT: u32 = 1;
/// `not_text` flag (MGKA_ITEM_PROPERTIES): likewise for the `Id` value, given in `id`.
pub const MGKA_ITEM_ID_NOT_TEXT: u32 = 2;

/// The call a piped item names, by the identity rule that the keep-alive and keeper commands share
/// (see MGKA_ITEM_TEXT, MGKA_ITEM_CALL_ID, MGKA_ITEM_PROPERTIES). `text`/`text_len` and
/// `id`/`id_len` are UTF-16 code units (not NUL-terminated; NULL only with length 0).
/// `*out_json`: `{"callId":"...","verbatim":true|false}` (verbatim: the call id is `text` itself),
/// or the error: `InvalidArgument` with parameter `InputObject` (an invalid identity: a JSON
/// array, invalid JSON, a CallId that is not a string), `InputObject.CallId` (the item names no
/// call: "InputObject has null value for InputObject.CallId"), or `CallId`/`InputObject` for text
/// that holds NUL or a lone surrogate. The call id itself is checked when it is sent. Caller frees
/// `*out_json`. Thread-safe.
///
/// # Safety
/// `text` points to `text_len` readable code units (or is NULL with 0), likewise `id`;
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_identity_resolve(
    kind: u32,
    text: *const u16,
    text_len: usize,
    id: *const u16,
    id_len: usize,
    not_text: u32,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    respond(out_json, || {
        let (text, id) = item_texts(kind, text, text_len, id, id_len)?;
        let resolved = piped_item(kind, &text, &id, not_text).and_then(resolve_item)?;
        Ok(serde_json::json!({ "callId": resolved.call_id, "verbatim": resolved.verbatim }).to_string())
    })
}

/// Opens a keep-alive stream: `options_json` as for `mgka_keep_alive_by_id` (NULL: defaults),
/// `stream_json` NULL or `{"concurrency":32,"details":false,"notes":false}` (concurrency 1–256,
/// default 32: requests in flight at most; details: every success is answered with its result,
/// else successes are counted; notes: notes for the user, such as that this Graph refuses batched
/// keep-alives, are answered once), optionally with `"given":["HttpPipelineAppend",...]` (the ignored compatibility parameters
/// the user gave: HttpPipelineAppend, HttpPipelinePrepend, ProxyCredential without -Proxy,
/// ProxyUseDefaultCredentials). On success `*out_json` is NULL, or `{"warnings":["..."]}` when
/// the command has something to warn about (an ignored parameter; once per process, the
/// connected cloud when Microsoft does not document keepAlive there for this API version). Push items with `mgka_keep_alive_stream_push`, read answers
/// with `mgka_keep_alive_stream_next`, end with `mgka_keep_alive_stream_finish`, and always
/// release the handle with `mgka_keep_alive_stream_close`. On failure `*out_json` is the error.
/// Thread-safe; one stream is used by one host thread at a time.
///
/// # Safety
/// `options_json` and `stream_json` are NULL or NUL-terminated strings; `out_stream` is writable;
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_stream_open(
    options_json: *const c_char,
    stream_json: *const c_char,
    out_stream: *mut u64,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    if out_stream.is_null() {
        return MgkaStatus::NullPointer;
    }
    let opened = catch(|| {
        let options = match optional_str_arg(options_json, "options_json")? {
            Some(json) => KeepAliveOptions::from_json(json)?,
            None => KeepAliveOptions::default(),
        };
        let settings: StreamJson = match optional_str_arg(stream_json, "stream_json")? {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| CoreError::invalid("ThrottleLimit", format!("The stream settings JSON is invalid: {e}.")))?,
            None => StreamJson::default(),
        };
        let concurrency = settings.concurrency.unwrap_or(32);
        if !(1..=crate::graph::MAX_BULK_CONCURRENCY).contains(&concurrency) {
            return Err(CoreError::invalid("ThrottleLimit", "ThrottleLimit must be between 1 and 256.").into());
        }
        let warnings = stream::warnings(crate::session::keep_alive_warning(options.api_version), &settings.given);
        Ok((stream::open(StreamSettings { options, concurrency, details: settings.details, notes: settings.notes }), warnings))
    });
    match opened {
        Ok((handle, warnings)) => {
            // SAFETY: checked non-NULL above; the caller promised it is writable.
            unsafe { *out_stream = handle };
            if warnings.is_empty() {
                if !out_json.is_null() {
                    // SAFETY: the caller promised it is writable.
                    unsafe { *out_json = std::ptr::null_mut() };
                }
            } else {
                write_string(out_json, serde_json::json!({ "warnings": warnings }).to_string());
            }
            MgkaStatus::Ok
        }
        Err(failure) => answer(out_json, Err(failure)),
    }
}

/// Pushes one piped item (kinds as for `mgka_identity_resolve`) into a stream. The item is
/// resolved and *staged*: ask the user about it, and call `mgka_keep_alive_stream_withdraw` if
/// the answer is no; the next call on the stream commits it. Returns:
/// `MGKA_STATUS_OK`: staged; `*out_call_id` is NULL when the call id is `text` itself, else the
/// call id (UTF-8, caller frees with `mgka_string_free`).
/// `MGKA_STATUS_PENDING`: staged as for OK, and answers of earlier items are due: read them with
/// `mgka_keep_alive_stream_next` until it reports none due before pushing more.
/// `MGKA_STATUS_INVALID_ARGUMENT`: the item is refused (nothing to ask); its error is answered in
/// its place by `mgka_keep_alive_stream_next`. Answers may be due as well: read until none is due.
/// `MGKA_STATUS_INVALID_HANDLE`: no such stream. `*out_call_id` is written only with OK/PENDING.
///
/// # Safety
/// As `mgka_identity_resolve`; `out_call_id` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_stream_push(
    stream: u64,
    kind: u32,
    text: *const u16,
    text_len: usize,
    id: *const u16,
    id_len: usize,
    not_text: u32,
    out_call_id: *mut *mut c_char,
) -> MgkaStatus {
    let pushed = catch(|| {
        let stream = stream::get(stream).ok_or_else(|| unknown(stream))?;
        let texts = item_texts(kind, text, text_len, id, id_len);
        let item = match &texts {
            Ok((text, id)) => piped_item(kind, text, id, not_text),
            Err(Failure::Core(error) | Failure::Named(error, _)) => Err(error.clone()),
            Err(Failure::Abi(status, message)) => return Err(Failure::Abi(*status, message.clone())),
        };
        Ok(stream.push(item)?)
    });
    match pushed {
        Ok((Pushed::Staged { call_id }, due)) => {
            if let Some(call_id) = call_id {
                write_string(out_call_id, call_id);
            }
            if due {
                MgkaStatus::Pending
            } else {
                MgkaStatus::Ok
            }
        }
        Ok((Pushed::Refused, _)) => MgkaStatus::InvalidArgument,
        Err(failure) => answer(std::ptr::null_mut(), Err(failure)),
    }
}

/// Drops the item staged by the last push (the user said no): it is neither sent nor answered.
/// `MGKA_STATUS_OK`, or `MGKA_STATUS_INVALID_HANDLE`. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_keep_alive_stream_withdraw(stream: u64) -> MgkaStatus {
    guard(|| match stream::get(stream) {
        Some(stream) => {
            stream.withdraw();
            MgkaStatus::Ok
        }
        None => MgkaStatus::InvalidHandle,
    })
}

/// No more items: sends what is left; every answer is now due. `MGKA_STATUS_OK`,
/// `MGKA_STATUS_INVALID_HANDLE`, or the error of a chunk that cannot be sent (no runtime).
#[no_mangle]
pub extern "C" fn mgka_keep_alive_stream_finish(stream: u64) -> MgkaStatus {
    guard(|| match stream::get(stream) {
        Some(stream) => match stream.finish() {
            Ok(()) => MgkaStatus::Ok,
            Err(error) => (&error).into(),
        },
        None => MgkaStatus::InvalidHandle,
    })
}

/// Reads the next answers in input order, waiting up to `timeout_ms` for a due one (keep it
/// short to stay interruptible). `MGKA_STATUS_OK`: `*out_successes` items succeeded, in a row,
/// then, when `*out_json` is not NULL, the next item's answer: `{"ok":true,"result":{...}}`
/// (streams with details), `{"ok":false,"error":{...}}`, or a note `{"note":"..."}` (caller
/// frees). `*out_successes` 0 and `*out_json` NULL: every due answer has been read (after
/// `mgka_keep_alive_stream_finish`: the stream is complete). `MGKA_STATUS_PENDING`: no due answer
/// arrived in time; call again. Otherwise the call failed and `*out_json` holds its error.
///
/// # Safety
/// `out_successes` is writable; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_stream_next(
    stream: u64,
    timeout_ms: u32,
    out_successes: *mut u64,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    if out_successes.is_null() {
        return MgkaStatus::NullPointer;
    }
    let next = catch(|| {
        let stream = stream::get(stream).ok_or_else(|| unknown(stream))?;
        Ok(stream.next(Duration::from_millis(timeout_ms.into()))?)
    });
    let (successes, json) = match next {
        Ok(Next::Pending) => return MgkaStatus::Pending,
        Ok(Next::Drained) => (0, None),
        Ok(Next::Answers { successes, answer }) => (successes, answer.map(answer_json)),
        Err(failure) => return answer(out_json, Err(failure)),
    };
    // SAFETY: checked non-NULL above; the caller promised it is writable.
    unsafe { *out_successes = successes };
    if let Some(json) = json {
        write_string(out_json, json);
    } else if !out_json.is_null() {
        // SAFETY: the caller promised it is writable.
        unsafe { *out_json = std::ptr::null_mut() };
    }
    MgkaStatus::Ok
}

/// The common case in one call: ends the stream as `mgka_keep_alive_stream_finish` does, then
/// waits up to `timeout_ms` (keep it short to stay interruptible) for every answer.
/// `MGKA_STATUS_OK`: every item pushed and not withdrawn succeeded, and the stream counts
/// successes only (opened without details): they are read, the stream is complete (nothing left
/// for `mgka_keep_alive_stream_next`). `MGKA_STATUS_PENDING`: an answer needs showing (a failure,
/// a note, a stream with details) or not every answer arrived in time: nothing is read; read the
/// answers with `mgka_keep_alive_stream_next` as after `mgka_keep_alive_stream_finish`.
/// `MGKA_STATUS_INVALID_HANDLE`: no such stream; otherwise the error of a chunk that cannot be
/// sent (no runtime). A host that pushed one call id asks its user, then calls this: one call
/// sends the keep-alive and, almost always, says it succeeded. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_keep_alive_stream_settle(stream: u64, timeout_ms: u32) -> MgkaStatus {
    guard(|| match stream::get(stream) {
        Some(stream) => match stream.settle(Duration::from_millis(timeout_ms.into())) {
            Ok(Some(_)) => MgkaStatus::Ok,
            Ok(None) => MgkaStatus::Pending,
            Err(error) => (&error).into(),
        },
        None => MgkaStatus::InvalidHandle,
    })
}

/// Cancels what the stream still has under way (its answers are never given) and releases the
/// handle. Call it once per opened stream, also after a complete one. `MGKA_STATUS_OK`, or
/// `MGKA_STATUS_INVALID_HANDLE`. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_keep_alive_stream_close(stream: u64) -> MgkaStatus {
    guard(|| if stream::close(stream) { MgkaStatus::Ok } else { MgkaStatus::InvalidHandle })
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StreamJson {
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    details: bool,
    #[serde(default)]
    notes: bool,
    #[serde(default)]
    given: Vec<String>,
}

fn unknown(stream: u64) -> Failure {
    Failure::Abi(MgkaStatus::InvalidHandle, format!("Keep-alive stream {stream} is unknown or closed."))
}

fn answer_json(answer: StreamAnswer) -> String {
    match answer {
        StreamAnswer::Note(note) => serde_json::json!({ "note": note }),
        StreamAnswer::Item(Ok(success)) => serde_json::json!({ "ok": true, "result": success }),
        StreamAnswer::Item(Err(error)) => serde_json::json!({ "ok": false, "error": core_error_json(&error) }),
    }
    .to_string()
}

/// The item's texts, decoded: lone surrogates and NUL are the item's error (naming `CallId`, or
/// `InputObject` for text that is JSON), a NULL pointer with a length a failure of the call.
unsafe fn item_texts(kind: u32, text: *const u16, text_len: usize, id: *const u16, id_len: usize) -> Result<(Option<String>, Option<String>), Failure> {
    if kind > MGKA_ITEM_PROPERTIES {
        return Err(CoreError::invalid("InputObject", format!("Unknown item kind {kind}.")).into());
    }
    let text_units = units(text, text_len, "text")?;
    let id_units = units(id, id_len, "id")?;
    let parameter = match text_units.and_then(|u| u.iter().copied().find(|c| !char::from_u32((*c).into()).is_some_and(char::is_whitespace))) {
        Some(first) if kind == MGKA_ITEM_TEXT && (first == u16::from(b'{') || first == u16::from(b'[')) => "InputObject",
        _ => "CallId",
    };
    Ok((decode(text_units, parameter)?, decode(id_units, parameter)?))
}

unsafe fn units<'a>(ptr: *const u16, len: usize, name: &str) -> Result<Option<&'a [u16]>, Failure> {
    match (ptr.is_null(), len) {
        (true, 0) => Ok(None),
        (true, _) => Err(Failure::Abi(MgkaStatus::NullPointer, format!("{name} is NULL."))),
        // SAFETY: the caller promised `len` readable code units.
        (false, _) => Ok(Some(unsafe { std::slice::from_raw_parts(ptr, len) })),
    }
}

fn decode(units: Option<&[u16]>, parameter: &'static str) -> Result<Option<String>, Failure> {
    let Some(units) = units else { return Ok(None) };
    let text = String::from_utf16(units)
        .map_err(|_| CoreError::invalid(parameter, format!("The value of {parameter} is not valid Unicode text (it contains a lone surrogate).")))?;
    if text.contains('\0') {
        return Err(CoreError::invalid(parameter, format!("The value of {parameter} contains a NUL character, which cannot be passed on.")).into());
    }
    Ok(Some(text))
}

fn piped_item<'a>(kind: u32, text: &'a Option<String>, id: &'a Option<String>, not_text: u32) -> Result<PipedItem<'a>, CoreError> {
    let value = |value: &'a Option<String>, flag: u32| {
        value.as_deref().map(|v| if not_text & flag != 0 { PropertyValue::NotText(v) } else { PropertyValue::Text(v) })
    };
    Ok(match kind {
        MGKA_ITEM_TEXT => PipedItem::Text(text.as_deref().unwrap_or("")),
        MGKA_ITEM_CALL_ID => PipedItem::CallId(text.as_deref().unwrap_or("")),
        _ => PipedItem::Properties { call_id: value(text, MGKA_ITEM_CALL_ID_NOT_TEXT), id: value(id, MGKA_ITEM_ID_NOT_TEXT) },
    })
}
