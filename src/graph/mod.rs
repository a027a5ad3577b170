//! The Graph client: keep-alive requests (single, batched, bulk and streamed), call-id encoding,
//! identities and Graph's error answers.

mod attempt_text;
mod batch;
mod bulk;
mod call_id;
mod client;
mod identity;
mod item_tasks;
mod options;
mod retry;
pub mod stream;

pub use attempt_text::dotnet_status_name;
pub(crate) use attempt_text::serialize as serialize_attempt_log;
pub use batch::{batch_sizes, keep_alive_batch, refusal_note, refuses_batched_keep_alive, BatchItem};
pub use call_id::{encode_segment, keep_alive_url, validate_call_id, validate_segment, MAX_CALL_ID_BYTES};
pub use client::{keep_alive, reason_phrase, KeepAliveSuccess, MAX_RESPONSE_BYTES};
pub(crate) use batch::MAX_BATCH_REQUESTS;
pub(crate) use client::read_bounded;
pub use bulk::{batching_applies, keep_alive_each, keep_alive_many_in, BulkAnswers, BulkItem, MAX_BULK_CONCURRENCY};
pub use identity::{call_id_from_identity_json, resolve_item, PipedItem, PropertyValue, ResolvedItem, MISSING_CALL_ID, MISSING_CALL_ID_PARAMETER};
pub use item_tasks::{ItemOutcome, ItemTasks};
pub use options::{ApiVersion, KeepAliveOptions};
pub use retry::{backoff, is_retryable_status, parse_retry_after, retry_after, retry_wait, AttemptRecord, Class, HttpTrace, ItemAnswer, KeeperVerdict};
