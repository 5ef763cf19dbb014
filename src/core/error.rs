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

    /// Turns a serde error into one that names the field. The problem text is serde's, which
    /// quotes unexpected values; values under `keys` are not quoted, since they may be secrets.
    pub fn from_serde<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> Self {
        let path = err.path().to_string();
        let field = if path == "." || path.is_empty() { "config".to_owned() } else { path };
        let inner = err.into_inner().to_string();
        let problem = if field.starts_with("keys") { scrub_quoted(&inner) } else { inner };
        Self { field, problem }
    }
}

/// Serde quotes offending string values as `"…"`; under `keys` such a value may be a secret.
fn scrub_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            inside = !inside;
            out.push_str(if inside { "\"<redacted>" } else { "\"" });
        } else if !inside {
            out.push(c);
        }
    }
    out
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
        Some(ms) => format!(
            "the earliest key returns at {} (epoch ms {ms})",
            humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        ),
        None => "every key is invalid or disabled".to_owned(),
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
