//! Pool configuration: what the user hands the client, deserialized with serde and validated once.
//!
//! Field names are snake_case (as in the reference client's YAML) and every field also accepts its
//! camelCase spelling, so the JS binding and JSON/YAML files share one definition.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use http::{HeaderName, HeaderValue, Method};
use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;

use super::error::ConfigError;
use super::limits::MAX_COUNT;
use super::secret::ApiKey;
use super::target::UpstreamBase;

/// How the next key is chosen among the healthy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each key in turn.
    RoundRobin,
    /// The key with the fewest requests so far.
    LeastUsed,
    /// A uniformly random key.
    Random,
    /// The key with the most estimated remaining quota, then the fewest rate limits, errors, requests.
    #[default]
    QuotaFailover,
    /// A random key, in proportion to each key's `weight`.
    Weighted,
}

impl Strategy {
    /// The name used in config and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastUsed => "least_used",
            Strategy::Random => "random",
            Strategy::QuotaFailover => "quota_failover",
            Strategy::Weighted => "weighted",
        }
    }
}

/// One key as configured: a plain string, or an object with an id.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyConfig {
    /// Stable name used in status, events and errors. Plain strings get `key-1`, `key-2`, ….
    pub id: Option<String>,
    /// The secret.
    pub value: ApiKey,
    /// Requests the key may make per month, if known; feeds the remaining-quota estimate.
    pub monthly_quota: Option<u64>,
    /// Relative share under the `weighted` strategy (default 1).
    pub weight: Option<u32>,
    /// Free-form data shown in status (never the key value).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyObject {
    id: Option<String>,
    value: ApiKey,
    #[serde(default, alias = "monthlyQuota")]
    monthly_quota: Option<u64>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<'de> Deserialize<'de> for KeyConfig {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key string or an object with `value` (and optional `id`, `monthly_quota`, `weight`, `metadata`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyConfig, E> {
                Ok(KeyConfig::plain(v))
            }
            // A key of digits (YAML `- 12345`) arrives as a number: refused without echoing it.
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyConfig, E> {
                Err(E::custom(KEY_AS_NUMBER))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyConfig, E> {
                Err(E::custom(KEY_AS_NUMBER))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyConfig, E> {
                Err(E::custom(KEY_AS_NUMBER))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeyConfig, A::Error> {
                let o = KeyObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(KeyConfig { id: o.id, value: o.value, monthly_quota: o.monthly_quota, weight: o.weight, metadata: o.metadata })
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// What a key given as a number is told (the number itself may be the secret).
pub(crate) const KEY_AS_NUMBER: &str =
    "expected a key string or an object with `value`, got a number (a key made of digits must be quoted as a string)";

impl KeyConfig {
    /// A key given as a bare string.
    pub fn plain(value: impl Into<String>) -> Self {
        Self { id: None, value: ApiKey::new(value), monthly_quota: None, weight: None, metadata: None }
    }

    /// A key with an explicit id.
    pub fn named(id: impl Into<String>, value: impl Into<String>) -> Self {
        Self { id: Some(id.into()), ..Self::plain(value) }
    }
}

/// The longest timeout or deadline accepted, in config and per request (one hour).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Deepest nesting of a key's `metadata` (the object itself is level 1).
pub const METADATA_MAX_DEPTH: usize = 32;
/// Largest `metadata` of one key, as JSON text.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;

/// The accepted range of every whole-number field, by name (folded: lowercase without `_`),
/// so serde's type errors and [`PoolConfig::validate`] say the same thing.
const RANGES: &[(&str, u64, u64)] = &[
    ("retryattempts", 0, 100),
    ("cooldownseconds", 1, 366 * 24 * 3600),
    ("requesttimeoutms", 1, MAX_TIMEOUT_MS),
    ("deadlinems", 1, MAX_TIMEOUT_MS),
    ("backoffbasems", 1, 600_000),
    ("backoffmaxms", 1, 3_600_000),
    ("maxwaitms", 0, 3_600_000),
    ("weight", 1, 1_000_000),
    ("monthlyquota", 0, MAX_COUNT),
];

/// The range of a whole-number field, given its name in either spelling.
pub fn number_range(field: &str) -> Option<(u64, u64)> {
    // ASCII case (the names are ASCII): Unicode case tables would grow the npm wasm by ~12 KB.
    let folded: String = field.chars().filter(|c| *c != '_').map(|c| c.to_ascii_lowercase()).collect();
    RANGES.iter().find(|(name, _, _)| *name == folded).map(|(_, min, max)| (*min, *max))
}

/// Refuses a number outside its field's range, naming the range.
fn in_range(field: &str, value: u64) -> Result<(), ConfigError> {
    let leaf = field.rsplit('.').next().unwrap_or(field);
    match number_range(leaf) {
        Some((min, max)) if value < min || value > max => {
            Err(ConfigError::new(field, format!("expected a whole number between {min} and {max}, got {value}")))
        }
        _ => Ok(()),
    }
}

/// How deep a JSON value nests (a scalar is 0, `{}` is 1), and whether every number in it is
/// exact in JS (status hands metadata to JS, where a larger integer cannot be represented).
/// Walked without recursion.
fn shape(value: &serde_json::Value) -> (usize, bool) {
    let mut deepest = 0;
    let mut exact = true;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            serde_json::Value::Number(n) => {
                exact &= n.as_f64().is_some_and(|f| f.abs() <= MAX_COUNT as f64) || n.is_f64();
                continue;
            }
            _ => continue,
        };
        deepest = deepest.max(d);
        stack.extend(children.map(|c| (c, d + 1)));
    }
    (deepest, exact)
}

/// Bounds a key's metadata: it is kept for the life of the pool and copied into every status.
fn check_metadata(field: &str, metadata: &serde_json::Map<String, serde_json::Value>) -> Result<(), ConfigError> {
    let field = format!("{field}.metadata");
    let (mut nested, mut exact) = (0, true);
    for v in metadata.values() {
        let (d, e) = shape(v);
        nested = nested.max(d);
        exact &= e;
    }
    if nested + 1 > METADATA_MAX_DEPTH {
        return Err(ConfigError::new(field, format!("nests deeper than {METADATA_MAX_DEPTH} levels")));
    }
    if !exact {
        return Err(ConfigError::new(field, "holds a whole number beyond 2^53 - 1 (give it as a string)"));
    }
    let bytes = serde_json::to_string(metadata).map_or(usize::MAX, |t| t.len());
    if bytes > METADATA_MAX_BYTES {
        return Err(ConfigError::new(field, format!("is larger than {METADATA_MAX_BYTES} bytes as JSON")));
    }
    Ok(())
}

fn default_retry_attempts() -> u32 {
    3
}
fn default_cooldown_seconds() -> u64 {
    3600
}
fn default_auth_header() -> String {
    "Authorization".into()
}
fn default_auth_scheme() -> Option<String> {
    Some("Bearer".into())
}
fn default_retryable_methods() -> Vec<String> {
    // Idempotent methods only (RFC 9110): a POST resent after an ambiguous failure may be a
    // second, billed completion. Callers opt in by listing POST themselves.
    ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].map(String::from).to_vec()
}
fn default_backoff_base_ms() -> u64 {
    250
}
fn default_backoff_max_ms() -> u64 {
    10_000
}
fn default_max_wait_ms() -> u64 {
    30_000
}

/// Everything the client is configured with. Deserialize it, then call [`PoolConfig::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Absolute http(s) URL of the provider; keys are only ever sent to its origin.
    #[serde(alias = "upstreamBaseUrl")]
    pub upstream_base_url: String,
    /// The pool.
    pub keys: Vec<KeyConfig>,
    /// Key choice.
    #[serde(default)]
    pub strategy: Strategy,
    /// Retries after transient failures (network, 5xx, waiting for a cooling key). Failing over to
    /// another key after a key's own fault (429, quota, 401) does not use this budget.
    #[serde(default = "default_retry_attempts", alias = "retryAttempts")]
    pub retry_attempts: u32,
    /// How long a quota-exhausted key rests.
    #[serde(default = "default_cooldown_seconds", alias = "cooldownSeconds")]
    pub cooldown_seconds: u64,
    /// Header that carries the key (`Authorization`, `x-api-key`, `x-goog-api-key`, …).
    #[serde(default = "default_auth_header", alias = "authHeaderName")]
    pub auth_header_name: String,
    /// Prefix before the key in the header; `null` or `""` sends the raw key.
    #[serde(default = "default_auth_scheme", alias = "authScheme")]
    pub auth_scheme: Option<String>,
    /// Send the key as this query parameter instead of a header (Gemini: `key`).
    #[serde(default, alias = "queryAuthParam")]
    pub query_auth_param: Option<String>,
    /// Per-attempt timeout: the response head and the read of an error body.
    #[serde(default, alias = "requestTimeoutMs")]
    pub request_timeout_ms: Option<u64>,
    /// Per-call deadline over everything: every attempt, wait and error-body read.
    #[serde(default, alias = "deadlineMs")]
    pub deadline_ms: Option<u64>,
    /// Per-key request rate ceiling; a key over it is passed over, or waited for if none is free.
    #[serde(default, alias = "rateLimitPerSecond")]
    pub rate_limit_per_second: Option<f64>,
    /// Methods resent after an ambiguous failure (sent, no answer). A failure to connect, and a
    /// 429/401 rejection, are resent for any method. Default: the idempotent methods.
    #[serde(default = "default_retryable_methods", alias = "retryableMethods")]
    pub retryable_methods: Vec<String>,
    /// Headers added to every request.
    #[serde(default, alias = "defaultHeaders")]
    pub default_headers: BTreeMap<String, String>,
    /// First backoff delay; doubles per retry, with full jitter.
    #[serde(default = "default_backoff_base_ms", alias = "backoffBaseMs")]
    pub backoff_base_ms: u64,
    /// Ceiling on one backoff delay.
    #[serde(default = "default_backoff_max_ms", alias = "backoffMaxMs")]
    pub backoff_max_ms: u64,
    /// Longest a request waits for a cooling key to return before failing with the time it returns.
    #[serde(default = "default_max_wait_ms", alias = "maxWaitMs")]
    pub max_wait_ms: u64,
}

impl PoolConfig {
    /// The config's field names, snake_case, as serde reads them (aliases left out): the one
    /// list the proxy settings, the WIT `config` record and `index.d.ts` are checked against.
    pub fn field_names() -> Vec<&'static str> {
        /// A deserializer that only records the field list serde asks it for.
        struct Fields(std::cell::RefCell<Vec<&'static str>>);
        impl<'de> de::Deserializer<'de> for &Fields {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("fields only"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.borrow_mut().extend_from_slice(fields);
                Err(de::Error::custom("fields only"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
                unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let fields = Fields(Default::default());
        let _ = <PoolConfig as Deserialize>::deserialize(&fields);
        fields.0.into_inner().into_iter().filter(|f| !f.chars().any(|c| c.is_ascii_uppercase())).collect()
    }

    /// A config with defaults for everything but the base URL and keys.
    pub fn new(upstream_base_url: impl Into<String>, keys: Vec<KeyConfig>) -> Self {
        PoolConfig {
            upstream_base_url: upstream_base_url.into(),
            keys,
            strategy: Strategy::default(),
            retry_attempts: default_retry_attempts(),
            cooldown_seconds: default_cooldown_seconds(),
            auth_header_name: default_auth_header(),
            auth_scheme: default_auth_scheme(),
            query_auth_param: None,
            request_timeout_ms: None,
            deadline_ms: None,
            rate_limit_per_second: None,
            retryable_methods: default_retryable_methods(),
            default_headers: BTreeMap::new(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            max_wait_ms: default_max_wait_ms(),
        }
    }

    /// Parses JSON, naming the offending field on error.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(ConfigError::from_serde)
    }

    /// Checks every rule of the contract and resolves what the client needs at run time.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let base = UpstreamBase::parse(&self.upstream_base_url)?;
        let keys = validate_keys(&self.keys)?;
        in_range("retry_attempts", self.retry_attempts.into())?;
        in_range("cooldown_seconds", self.cooldown_seconds)?;
        let header_name = HeaderName::from_bytes(self.auth_header_name.as_bytes())
            .map_err(|_| ConfigError::new("auth_header_name", "is not a valid HTTP header name"))?;
        let scheme = self.auth_scheme.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(s) = &scheme {
            if !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new("auth_scheme", "must be one word such as `Bearer`"));
            }
        }
        if let Some(p) = &self.query_auth_param {
            if p.is_empty() || p.chars().any(|c| c.is_control() || matches!(c, '&' | '=' | '#' | ' ')) {
                return Err(ConfigError::new("query_auth_param", "must be a plain parameter name such as `key`"));
            }
        }
        for (field, value) in [("request_timeout_ms", self.request_timeout_ms), ("deadline_ms", self.deadline_ms)] {
            if let Some(ms) = value {
                in_range(field, ms)?;
            }
        }
        if let Some(rps) = self.rate_limit_per_second {
            if !(rps.is_finite() && rps > 0.0 && rps <= 1_000_000.0) {
                return Err(ConfigError::new("rate_limit_per_second", format!("expected a number above 0 and at most 1000000, got {rps}")));
            }
        }
        let mut retryable = Vec::new();
        for m in &self.retryable_methods {
            let method = Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| ConfigError::new("retryable_methods", format!("`{m}` is not an HTTP method")))?;
            retryable.push(method);
        }
        let mut default_headers = http::HeaderMap::new();
        for (name, value) in &self.default_headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::new("default_headers", format!("`{name}` is not a valid header name")))?;
            if n == header_name {
                return Err(ConfigError::new("default_headers", format!("`{name}` is the auth header; the pool sets it")));
            }
            let printable = value.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic());
            let v = HeaderValue::from_str(value)
                .ok()
                .filter(|_| printable)
                .ok_or_else(|| ConfigError::new("default_headers", format!("the value of `{name}` must be printable ASCII")))?;
            default_headers.append(n, v);
        }
        in_range("backoff_base_ms", self.backoff_base_ms)?;
        in_range("backoff_max_ms", self.backoff_max_ms)?;
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(ConfigError::new("backoff_max_ms", "must be at least backoff_base_ms"));
        }
        in_range("max_wait_ms", self.max_wait_ms)?;
        Ok(ValidConfig {
            base,
            keys,
            strategy: self.strategy,
            retry_attempts: self.retry_attempts,
            cooldown_ms: self.cooldown_seconds.saturating_mul(1000),
            auth_header: header_name,
            auth_scheme: scheme,
            query_auth_param: self.query_auth_param.clone(),
            request_timeout_ms: self.request_timeout_ms,
            deadline_ms: self.deadline_ms,
            rate_limit_per_second: self.rate_limit_per_second,
            retryable_methods: retryable,
            default_headers,
            backoff_base_ms: self.backoff_base_ms,
            backoff_max_ms: self.backoff_max_ms,
            max_wait_ms: self.max_wait_ms,
        })
    }
}

/// A key after validation: its id is settled.
#[derive(Debug, Clone)]
pub struct ValidKey {
    pub id: String,
    pub value: ApiKey,
    pub monthly_quota: Option<u64>,
    pub weight: u32,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Checks one key in the context of the ids already taken; `position` is 1-based for default ids.
pub fn validate_key(key: &KeyConfig, position: usize, field: &str, taken: impl Fn(&str) -> bool) -> Result<ValidKey, ConfigError> {
    let id = match &key.id {
        Some(id) => id.clone(),
        None => format!("key-{position}"),
    };
    if id.trim().is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(ConfigError::new(format!("{field}.id"), "must be 1 to 200 printable characters"));
    }
    let value = key.value.expose();
    if value.trim().is_empty() {
        return Err(ConfigError::new(format!("{field}.value"), "is empty"));
    }
    // Hosts send header values as visible ASCII; anything else (a non-ASCII letter, a space, a
    // control character) would be dropped or sent as an empty header, so it is refused here.
    if !value.bytes().all(|b| b.is_ascii_graphic()) || HeaderValue::from_str(value).is_err() {
        return Err(ConfigError::new(
            format!("{field}.value"),
            "must be printable ASCII with no spaces or control characters (an HTTP header cannot carry it otherwise)",
        ));
    }
    if taken(&id) {
        return Err(ConfigError::new(format!("{field}.id"), format!("duplicate key id `{id}`")));
    }
    let weight = key.weight.unwrap_or(1);
    in_range(&format!("{field}.weight"), weight.into())?;
    if let Some(q) = key.monthly_quota {
        in_range(&format!("{field}.monthly_quota"), q)?;
    }
    if let Some(m) = &key.metadata {
        check_metadata(field, m)?;
    }
    Ok(ValidKey { id, value: key.value.clone(), monthly_quota: key.monthly_quota, weight, metadata: key.metadata.clone() })
}

fn validate_keys(keys: &[KeyConfig]) -> Result<Vec<ValidKey>, ConfigError> {
    if keys.is_empty() {
        return Err(ConfigError::new("keys", "must hold at least one key"));
    }
    let mut out: Vec<ValidKey> = Vec::with_capacity(keys.len());
    let mut ids = HashSet::new();
    let mut values = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let valid = validate_key(key, i + 1, &format!("keys[{i}]"), |id| ids.contains(id))?;
        if !values.insert(valid.value.expose().to_owned()) {
            return Err(ConfigError::new(format!("keys[{i}].value"), "the same key value is listed twice"));
        }
        ids.insert(valid.id.clone());
        out.push(valid);
    }
    Ok(out)
}

/// The config as the client uses it: parsed, checked, defaults resolved.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub base: UpstreamBase,
    pub keys: Vec<ValidKey>,
    pub strategy: Strategy,
    pub retry_attempts: u32,
    pub cooldown_ms: u64,
    pub auth_header: HeaderName,
    pub auth_scheme: Option<String>,
    pub query_auth_param: Option<String>,
    pub request_timeout_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub rate_limit_per_second: Option<f64>,
    pub retryable_methods: Vec<Method>,
    pub default_headers: http::HeaderMap,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_wait_ms: u64,
}
