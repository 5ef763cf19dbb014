//! What a response means for its key: the decision table of the behaviour contract (README).
//!
//! Decided from the status, the provider's error body (OpenAI, Anthropic, Gemini, Groq shapes)
//! and the rate-limit headers, as a pure function so every provider shape is unit-tested.

use http::HeaderMap;
use serde_json::Value;

use super::limits::{clamp_delay, parse_go_duration, read_limits, LimitsReport};

/// How much of an error body is read to classify it.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The verdict on one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 1xx–3xx: hand it back.
    Success,
    /// The key is over a short-term limit: cool it briefly and use another key now.
    RateLimited,
    /// The key's quota or credit is used up: cool it for `cooldown_seconds`.
    QuotaExhausted,
    /// The key is rejected (revoked, mistyped): take it out of rotation.
    InvalidKey,
    /// The provider is overloaded (529, 503): retry later, the key is not at fault.
    Overloaded,
    /// Any other 5xx: retry, the key is not at fault.
    ServerError,
    /// The request is too large for any key (429 "Request too large", 413): fail fast.
    TooLarge,
    /// Any other 4xx: the caller's mistake; returned at once, no retry, no penalty.
    ClientError,
}

impl Outcome {
    /// The name used in status, events and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RateLimited => "rate_limited",
            Outcome::QuotaExhausted => "quota_exhausted",
            Outcome::InvalidKey => "invalid_key",
            Outcome::Overloaded => "overloaded",
            Outcome::ServerError => "server_error",
            Outcome::TooLarge => "too_large",
            Outcome::ClientError => "client_error",
        }
    }

    /// A failure that is the key's own: switch keys at once.
    pub fn is_key_fault(self) -> bool {
        matches!(self, Outcome::RateLimited | Outcome::QuotaExhausted | Outcome::InvalidKey)
    }

    /// A failure worth retrying with a wait (the upstream, not the key, is unwell).
    pub fn is_transient(self) -> bool {
        matches!(self, Outcome::Overloaded | Outcome::ServerError)
    }
}

/// The verdict plus what the response said about the key's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub outcome: Outcome,
    pub limits: LimitsReport,
}

/// The error fields providers use, flattened from their various shapes.
#[derive(Default)]
struct ProviderError {
    /// OpenAI `error.code`/`error.type`, Anthropic `error.type`, Gemini `error.status`, details' `reason`s.
    codes: Vec<String>,
    message: String,
    /// Gemini `QuotaFailure` quota ids.
    quota_ids: Vec<String>,
    /// Gemini `RetryInfo.retryDelay`.
    retry_delay_ms: Option<u64>,
}

fn push_str(out: &mut Vec<String>, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        out.push(s.to_ascii_lowercase());
    }
}

/// Parses an error body of any shape. Only the first [`ERROR_BODY_LIMIT`] bytes are read, and
/// serde_json stops at 128 levels of nesting, so no body can exhaust memory or the stack.
fn parse_provider_error(body: &[u8]) -> ProviderError {
    let body = body.get(..ERROR_BODY_LIMIT).unwrap_or(body);
    let mut pe = ProviderError::default();
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        pe.message = String::from_utf8_lossy(body).to_ascii_lowercase();
        return pe;
    };
    let err = json.get("error").unwrap_or(&json);
    if let Some(msg) = err.get("message").and_then(Value::as_str) {
        pe.message = msg.to_ascii_lowercase();
    } else if let Some(msg) = err.as_str() {
        pe.message = msg.to_ascii_lowercase();
    }
    for field in ["code", "type", "status"] {
        push_str(&mut pe.codes, err.get(field));
    }
    for detail in err.get("details").and_then(Value::as_array).into_iter().flatten() {
        push_str(&mut pe.codes, detail.get("reason"));
        for v in detail.get("violations").and_then(Value::as_array).into_iter().flatten() {
            push_str(&mut pe.quota_ids, v.get("quotaId"));
        }
        if let Some(delay) = detail.get("retryDelay").and_then(Value::as_str) {
            pe.retry_delay_ms = parse_go_duration(delay).map(clamp_delay);
        }
    }
    pe
}

impl ProviderError {
    fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }
    fn says(&self, words: &str) -> bool {
        self.message.contains(words)
    }
    fn per_day_quota(&self) -> bool {
        self.quota_ids.iter().any(|q| q.contains("perday") || q.contains("per_day") || q.contains("daily"))
    }
    fn quota_wording(&self) -> bool {
        [
            "insufficient_quota",
            "quota exceeded",
            "exceeded your current quota",
            "billing",
            "credit balance",
            "insufficient balance",
            "out of credits",
        ]
        .iter()
        .any(|w| self.says(w))
    }
}

/// Classifies a response. `body` is the (bounded) error body; pass `&[]` for successes.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now_ms: u64) -> Classification {
    let mut limits = read_limits(headers, now_ms);
    if status < 400 {
        return Classification { outcome: Outcome::Success, limits };
    }
    let pe = parse_provider_error(body);
    if limits.retry_after_ms.is_none() {
        limits.retry_after_ms = pe.retry_delay_ms;
    }
    let outcome = match status {
        401 => Outcome::InvalidKey,
        402 => Outcome::QuotaExhausted,
        413 => Outcome::TooLarge,
        429 => classify_429(&pe),
        529 | 503 => Outcome::Overloaded,
        500..=599 => match pe.has_code("overloaded_error") {
            true => Outcome::Overloaded,
            false => Outcome::ServerError,
        },
        // Gemini answers a bad key with 400 API_KEY_INVALID; Anthropic's empty balance is a 400.
        400 if pe.has_code("api_key_invalid") || pe.says("api key not valid") => Outcome::InvalidKey,
        400 | 403 if pe.says("credit balance is too low") || pe.has_code("insufficient_quota") => Outcome::QuotaExhausted,
        403 if pe.has_code("authentication_error") || pe.has_code("invalid_api_key") => Outcome::InvalidKey,
        _ => Outcome::ClientError,
    };
    Classification { outcome, limits }
}

fn classify_429(pe: &ProviderError) -> Outcome {
    if pe.says("request too large") || pe.has_code("request_too_large") {
        return Outcome::TooLarge;
    }
    if pe.has_code("insufficient_quota") {
        return Outcome::QuotaExhausted;
    }
    // Gemini says "exceeded your current quota" even for a per-minute limit: the quota id decides.
    if !pe.quota_ids.is_empty() {
        return if pe.per_day_quota() { Outcome::QuotaExhausted } else { Outcome::RateLimited };
    }
    if pe.has_code("rate_limit_exceeded") || pe.has_code("rate_limit_error") {
        return Outcome::RateLimited;
    }
    if pe.quota_wording() {
        return Outcome::QuotaExhausted;
    }
    Outcome::RateLimited
}
