//! Typed errors. None of them can hold a key value: they are built from ids, fields and
//! host messages that have been passed through [`super::secret::redact`].

use std::fmt;

/// A config that cannot be used, naming the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {field} {problem}")]
pub struct ConfigError {
    /// Path of the offending field, such as `keys[2].value`.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }

    /// The same error for a value that sits under `prefix` (an argument name, say).
    pub fn within(&self, prefix: &str) -> Self {
        let field = match self.field.as_str() {
            "config" => prefix.to_owned(),
            f if f.starts_with('[') => format!("{prefix}{f}"),
            f => format!("{prefix}.{f}"),
        };
        Self { field, problem: self.problem.clone() }
    }

    /// Turns a serde error into one that names the field, in the words of the JS ecosystem
    /// ("expected a whole number between 0 and 100, got -1") rather than serde's ("expected
    /// u32"). Values under `keys` and `default_headers` are never quoted: they may be secrets.
    pub fn from_serde<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> Self {
        let path = err.path().to_string();
        let field = if path == "." || path.is_empty() { "config".to_owned() } else { path };
        let inner = err.into_inner().to_string();
        let (field, problem) = super::wording::describe(&field, &inner);
        Self { field, problem }
    }
}

/// Why a request failed without an upstream response to hand back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// The configuration (or a key added at run time) is not usable.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// The request itself is not acceptable (path leaving the upstream origin, bad header, …).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No key can serve now. `retry_at_ms` is when the earliest one returns (epoch ms), if any will.
    #[error("no healthy keys: {}", describe_retry(*.retry_at_ms))]
    NoHealthyKeys { retry_at_ms: Option<u64> },
    /// The upstream could not be reached (after the retries allowed).
    #[error("network error on key {key_id}: {message}")]
    Network { key_id: String, message: String },
    /// An attempt took longer than `request_timeout_ms` (after the retries allowed).
    #[error("timed out after {after_ms} ms on key {key_id}")]
    Timeout { key_id: String, after_ms: u64 },
    /// A key id given to a management call does not exist.
    #[error("unknown key id `{0}`")]
    UnknownKey(String),
}

fn describe_retry(at: Option<u64>) -> String {
    match at {
        Some(ms) => format!("the earliest key returns at {} (epoch ms {ms})", format_epoch_ms(ms)),
        None => "every key is invalid or disabled".to_owned(),
    }
}

/// Last millisecond of 9999-12-31, the latest time RFC 3339 (and humantime) can write.
const LATEST_FORMATTABLE_MS: u64 = 253_402_300_799_999;

/// An epoch-ms time as RFC 3339, for any `u64`: humantime panics past year 9999, so a later
/// time is written as that bound with a `+` (the core caps outside times far below it).
pub fn format_epoch_ms(ms: u64) -> String {
    let shown = ms.min(LATEST_FORMATTABLE_MS);
    let text = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(shown)).to_string();
    if ms > shown {
        format!("{text}+")
    } else {
        text
    }
}

impl PoolError {
    /// A short machine-readable name for the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PoolError::InvalidConfig(_) => "invalid_config",
            PoolError::InvalidRequest(_) => "invalid_request",
            PoolError::NoHealthyKeys { .. } => "no_healthy_keys",
            PoolError::Network { .. } => "network",
            PoolError::Timeout { .. } => "timeout",
            PoolError::UnknownKey(_) => "unknown_key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_retry_time_formats_without_panicking() {
        for ms in [0, 1, 1_717_200_000_000, LATEST_FORMATTABLE_MS, LATEST_FORMATTABLE_MS + 1, 9e15 as u64, u64::MAX] {
            let text = PoolError::NoHealthyKeys { retry_at_ms: Some(ms) }.to_string();
            assert!(text.contains(&format!("epoch ms {ms}")), "{text}");
        }
        assert_eq!(format_epoch_ms(u64::MAX), "9999-12-31T23:59:59.999Z+");
    }
}
