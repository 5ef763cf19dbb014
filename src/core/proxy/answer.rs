//! The proxy's own answers: error kind → HTTP status, the JSON error body, and the retry
//! headers of a no-healthy-keys answer.

use serde_json::json;

/// The longest wait an SDK is asked to sit out by itself. openai and @anthropic-ai/sdk honour a
/// `retry-after` of up to a minute; past that they would sleep on a longer one (or ignore it),
/// so such an answer says `x-should-retry: false` and lets the caller decide.
pub const SDK_RETRY_HORIZON_MS: u64 = 60_000;

/// A `retry-after` is never more than this (30 days), whatever the pool reports.
const RETRY_AFTER_MAX_S: u64 = 30 * 24 * 3600;

/// One error answer, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    /// Extra headers besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// `{"error":{"type":kind,"message":…}}`.
    pub body: String,
}

/// The HTTP status for an error kind: the pool's kinds (`PoolError::kind`) and the proxy's own.
pub fn status_for(kind: &str) -> u16 {
    match kind {
        "invalid_request" | "invalid_key" => 400,
        "unauthorized" => 401,
        "not_found" | "unknown_key" => 404,
        "method_not_allowed" => 405,
        "payload_too_large" => 413,
        "no_healthy_keys" => 503,
        "network" => 502,
        "timeout" => 504,
        // A route this gateway cannot serve (key admin across per-request WASI instances).
        "not_supported" => 501,
        // `invalid_config` is the proxy's own config: the operator's fault, not the caller's.
        _ => 500,
    }
}

/// The answer for an error of `kind`. `message` must hold no key value (pool errors never do).
/// For `no_healthy_keys`, `retry_at_ms` (epoch ms) is when the first key returns, if one will.
pub fn error_answer(kind: &str, message: &str, retry_at_ms: Option<u64>, now_ms: u64) -> ErrorAnswer {
    let mut status = status_for(kind);
    let mut headers = Vec::new();
    match kind {
        "unauthorized" => headers.push(("www-authenticate", "Bearer".to_owned())),
        "no_healthy_keys" => {
            let wait_ms = retry_at_ms.map(|at| at.saturating_sub(now_ms));
            match wait_ms {
                Some(ms) if ms <= SDK_RETRY_HORIZON_MS => {
                    status = 429;
                    headers.push(("retry-after", ms.div_ceil(1000).max(1).to_string()));
                    headers.push(("x-should-retry", "true".to_owned()));
                }
                Some(ms) => {
                    headers.push(("retry-after", ms.div_ceil(1000).min(RETRY_AFTER_MAX_S).to_string()));
                    headers.push(("x-should-retry", "false".to_owned()));
                }
                None => headers.push(("x-should-retry", "false".to_owned())),
            }
        }
        _ => {}
    }
    let body = json!({ "error": { "type": kind, "message": message } }).to_string();
    ErrorAnswer { status, headers, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_one_status_each() {
        let table = [
            ("invalid_request", 400),
            ("invalid_key", 400),
            ("unauthorized", 401),
            ("unknown_key", 404),
            ("not_found", 404),
            ("method_not_allowed", 405),
            ("payload_too_large", 413),
            ("network", 502),
            ("timeout", 504),
            ("not_supported", 501),
            ("invalid_config", 500),
            ("something_new", 500),
        ];
        for (kind, status) in table {
            assert_eq!(status_for(kind), status, "{kind}");
        }
    }

    #[test]
    fn the_body_is_one_shape() {
        let a = error_answer("timeout", "timed out after 5 ms on key a", None, 0);
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v, json!({ "error": { "type": "timeout", "message": "timed out after 5 ms on key a" } }));
        assert_eq!(error_answer("unauthorized", "no", None, 0).headers, vec![("www-authenticate", "Bearer".to_owned())]);
    }

    #[test]
    fn no_healthy_keys_says_when_and_whether_to_retry() {
        let soon = error_answer("no_healthy_keys", "m", Some(10_500), 1_000);
        assert_eq!(soon.status, 429);
        assert_eq!(soon.headers, vec![("retry-after", "10".to_owned()), ("x-should-retry", "true".to_owned())]);
        let now = error_answer("no_healthy_keys", "m", Some(900), 1_000);
        assert_eq!(now.headers[0], ("retry-after", "1".to_owned()));
        let late = error_answer("no_healthy_keys", "m", Some(3_600_000 + 1_000), 1_000);
        assert_eq!(late.status, 503);
        assert_eq!(late.headers, vec![("retry-after", "3600".to_owned()), ("x-should-retry", "false".to_owned())]);
        let far = error_answer("no_healthy_keys", "m", Some(u64::MAX), 0);
        assert_eq!(far.headers[0], ("retry-after", RETRY_AFTER_MAX_S.to_string()));
        let never = error_answer("no_healthy_keys", "m", None, 0);
        assert_eq!((never.status, never.headers), (503, vec![("x-should-retry", "false".to_owned())]));
    }
}
