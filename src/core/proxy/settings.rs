//! The proxy's config: one schema for both gateways. Sources, later ones winning: a config
//! object (the Node gateway's YAML or JSON file), `POOLSWITCH_*` environment variables, and
//! command-line flags. Every field has one snake_case name, also accepted in camelCase, and one
//! variable (`POOLSWITCH_` + the name in capitals). A field or variable nobody knows is refused,
//! naming it and the nearest known one: a misspelt `gateway-token` must not start an open proxy.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::config::PoolConfig;
use crate::core::error::ConfigError;
use crate::core::wording::camel;

/// What a field holds, and so how its environment variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Text where an empty value means "none" (`POOLSWITCH_AUTH_SCHEME=` sends the bare key).
    OptionalText,
    Whole,
    Number,
    Flag,
    /// A comma list of key values, or a JSON array of keys in any form.
    Keys,
    /// A comma list.
    List,
    /// A JSON object.
    Object,
}

/// Whether a field configures the pool or the gateway around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Pool,
    Gateway,
}

/// Every field. The pool's part must list exactly `PoolConfig`'s fields (a test checks it).
const FIELDS: [(&str, Kind, Part); 26] = [
    ("upstream_base_url", Kind::Text, Part::Pool),
    ("keys", Kind::Keys, Part::Pool),
    ("strategy", Kind::Text, Part::Pool),
    ("retry_attempts", Kind::Whole, Part::Pool),
    ("cooldown_seconds", Kind::Whole, Part::Pool),
    ("auth_header_name", Kind::Text, Part::Pool),
    ("auth_scheme", Kind::OptionalText, Part::Pool),
    ("query_auth_param", Kind::Text, Part::Pool),
    ("request_timeout_ms", Kind::Whole, Part::Pool),
    ("deadline_ms", Kind::Whole, Part::Pool),
    ("rate_limit_per_second", Kind::Number, Part::Pool),
    ("retryable_methods", Kind::List, Part::Pool),
    ("default_headers", Kind::Object, Part::Pool),
    ("backoff_base_ms", Kind::Whole, Part::Pool),
    ("backoff_max_ms", Kind::Whole, Part::Pool),
    ("max_wait_ms", Kind::Whole, Part::Pool),
    ("host", Kind::Text, Part::Gateway),
    ("port", Kind::Whole, Part::Gateway),
    ("gateway_token", Kind::Text, Part::Gateway),
    ("allow_unauthenticated", Kind::Flag, Part::Gateway),
    ("log_level", Kind::Text, Part::Gateway),
    ("body_limit_bytes", Kind::Whole, Part::Gateway),
    ("drain_timeout_ms", Kind::Whole, Part::Gateway),
    ("state_file", Kind::Text, Part::Gateway),
    // The Node gateway's shared key state (its client's `store` and `namespace`).
    ("store", Kind::Text, Part::Gateway),
    ("namespace", Kind::Text, Part::Gateway),
];

const ENV_PREFIX: &str = "POOLSWITCH_";
const LOG_LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];
const DEFAULT_BODY_LIMIT: u64 = 32 * 1024 * 1024;
const MAX_BODY_LIMIT: u64 = 1024 * 1024 * 1024;
const DEFAULT_DRAIN_MS: u64 = 10_000;
const MAX_DRAIN_MS: u64 = 600_000;

fn env_name(field: &str) -> String {
    format!("{ENV_PREFIX}{}", field.to_ascii_uppercase())
}

fn field(name: &str) -> Option<(&'static str, Kind, Part)> {
    FIELDS.iter().copied().find(|(f, _, _)| *f == name || camel(f) == name)
}

/// The known name closest to `given`, spelling aside (`gateway-token`, `GatewayToken`).
fn nearest<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> &'a str {
    let squash = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let g = squash(given);
    known.min_by_key(|k| strsim::levenshtein(&g, &squash(k))).unwrap_or("")
}

fn unknown_field(name: &str) -> ConfigError {
    let shown: String = name.chars().take(64).collect();
    let near = nearest(name, FIELDS.iter().map(|(f, _, _)| *f));
    ConfigError::new(shown, format!("is not a known field (did you mean `{near}`?)"))
}

/// Reads one variable as its field's kind. Messages never quote the value (it may be a key).
fn env_value(var: &str, kind: Kind, raw: &str) -> Result<Option<Value>, ConfigError> {
    let field = var.trim_start_matches(ENV_PREFIX).to_ascii_lowercase();
    let bad = |what: &str| ConfigError::new(field.clone(), format!("{var} {what}"));
    let text = raw.trim();
    if text.is_empty() {
        return Ok((kind == Kind::OptionalText).then_some(Value::Null));
    }
    Ok(Some(match kind {
        Kind::Text | Kind::OptionalText => Value::String(text.to_owned()),
        Kind::Whole => Value::from(text.parse::<u64>().map_err(|_| bad("is not a whole number"))?),
        Kind::Number => {
            let n: f64 = text.parse().map_err(|_| bad("is not a number"))?;
            serde_json::Number::from_f64(n).map(Value::Number).ok_or_else(|| bad("is not a finite number"))?
        }
        Kind::Flag => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(bad("must be true or false")),
        },
        Kind::Keys if text.starts_with('[') => serde_json::from_str(text)
            .map_err(|e| bad(&format!("is not a valid JSON key list (line {}, column {})", e.line(), e.column())))?,
        Kind::Keys | Kind::List => {
            Value::Array(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect())
        }
        Kind::Object => {
            let v: Value =
                serde_json::from_str(text).map_err(|e| bad(&format!("is not a JSON object (line {}, column {})", e.line(), e.column())))?;
            if !v.is_object() {
                return Err(bad("is not a JSON object"));
            }
            v
        }
    }))
}

/// The gateway's own settings, resolved.
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    /// Where the Node gateway listens (the WASI gateway's address is `wasmtime serve --addr`).
    pub host: String,
    pub port: u16,
    /// Callers must present it (Bearer or `x-poolswitch-token`); `None`: no token.
    pub gateway_token: Option<String>,
    /// Serving without a token off loopback was asked for explicitly.
    pub allow_unauthenticated: bool,
    pub log_level: &'static str,
    /// Request bodies longer than this are answered 413 without being read further.
    pub body_limit_bytes: u64,
    /// How long a shutdown waits for requests in flight before cutting them off.
    pub drain_timeout_ms: u64,
    /// The WASI gateway's key-state file (its instances live one request each).
    pub state_file: Option<String>,
    /// The Node gateway's shared store: `memory`, or a `redis://` / `rediss://` URL.
    pub store: Option<String>,
    /// The pool's name in the store.
    pub namespace: Option<String>,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("gateway_token", &self.gateway_token.as_ref().map(|_| "<redacted>"))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("log_level", &self.log_level)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("drain_timeout_ms", &self.drain_timeout_ms)
            .field("state_file", &self.state_file)
            // A Redis URL may hold a password.
            .field("store", &self.store.as_ref().map(|s| if s == "memory" { "memory" } else { "<redis url>" }))
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The whole proxy config: the pool's part (checked by the pool's own rules, see
/// [`ProxyConfig::pool`]) and the gateway's. Its `Debug` shows neither key values nor the token.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The pool's fields as given (snake_case names).
    pub pool_fields: Map<String, Value>,
    pub settings: ProxySettings,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<&String> = self.pool_fields.keys().collect();
        f.debug_struct("ProxyConfig").field("pool_fields", &fields).field("settings", &self.settings).finish()
    }
}

/// Where the gateway listens, for the rule "no token off loopback unless asked".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// The Node gateway: it listens on the configured `host`.
    Configured,
    /// The WASI gateway: `wasmtime serve --addr` is out of its sight, so it is never assumed
    /// to be loopback.
    Unknown,
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Removes quoted or back-ticked spans from a message about `keys`: serde quotes the value it
/// refused, and there that value may be a key.
fn scrub_values(e: ConfigError) -> ConfigError {
    if !e.field.starts_with("keys") {
        return e;
    }
    let mut out = String::with_capacity(e.problem.len());
    let mut inside: Option<char> = None;
    for c in e.problem.chars() {
        match inside {
            Some(q) if c == q => inside = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                inside = Some(c);
                out.push_str("<value not shown>");
            }
            None => out.push(c),
        }
    }
    ConfigError::new(e.field, out)
}

/// Keys must be strings (or objects whose `value` is one). A YAML key of digits is a number:
/// refused without showing it.
fn check_key_shapes(keys: &Value) -> Result<(), ConfigError> {
    let Some(list) = keys.as_array() else {
        return Err(ConfigError::new("keys", "must be a list of keys"));
    };
    for (i, k) in list.iter().enumerate() {
        match k {
            Value::String(_) => {}
            Value::Object(o) => match o.get("value") {
                Some(Value::String(_)) | None => {}
                Some(_) => {
                    return Err(ConfigError::new(format!("keys[{i}].value"), "must be a string (quote it in YAML); the value is not shown"))
                }
            },
            _ => {
                return Err(ConfigError::new(
                    format!("keys[{i}]"),
                    "must be a string or an object with `value` (quote digits in YAML); the value is not shown",
                ))
            }
        }
    }
    Ok(())
}

/// The body of `POST /poolswitch/keys`: a key string or key object as JSON. Errors give the
/// position only, never the text (it is a key).
pub fn parse_key_body(text: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::new("key", format!("the body is not valid JSON (line {}, column {})", e.line(), e.column())))?;
    check_key_shapes(&Value::Array(vec![value.clone()])).map_err(|e| ConfigError::new(e.field.replacen("keys[0]", "key", 1), e.problem))?;
    Ok(value)
}

fn whole(fields: &Map<String, Value>, name: &str, default: u64, max: u64) -> Result<u64, ConfigError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            v.as_u64().filter(|n| *n <= max).ok_or_else(|| ConfigError::new(name, format!("must be a whole number from 0 to {max}")))
        }
    }
}

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ConfigError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ConfigError::new(name, "must be a string")),
    }
}

fn settings(fields: &Map<String, Value>, listen: Listen) -> Result<ProxySettings, ConfigError> {
    let host = text(fields, "host")?.unwrap_or("127.0.0.1").to_owned();
    if host.is_empty() || host.len() > 255 {
        return Err(ConfigError::new("host", "must be a host name or address"));
    }
    let port = u16::try_from(whole(fields, "port", 8080, 65_535)?).unwrap_or(8080);
    let token = text(fields, "gateway_token")?.map(str::to_owned);
    if let Some(t) = &token {
        if t.len() < 8 || t.len() > 4096 || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("gateway_token", "must be 8 to 4096 visible ASCII characters (no spaces)"));
        }
    }
    let allow_unauthenticated = match fields.get("allow_unauthenticated") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ConfigError::new("allow_unauthenticated", "must be true or false")),
    };
    let level = text(fields, "log_level")?.unwrap_or("info");
    let log_level = LOG_LEVELS
        .iter()
        .copied()
        .find(|l| *l == level)
        .ok_or_else(|| ConfigError::new("log_level", format!("must be one of {}", LOG_LEVELS.join(", "))))?;
    let body_limit_bytes = whole(fields, "body_limit_bytes", DEFAULT_BODY_LIMIT, MAX_BODY_LIMIT)?;
    if body_limit_bytes == 0 {
        return Err(ConfigError::new("body_limit_bytes", format!("must be a whole number from 1 to {MAX_BODY_LIMIT}")));
    }
    let drain_timeout_ms = whole(fields, "drain_timeout_ms", DEFAULT_DRAIN_MS, MAX_DRAIN_MS)?;
    let state_file = text(fields, "state_file")?.filter(|s| !s.is_empty()).map(str::to_owned);
    let store = text(fields, "store")?.filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(s) = &store {
        let url = s.starts_with("redis://") || s.starts_with("rediss://");
        if !(s == "memory" || url) || s.len() > 2048 || s.chars().any(char::is_control) {
            return Err(ConfigError::new("store", "must be `memory` or a redis:// or rediss:// URL"));
        }
    }
    let namespace = text(fields, "namespace")?.filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(n) = &namespace {
        if n.len() > 100 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) {
            return Err(ConfigError::new("namespace", "must be 1 to 100 letters, digits or _ . : -"));
        }
    }
    let exposed = match listen {
        Listen::Configured => !is_loopback(&host),
        Listen::Unknown => true,
    };
    if token.is_none() && exposed && !allow_unauthenticated {
        let where_ = match listen {
            Listen::Configured => format!("the gateway listens on `{host}`, which is not a loopback address"),
            Listen::Unknown => "this gateway cannot see the address it is served on".to_owned(),
        };
        return Err(ConfigError::new(
            "gateway_token",
            format!("is required: {where_}; set one, or set allow_unauthenticated: true to serve without"),
        ));
    }
    Ok(ProxySettings {
        host,
        port,
        gateway_token: token,
        allow_unauthenticated,
        log_level,
        body_limit_bytes,
        drain_timeout_ms,
        state_file,
        store,
        namespace,
    })
}

impl ProxyConfig {
    /// Resolves the config. `file`: the config object (or `Null`); `env`: the process
    /// environment (only `POOLSWITCH_*` names are read, and each must be known); `flags`:
    /// command-line values, by field name (`null` values are skipped).
    pub fn resolve<'e>(
        file: &Value,
        env: impl IntoIterator<Item = (&'e str, &'e str)>,
        flags: &Map<String, Value>,
        listen: Listen,
    ) -> Result<Self, ConfigError> {
        let mut fields = Map::new();
        match file {
            Value::Null => {}
            Value::Object(o) => {
                for (name, v) in o {
                    let (canonical, _, _) = field(name).ok_or_else(|| unknown_field(name))?;
                    fields.insert(canonical.to_owned(), v.clone());
                }
            }
            _ => return Err(ConfigError::new("config", "must be a mapping of field names to values")),
        }
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            let known = FIELDS.iter().find(|(f, _, _)| f.eq_ignore_ascii_case(rest));
            let Some((name, kind, _)) = known else {
                let names: Vec<String> = FIELDS.iter().map(|(f, _, _)| env_name(f)).collect();
                let near = nearest(var, names.iter().map(String::as_str));
                let shown: String = var.chars().take(64).collect();
                return Err(ConfigError::new(shown, format!("is not a known variable (did you mean `{near}`?)")));
            };
            if let Some(v) = env_value(var, *kind, raw)? {
                fields.insert((*name).to_owned(), v);
            }
        }
        for (name, v) in flags {
            if v.is_null() {
                continue;
            }
            let (canonical, _, _) = field(name).ok_or_else(|| unknown_field(name))?;
            fields.insert(canonical.to_owned(), v.clone());
        }

        let mut pool = Map::new();
        let mut gateway = Map::new();
        for (name, v) in fields {
            match field(&name).map(|(_, _, part)| part) {
                Some(Part::Pool) => pool.insert(name, v),
                _ => gateway.insert(name, v),
            };
        }
        if let Some(keys) = pool.get("keys") {
            check_key_shapes(keys)?;
        }
        let settings = settings(&gateway, listen)?;
        Ok(Self { pool_fields: pool, settings })
    }

    /// The pool's part, parsed and checked by the pool's own rules. (The Node gateway hands
    /// [`ProxyConfig::pool_fields_camel_case`] to its client instead, which runs the same
    /// checks: parsing here too would put a second copy of the config parser in the wasm.)
    pub fn pool(&self) -> Result<PoolConfig, ConfigError> {
        let config: PoolConfig = serde_path_to_error::deserialize(Value::Object(self.pool_fields.clone()))
            .map_err(|e| scrub_values(ConfigError::from_serde(e)))?;
        config.validate().map_err(scrub_values)?;
        Ok(config)
    }

    /// The pool's fields with camelCase names, as the JS client's options.
    pub fn pool_fields_camel_case(&self) -> Map<String, Value> {
        self.pool_fields.iter().map(|(k, v)| (camel(k), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: Listen = Listen::Configured;

    /// Resolves and checks the pool's part too, as the WASI gateway does.
    fn resolve(file: Value, env: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
        let c = ProxyConfig::resolve(&file, env.iter().copied(), &Map::new(), NODE)?;
        c.pool()?;
        Ok(c)
    }

    fn base() -> Value {
        json!({ "upstream_base_url": "https://api.example.com", "keys": ["sk-a", "sk-b"] })
    }

    #[test]
    fn the_pool_part_lists_exactly_the_pool_config_fields() {
        let mut ours: Vec<&str> = FIELDS.iter().filter(|(_, _, p)| *p == Part::Pool).map(|(f, _, _)| *f).collect();
        let mut theirs = PoolConfig::field_names();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn defaults() {
        let c = resolve(base(), &[]).unwrap();
        let s = &c.settings;
        assert_eq!((s.host.as_str(), s.port, s.log_level), ("127.0.0.1", 8080, "info"));
        assert_eq!((s.body_limit_bytes, s.drain_timeout_ms, s.gateway_token.clone()), (DEFAULT_BODY_LIMIT, DEFAULT_DRAIN_MS, None));
        assert_eq!(c.pool().unwrap().keys.len(), 2);
        assert_eq!(c.pool_fields_camel_case().get("upstreamBaseUrl"), Some(&json!("https://api.example.com")));
    }

    #[test]
    fn unknown_fields_are_refused_by_name_with_the_nearest() {
        let mut file = base();
        file["gateway-token"] = json!("secret-token-1");
        let e = resolve(file, &[]).unwrap_err();
        assert_eq!(e.field, "gateway-token");
        assert!(e.problem.contains("`gateway_token`"), "{}", e.problem);
        let mut file = base();
        file["retryAttemps"] = json!(2);
        assert!(resolve(file, &[]).unwrap_err().problem.contains("`retry_attempts`"));
        let e = resolve(base(), &[("POOLSWITCH_GATEWAY_TOKN", "x")]).unwrap_err();
        assert!(e.problem.contains("`POOLSWITCH_GATEWAY_TOKEN`"), "{}", e.problem);
        assert!(resolve(base(), &[("PATH", "/bin"), ("OTHER_GATEWAY_TOKN", "x")]).is_ok(), "other variables are not ours");
    }

    #[test]
    fn camel_case_names_are_the_same_fields() {
        let mut file = base();
        file["gatewayToken"] = json!("secret-token-1");
        file["bodyLimitBytes"] = json!(1024);
        file["retryAttempts"] = json!(1);
        let c = resolve(file, &[]).unwrap();
        assert_eq!(c.settings.gateway_token.as_deref(), Some("secret-token-1"));
        assert_eq!((c.settings.body_limit_bytes, c.pool().unwrap().retry_attempts), (1024, 1));
    }

    #[test]
    fn environment_over_file_and_flags_over_both() {
        let env = [
            ("POOLSWITCH_STRATEGY", "round_robin"),
            ("POOLSWITCH_RETRY_ATTEMPTS", "5"),
            ("POOLSWITCH_AUTH_SCHEME", ""),
            ("POOLSWITCH_RATE_LIMIT_PER_SECOND", "2.5"),
            ("POOLSWITCH_KEYS", "k1, k2,"),
            ("POOLSWITCH_PORT", "9000"),
            ("POOLSWITCH_ALLOW_UNAUTHENTICATED", "true"),
            ("POOLSWITCH_DEFAULT_HEADERS", "{\"x-a\":\"1\"}"),
        ];
        let mut flags = Map::new();
        flags.insert("port".into(), json!(9100));
        flags.insert("host".into(), Value::Null);
        let c = ProxyConfig::resolve(&base(), env.iter().copied(), &flags, NODE).unwrap();
        assert!(c.pool().is_ok());
        assert_eq!(c.pool().unwrap().strategy.as_str(), "round_robin");
        assert_eq!(
            (c.pool().unwrap().retry_attempts, c.pool().unwrap().auth_scheme.clone(), c.pool().unwrap().rate_limit_per_second),
            (5, None, Some(2.5))
        );
        assert_eq!(c.pool().unwrap().keys.len(), 2);
        assert_eq!((c.settings.port, c.settings.allow_unauthenticated), (9100, true));
        assert_eq!(c.pool().unwrap().default_headers.get("x-a").map(String::as_str), Some("1"));
        let json_keys = [("POOLSWITCH_KEYS", r#"[{"id":"a","value":"sk-1"},"sk-2"]"#)];
        assert_eq!(resolve(base(), &json_keys).unwrap().pool().unwrap().keys[0].id.as_deref(), Some("a"));
    }

    #[test]
    fn bad_values_name_the_field_and_never_show_a_key() {
        let e = resolve(base(), &[("POOLSWITCH_RETRY_ATTEMPTS", "many")]).unwrap_err();
        assert_eq!(e.field, "retry_attempts");
        let e = resolve(base(), &[("POOLSWITCH_KEYS", "[\"sk-secret-9\", oops]")]).unwrap_err();
        assert!(e.field == "keys" && !e.to_string().contains("sk-secret-9"), "{e}");
        for keys in [json!([12345678901u64]), json!([{ "id": "a", "value": 98765432 }]), json!([true])] {
            let mut file = base();
            file["keys"] = keys;
            let e = resolve(file, &[]).unwrap_err();
            assert!(e.field.starts_with("keys[0]"), "{e}");
            assert!(!e.to_string().contains("12345678901") && !e.to_string().contains("98765432"), "{e}");
        }
        let mut file = base();
        file["keys"] = json!([{ "value": "sk-shown-never", "wieght": 2 }]);
        let e = resolve(file, &[]).unwrap_err();
        assert!(e.field.starts_with("keys[0]") && !e.to_string().contains("sk-shown-never"), "{e}");
        let mut file = base();
        file["port"] = json!(99999);
        assert_eq!(resolve(file, &[]).unwrap_err().field, "port");
        let mut file = base();
        file["gateway_token"] = json!("short");
        let e = resolve(file, &[]).unwrap_err();
        assert!(e.field == "gateway_token" && !e.to_string().contains("short"));
        assert_eq!(resolve(json!([1]), &[]).unwrap_err().field, "config");
    }

    #[test]
    fn no_token_off_loopback_needs_an_explicit_yes() {
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.8.9.10"] {
            let mut file = base();
            file["host"] = json!(host);
            assert!(resolve(file, &[]).is_ok(), "{host}");
        }
        let mut file = base();
        file["host"] = json!("0.0.0.0");
        let e = resolve(file.clone(), &[]).unwrap_err();
        assert!(e.field == "gateway_token" && e.problem.contains("allow_unauthenticated"), "{e}");
        file["allow_unauthenticated"] = json!(true);
        assert!(resolve(file.clone(), &[]).is_ok());
        file["allow_unauthenticated"] = json!(false);
        file["gateway_token"] = json!("long-enough-token");
        assert!(resolve(file, &[]).is_ok());
        // The WASI gateway never knows its address.
        let wasi = |env: &[(&str, &str)]| ProxyConfig::resolve(&base(), env.iter().copied(), &Map::new(), Listen::Unknown);
        assert_eq!(wasi(&[]).unwrap_err().field, "gateway_token");
        assert!(wasi(&[("POOLSWITCH_ALLOW_UNAUTHENTICATED", "1")]).is_ok());
        assert!(wasi(&[("POOLSWITCH_GATEWAY_TOKEN", "gw-token-123")]).is_ok());
    }

    #[test]
    fn a_key_body_is_json_and_never_echoed() {
        assert_eq!(parse_key_body(r#"{"id":"d","value":"sk-d"}"#).unwrap()["id"], "d");
        assert_eq!(parse_key_body(r#""sk-d""#).unwrap(), json!("sk-d"));
        for bad in ["sk-raw-secret-1", "{\"value\": sk-raw-secret-1}", "12345678901", "{\"value\": 12345678901}"] {
            let e = parse_key_body(bad).unwrap_err();
            assert!(e.field.starts_with("key"), "{e}");
            assert!(!e.to_string().contains("sk-raw-secret-1") && !e.to_string().contains("12345678901"), "{e}");
        }
    }

    #[test]
    fn the_token_stays_out_of_debug() {
        let mut file = base();
        file["gateway_token"] = json!("gw-secret-token");
        let c = resolve(file, &[]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("gw-secret-token") && !shown.contains("sk-a") && shown.contains("upstream_base_url"), "{shown}");
    }
}
