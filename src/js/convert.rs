//! Values crossing between JS and the core: config in, status/events/errors/replies out.

use js_sys::{Object, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;

use crate::core::{ConfigError, PoolError};

/// Deserializes a JS value, naming the field on error.
pub fn from_js<T: DeserializeOwned>(v: JsValue) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(serde_wasm_bindgen::Deserializer::from(v)).map_err(ConfigError::from_serde)
}

/// Plain JS objects and numbers (not `Map`s or `BigInt`s).
pub fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn opt_num(v: Option<u64>) -> JsValue {
    v.map_or(JsValue::UNDEFINED, |n| JsValue::from_f64(n as f64))
}

/// `retry_attempts` → `retryAttempts`, `keys[1].monthly_quota` → `keys[1].monthlyQuota`:
/// JS callers see their own spelling of every field.
fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `{ kind: "invalid_config", field, problem, message }`, fields in camelCase.
pub fn config_error(e: &ConfigError) -> JsValue {
    let field = camel_case(&e.field);
    object(&[
        ("kind", "invalid_config".into()),
        ("field", field.as_str().into()),
        ("problem", e.problem.as_str().into()),
        ("message", format!("invalid config: {field} {}", e.problem).into()),
    ])
}

/// `{ kind, message, keyId?, retryAt?, afterMs? }`.
pub fn pool_error(e: &PoolError) -> JsValue {
    if let PoolError::InvalidConfig(c) = e {
        return config_error(c);
    }
    let (key_id, retry_at, after_ms) = match e {
        PoolError::Network { key_id, .. } => (Some(key_id.as_str()), None, None),
        PoolError::Timeout { key_id, after_ms } => (Some(key_id.as_str()), None, Some(*after_ms)),
        PoolError::NoHealthyKeys { retry_at_ms } => (None, *retry_at_ms, None),
        _ => (None, None, None),
    };
    object(&[
        ("kind", e.kind().into()),
        ("message", e.to_string().into()),
        ("keyId", key_id.map_or(JsValue::UNDEFINED, JsValue::from_str)),
        ("retryAt", opt_num(retry_at)),
        ("afterMs", opt_num(after_ms)),
    ])
}
