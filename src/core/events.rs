//! Every state change is an event a caller can subscribe to (logs, metrics, alerts).

use serde::Serialize;

use super::classify::Outcome;

/// One thing that happened in the pool. Serialized with a `type` tag and camelCase fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PoolEvent {
    /// An attempt is about to be sent on `key_id`.
    Request { key_id: String, attempt: u32, method: String },
    /// The request completed with a response handed back to the caller.
    Success { key_id: String, status: u16, attempts: u32, elapsed_ms: u64 },
    /// `from_key_id` failed through its own fault; the request moves to `to_key_id`, or to none
    /// (`null`: no key could serve at once, so it waits or ends).
    Failover { from_key_id: String, to_key_id: Option<String>, reason: Outcome, attempt: u32 },
    /// A key was put to rest until `until_ms` (epoch ms), or out of rotation (`until_ms` absent).
    Cooldown { key_id: String, reason: Outcome, until_ms: Option<u64> },
    /// A cooling key is back in rotation.
    Recovered { key_id: String },
    /// The request waits `delay_ms` before trying again.
    Retry { attempt: u32, reason: String, delay_ms: u64 },
    /// A response body served by `key_id` broke off before its end.
    StreamError { key_id: String },
}

/// Events gathered while the pool is borrowed, emitted once the borrow is released
/// (a listener may call back into the client).
pub(super) type EventBuffer = Vec<PoolEvent>;
