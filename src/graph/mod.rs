//! The Graph client: keep-alive requests, call-id encoding, identities and Graph's error answers.

mod batch;
mod call_id;
mod client;
mod identity;
mod item_tasks;
mod options;
mod retry;

pub use batch::{batch_sizes, keep_alive_batch, refusal_note, refuses_batched_keep_alive, BatchItem};
pub use call_id::{encode_segment, keep_alive_url, validate_call_id, validate_segment, MAX_CALL_ID_BYTES};
pub use client::{keep_alive, reason_phrase, KeepAliveSuccess, MAX_RESPONSE_BYTES};
pub(crate) use batch::MAX_BATCH_REQUESTS;
pub(crate) use client::read_bounded;
pub use identity::call_id_from_identity_json;
pub use item_tasks::{ItemOutcome, ItemTasks};
pub use options::{ApiVersion, KeepAliveOptions};
pub use retry::{backoff, is_retryable_status, parse_retry_after, retry_after, retry_wait, AttemptRecord, Class, HttpTrace, ItemAnswer, KeeperVerdict};
