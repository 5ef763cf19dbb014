//! Values crossing between JS and the core: config in, status/events/errors/replies out.

use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;

use crate::core::config::METADATA_MAX_DEPTH;
use crate::core::{ConfigError, PoolError};

/// Deepest nesting accepted in a value from JS: the config, `keys`, one key, and its metadata.
pub const MAX_INPUT_DEPTH: usize = METADATA_MAX_DEPTH + 4;
/// Most values (objects, arrays, entries and leaves together) read from one JS argument.
pub const MAX_INPUT_VALUES: usize = 500_000;
/// Path segments kept for error messages (`keys[3].metadata`); deeper values report that.
const NAMED_LEVELS: usize = 3;

/// Deserializes a JS value, naming the field on error. The value is walked first with a depth
/// and size limit: serde-wasm-bindgen has none and recurses once per level, so a deeply nested
/// or cyclic object would overflow the wasm stack and trap the instance for every caller.
pub fn from_js<T: DeserializeOwned>(v: JsValue) -> Result<T, ConfigError> {
    check_shape(&v)?;
    serde_path_to_error::deserialize(serde_wasm_bindgen::Deserializer::from(v)).map_err(ConfigError::from_serde)
}

/// Walks `root` without recursion: refuses nesting deeper than [`MAX_INPUT_DEPTH`] (a cycle
/// is infinitely deep), more than [`MAX_INPUT_VALUES`] values, and values whose reading throws.
fn check_shape(root: &JsValue) -> Result<(), ConfigError> {
    let config: Rc<str> = Rc::from("config");
    let mut stack: Vec<(JsValue, usize, Rc<str>)> = vec![(root.clone(), 1, config)];
    let mut seen = 0usize;
    while let Some((value, depth, path)) = stack.pop() {
        seen += 1;
        if seen > MAX_INPUT_VALUES {
            return Err(ConfigError::new(&*path, format!("holds more than {MAX_INPUT_VALUES} values")));
        }
        if !value.is_object() {
            continue; // strings, numbers, BigInts, booleans, functions: leaves
        }
        if depth > MAX_INPUT_DEPTH {
            return Err(ConfigError::new(&*path, format!("nests deeper than {MAX_INPUT_DEPTH} levels or refers to itself")));
        }
        let unreadable = || ConfigError::new(&*path, "could not be read (a getter or proxy threw)");
        let child_path = |segment: &dyn Fn() -> String| -> Rc<str> {
            if depth >= NAMED_LEVELS {
                return path.clone();
            }
            let seg = segment();
            Rc::from(match seg.strip_prefix('.') {
                Some(name) if &*path == "config" => name.to_owned(),
                _ if &*path == "config" => seg,
                _ => format!("{path}{seg}"),
            })
        };
        if Array::is_array(&value) {
            let len = Reflect::get(&value, &"length".into()).map_err(|_| unreadable())?.as_f64().unwrap_or(0.0);
            if len > (MAX_INPUT_VALUES - seen) as f64 {
                return Err(ConfigError::new(&*path, format!("holds more than {MAX_INPUT_VALUES} values")));
            }
            for i in 0..len as u32 {
                let item = Reflect::get_u32(&value, i).map_err(|_| unreadable())?;
                stack.push((item, depth + 1, child_path(&|| format!("[{i}]"))));
            }
        } else if let Some(iter) = js_sys::try_iter(&value).map_err(|_| unreadable())? {
            // Maps, Sets and other iterables: serde-wasm-bindgen reads them by iterating.
            for item in iter.take(MAX_INPUT_VALUES - seen + 1) {
                stack.push((item.map_err(|_| unreadable())?, depth + 1, path.clone()));
            }
        } else {
            let keys = Reflect::own_keys(&value).map_err(|_| unreadable())?;
            if keys.length() as usize > MAX_INPUT_VALUES - seen {
                return Err(ConfigError::new(&*path, format!("holds more than {MAX_INPUT_VALUES} values")));
            }
            for key in keys.iter() {
                let item = Reflect::get(&value, &key).map_err(|_| unreadable())?;
                let name = key.as_string();
                stack.push((item, depth + 1, child_path(&|| format!(".{}", name.as_deref().unwrap_or("?")))));
            }
        }
    }
    Ok(())
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
