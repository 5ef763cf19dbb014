//! Pool config from `POOLSWITCH_*` environment variables.

use poolswitch::core::{ConfigError, KeyConfig, PoolConfig, Strategy};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(name: &str, field: &str) -> Result<Option<T>, ConfigError> {
    match var(name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::new(field, format!("{name} is not a number"))),
    }
}

/// `POOLSWITCH_KEYS`: a comma list of values, or a JSON array in any key format.
fn keys() -> Result<Vec<KeyConfig>, ConfigError> {
    let raw = var("POOLSWITCH_KEYS").ok_or_else(|| ConfigError::new("keys", "POOLSWITCH_KEYS is not set"))?;
    if raw.trim_start().starts_with('[') {
        // Errors name the position only: the text may hold key values.
        return serde_json::from_str(&raw).map_err(|e| {
            ConfigError::new("keys", format!("POOLSWITCH_KEYS is not a valid JSON key list (line {}, column {})", e.line(), e.column()))
        });
    }
    Ok(raw.split(',').map(str::trim).filter(|k| !k.is_empty()).map(KeyConfig::plain).collect())
}

/// Reads the whole config; the error names the field.
pub fn from_env() -> Result<PoolConfig, ConfigError> {
    let base = var("POOLSWITCH_UPSTREAM_BASE_URL")
        .ok_or_else(|| ConfigError::new("upstream_base_url", "POOLSWITCH_UPSTREAM_BASE_URL is not set"))?;
    let mut c = PoolConfig::new(base, keys()?);
    if let Some(s) = var("POOLSWITCH_STRATEGY") {
        c.strategy = serde_json::from_value::<Strategy>(serde_json::Value::String(s.clone()))
            .map_err(|_| ConfigError::new("strategy", format!("unknown strategy `{s}`")))?;
    }
    if let Some(n) = number("POOLSWITCH_RETRY_ATTEMPTS", "retry_attempts")? {
        c.retry_attempts = n;
    }
    if let Some(n) = number("POOLSWITCH_COOLDOWN_SECONDS", "cooldown_seconds")? {
        c.cooldown_seconds = n;
    }
    if let Some(h) = var("POOLSWITCH_AUTH_HEADER_NAME") {
        c.auth_header_name = h;
    }
    if let Ok(s) = std::env::var("POOLSWITCH_AUTH_SCHEME") {
        c.auth_scheme = Some(s);
    }
    c.query_auth_param = var("POOLSWITCH_QUERY_AUTH_PARAM");
    c.request_timeout_ms = number("POOLSWITCH_REQUEST_TIMEOUT_MS", "request_timeout_ms")?;
    c.rate_limit_per_second = number("POOLSWITCH_RATE_LIMIT_PER_SECOND", "rate_limit_per_second")?;
    if let Some(n) = number("POOLSWITCH_MAX_WAIT_MS", "max_wait_ms")? {
        c.max_wait_ms = n;
    }
    Ok(c)
}
