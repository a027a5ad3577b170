//! Keep-alives sent through Graph JSON batching: `POST {graph}/{version}/$batch` with up to 20
//! keep-alive requests, one HTTP exchange instead of twenty.
//!
//! Whether Graph accepts keepAlive inside a batch is unconfirmed, so everything falls back to the
//! single keep-alive path (`client::keep_alive_from`, with the full retry and 401 policy): a batch
//! that fails as a whole (transport error, a non-2xx status, a body that is not a batch answer, no
//! answer within half the client timeout) sends its items singly, and so does an item without an
//! answer. An item's own answer is taken as the answer a single request would get only when it is
//! a verdict about the call: 2xx, 404 or 403 are final, 401 renews the token, 429, 503 and 504
//! wait their `Retry-After` and are retried singly. Any other answer (400, 405, 500, ...) may be
//! about the batch rather than the call, so the item is sent again singly and that answer is
//! the item's.
//!
//! When an item answered with a client error (a 4xx other than 401, 403, 404, 429) gets a
//! different answer as a single request, this Graph (endpoint and API version) refuses batched
//! keep-alives: the process stops batching keep-alives to it (see [`refuses_batched_keep_alive`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use once_cell::sync::Lazy;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::{bearer, graph_error, header_map, keep_alive_from, read_bounded, shown_header_value, Answered, MAX_RESPONSE_BYTES};
use super::retry::{Class, ItemAnswer};
use super::{encode_segment, ApiVersion, AttemptRecord, KeepAliveOptions, KeepAliveSuccess};
use crate::auth::Secret;
use crate::error::CoreError;
use crate::runtime::http_client_for;
use crate::session::Session;

/// Graph's limit of requests in one `$batch`.
pub(crate) const MAX_BATCH_REQUESTS: usize = 20;

/// The Graphs (`{endpoint}/{version}`) found to refuse keep-alives inside a batch, for the
/// process's life: a Graph does not start accepting them within a process's lifetime, and a new
/// connection to another cloud or emulator is another key.
static REFUSING_GRAPHS: Lazy<Mutex<HashSet<String>>> = Lazy::new(|| Mutex::new(HashSet::new()));

fn graph_key(graph_endpoint: &str, api_version: ApiVersion) -> String {
    format!("{}/{}", graph_endpoint.trim_end_matches('/'), api_version.as_str())
}

/// Whether this process has found that the Graph at `graph_endpoint` refuses keep-alives inside a
/// JSON batch for `api_version`; then bulk keep-alives to it are single requests.
pub fn refuses_batched_keep_alive(graph_endpoint: &str, api_version: ApiVersion) -> bool {
    REFUSING_GRAPHS.lock().unwrap_or_else(|p| p.into_inner()).contains(&graph_key(graph_endpoint, api_version))
}

/// What a bulk keep-alive to a Graph that refuses batched keep-alives says (once, with -Verbose).
pub fn refusal_note(graph_endpoint: &str, api_version: ApiVersion) -> String {
    format!(
        "Microsoft Graph at {} ({}) answered keep-alives inside a JSON batch ($batch) differently from the same \
         keep-alives sent alone: this process sends its keep-alives as single requests.",
        graph_endpoint.trim_end_matches('/'),
        api_version.as_str()
    )
}

fn record_refusal(graph_endpoint: &str, api_version: ApiVersion) {
    REFUSING_GRAPHS.lock().unwrap_or_else(|p| p.into_inner()).insert(graph_key(graph_endpoint, api_version));
}

/// How a batch item's own answer is used: the retry classifier decides.
fn item_answer(status: u16) -> ItemAnswer {
    Class::of_status(status).batch_item()
}

/// Whether an item answered `batch_status` in a batch and `single` alone shows that Graph refuses
/// batched keep-alives: a client error in the batch (not a verdict, not throttling) that the same
/// keep-alive alone does not get. Server errors (5xx) and a single request without an answer
/// (timeout, transport) prove nothing.
fn shows_refusal(batch_status: u16, single: &Result<KeepAliveSuccess, CoreError>) -> bool {
    if !(400..500).contains(&batch_status) || item_answer(batch_status) != ItemAnswer::Resend {
        return false;
    }
    match single {
        Ok(_) => true,
        Err(CoreError::Graph(g)) => g.http_status != batch_status,
        Err(_) => false,
    }
}

/// One keep-alive to send: its position in the caller's list, its call id and its URL.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub index: usize,
    pub call_id: String,
    pub url: reqwest::Url,
}

/// Splits `count` items into the fewest batches of at most [`MAX_BATCH_REQUESTS`], as even as
/// possible (45 → 15, 15, 15), so no batch is a small straggler. Returns the batch sizes.
pub fn batch_sizes(count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let batches = count.div_ceil(MAX_BATCH_REQUESTS);
    let (base, extra) = (count / batches, count % batches);
    (0..batches).map(|i| base + usize::from(i < extra)).collect()
}

/// Keeps `items` (at most [`MAX_BATCH_REQUESTS`]) alive with one `$batch` request, sent while
/// `permit` is held; single requests that follow (fallbacks, retries) each take their own permit
/// from `permits`. Returns every item's outcome, tagged with its index. Dropping the future
/// aborts everything it started.
pub async fn keep_alive_batch(
    session: Arc<Session>,
    items: Vec<BatchItem>,
    options: Arc<KeepAliveOptions>,
    permit: OwnedSemaphorePermit,
    permits: Arc<Semaphore>,
) -> Vec<super::ItemOutcome> {
    let started = Instant::now();
    // One fresh client-request-id per item, as a single request would have.
    let request_ids: Vec<String> = items.iter().map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut token = None;
    // The batch gets half the client timeout: a batch answers only when its slowest item does, so
    // a hung item must not cost its batch-mates their keep-alive; they go singly in the other half.
    let batch_timeout = options.timeout / 2;
    let exchange = tokio::time::timeout(batch_timeout, exchange(&session, &items, &request_ids, &options, batch_timeout, &mut token)).await;
    let elapsed = started.elapsed();
    drop(permit);

    let mut answers = Vec::with_capacity(items.len());
    // Items to send singly: with their batch answer when the retry policy takes it as attempt 1,
    // or with the status of a batch answer that is not theirs to keep.
    let mut singles: Vec<(BatchItem, Option<Answered>, Option<u16>)> = Vec::new();
    match exchange {
        Ok(Ok(mut answer)) => {
            for (position, (item, sent_request_id)) in items.into_iter().zip(&request_ids).enumerate() {
                // No answer for this item: it is sent on its own.
                let Some(response) = answer.responses.remove(&(position + 1).to_string()) else {
                    singles.push((item, None, None));
                    continue;
                };
                let headers = item_headers(&answer.headers, &response, sent_request_id);
                let kind = item_answer(response.status);
                if kind == ItemAnswer::Success {
                    answers.push((item.index, Ok(success(&item, response.status, headers, started, elapsed))));
                } else if kind == ItemAnswer::Resend {
                    singles.push((item, None, Some(response.status)));
                } else {
                    let status = StatusCode::from_u16(response.status).expect("checked to be 100-599");
                    let error = graph_error(&item.call_id, status, headers, &response.body);
                    let answered = Answered { error: CoreError::Graph(Box::new(error)), elapsed, token: token.clone() };
                    if kind == ItemAnswer::Verdict {
                        // Final: the policy returns it without a request.
                        let outcome = keep_alive_from(&session, &item.url, &item.call_id, &options, started, Some(answered)).await;
                        answers.push((item.index, outcome.map_err(|e| e.with_call_id(&item.call_id))));
                    } else {
                        singles.push((item, Some(answered), None));
                    }
                }
            }
        }
        // The batch failed as a whole: every item is sent on its own.
        Ok(Err(_)) | Err(_) => singles.extend(items.into_iter().map(|item| (item, None, None))),
    }

    let mut tasks = super::ItemTasks::default();
    for (item, first, batch_status) in singles {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let (session, options) = (session.clone(), options.clone());
        tasks.spawn(vec![(item.index, item.call_id.clone())], async move {
            let _permit = permit;
            let outcome = keep_alive_from(&session, &item.url, &item.call_id, &options, started, first).await;
            if batch_status.is_some_and(|status| shows_refusal(status, &outcome)) {
                record_refusal(&session.environment.graph_endpoint, options.api_version);
            }
            vec![(item.index, outcome.map_err(|e| e.with_call_id(&item.call_id)))]
        });
    }
    while let Some(done) = tasks.join_next().await {
        answers.extend(done);
    }
    answers
}

/// A `$batch` answer: the envelope's headers and each item's answer by request id.
struct BatchAnswer {
    headers: BTreeMap<String, Vec<String>>,
    responses: HashMap<String, ItemResponse>,
}

struct ItemResponse {
    status: u16,
    /// Names in lower case.
    headers: BTreeMap<String, Vec<String>>,
    /// The item's body as bytes: JSON text for an object, the text of a string, empty for null.
    body: Vec<u8>,
}

/// The `$batch` exchange itself. Any error means "send these items singly"; the error's text is
/// not shown to anyone (each item then gets the answer of its own request).
async fn exchange(
    session: &Session,
    items: &[BatchItem],
    request_ids: &[String],
    options: &KeepAliveOptions,
    timeout: Duration,
    token_used: &mut Option<Secret>,
) -> Result<BatchAnswer, CoreError> {
    let client = http_client_for(&options.proxy)?;
    let token = session.token(timeout).await?;
    *token_used = Some(token.clone());
    let extra: Vec<(String, Value)> = options
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "client-request-id")
        .map(|(name, value)| (name.as_str().to_owned(), Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned())))
        .collect();
    let given_request_id = options.headers.get("client-request-id").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let requests: Vec<Value> = items
        .iter()
        .zip(request_ids)
        .enumerate()
        .map(|(position, (item, fresh))| {
            let mut headers: serde_json::Map<String, Value> = extra.iter().cloned().collect();
            headers.insert("client-request-id".into(), Value::String(given_request_id.clone().unwrap_or_else(|| fresh.clone())));
            serde_json::json!({
                "id": (position + 1).to_string(),
                "method": "POST",
                "url": format!("/communications/calls/{}/keepAlive", encode_segment(&item.call_id)),
                "headers": headers,
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "requests": requests })).unwrap_or_default();

    let endpoint = session.environment.graph_endpoint.trim_end_matches('/');
    let url = reqwest::Url::parse(&format!("{endpoint}/{}/$batch", options.api_version.as_str()))
        .map_err(|e| CoreError::invalid("Environment", format!("Cannot build the batch URL: {e}.")))?;
    let authorization = bearer(&token)?;
    let batch_request_id = uuid::Uuid::new_v4().to_string();
    let response = client
        .post(url)
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .header("client-request-id", batch_request_id)
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| CoreError::transport(None, crate::redact::reqwest_error(e)))?;
    let status = response.status();
    let headers = header_map(response.headers());
    if !status.is_success() {
        return Err(CoreError::transport(None, format!("the batch was answered {status}")));
    }
    let body = read_bounded(response).await.map_err(|e| CoreError::transport(None, crate::redact::reqwest_error(e)))?;
    if body.len() >= MAX_RESPONSE_BYTES {
        return Err(CoreError::transport(None, "the batch answer is too large"));
    }
    let json: Value = serde_json::from_slice(&body).map_err(|e| CoreError::transport(None, format!("the batch answer is not JSON: {e}")))?;
    let list = json
        .get("responses")
        .and_then(Value::as_array)
        .ok_or_else(|| CoreError::transport(None, "the batch answer has no responses"))?;
    let mut responses = HashMap::with_capacity(list.len());
    for entry in list {
        // An entry without a usable id or status is skipped: its item is then sent singly.
        let id = match entry.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let Some(status) = entry.get("status").and_then(Value::as_u64).filter(|s| (100..=599).contains(s)) else { continue };
        let mut item_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(map) = entry.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                item_headers.entry(name.to_ascii_lowercase()).or_default().push(shown_header_value(name, &text));
            }
        }
        let body = match entry.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(text)) => text.as_bytes().to_vec(),
            Some(other) => serde_json::to_vec(other).unwrap_or_default(),
        };
        responses.entry(id).or_insert(ItemResponse { status: status as u16, headers: item_headers, body });
    }
    Ok(BatchAnswer { headers, responses })
}

/// An item's response headers: the batch response's (its `request-id`, `date`,
/// `x-ms-ags-diagnostic`: the exchange the item was answered in), without those that describe the
/// batch's own body, overridden by the item's own headers; `client-request-id` is the one sent
/// with the item unless the item's answer names one.
fn item_headers(envelope: &BTreeMap<String, Vec<String>>, item: &ItemResponse, sent_request_id: &str) -> BTreeMap<String, Vec<String>> {
    const BATCH_ONLY: [&str; 5] = ["content-type", "content-length", "transfer-encoding", "content-encoding", "retry-after"];
    let mut headers: BTreeMap<String, Vec<String>> =
        envelope.iter().filter(|(name, _)| !BATCH_ONLY.contains(&name.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    headers.insert("client-request-id".into(), vec![sent_request_id.to_owned()]);
    for (name, values) in &item.headers {
        headers.insert(name.clone(), values.clone());
    }
    headers
}

fn success(
    item: &BatchItem,
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    started: Instant,
    exchange: Duration,
) -> KeepAliveSuccess {
    let first = |name: &str| headers.get(name).and_then(|v| v.first().cloned());
    KeepAliveSuccess {
        call_id: item.call_id.clone(),
        uri: item.url.to_string(),
        http_status: status,
        request_id: first("request-id"),
        client_request_id: first("client-request-id"),
        date: first("date"),
        elapsed_ms: started.elapsed().as_millis() as u64,
        attempts: 1,
        attempt_log: vec![AttemptRecord {
            attempt: 1,
            status: Some(status),
            error: None,
            elapsed_ms: exchange.as_millis() as u64,
            wait_ms: None,
            retry_after: None,
            http: None,
        }],
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_at_most_twenty_and_even() {
        assert_eq!(batch_sizes(0), Vec::<usize>::new());
        assert_eq!(batch_sizes(1), vec![1]);
        assert_eq!(batch_sizes(20), vec![20]);
        assert_eq!(batch_sizes(21), vec![11, 10]);
        assert_eq!(batch_sizes(45), vec![15, 15, 15]);
        assert_eq!(batch_sizes(512).len(), 26);
        for n in 1..500 {
            let sizes = batch_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert_eq!(sizes.len(), n.div_ceil(MAX_BATCH_REQUESTS));
            assert!(sizes.iter().all(|&s| (1..=MAX_BATCH_REQUESTS).contains(&s)));
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn item_headers_take_the_exchange_ids_and_the_item_own() {
        let envelope: BTreeMap<String, Vec<String>> = [
            ("request-id", "r-batch"),
            ("client-request-id", "c-batch"),
            ("content-type", "application/json"),
            ("content-length", "99"),
            ("date", "d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
        .collect();
        let item = ItemResponse { status: 429, headers: [("retry-after".to_owned(), vec!["2".to_owned()])].into(), body: Vec::new() };
        let h = item_headers(&envelope, &item, "c-item");
        assert_eq!(h["request-id"], ["r-batch"]);
        assert_eq!(h["client-request-id"], ["c-item"]);
        assert_eq!(h["retry-after"], ["2"]);
        assert!(!h.contains_key("content-type") && !h.contains_key("content-length"));
    }
}
