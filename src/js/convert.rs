//! Values crossing between JS and the core: config in, status/events/errors/replies out.

use js_sys::{Array, Object, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Number, Value};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::config::METADATA_MAX_DEPTH;
use crate::core::{ConfigError, PoolError};

/// Deepest nesting accepted in a value from JS: the config, `keys`, one key, and its metadata.
pub(super) const MAX_INPUT_DEPTH: usize = METADATA_MAX_DEPTH + 4;
/// Most values (objects, arrays, entries and leaves together) read from one JS argument.
pub(super) const MAX_INPUT_VALUES: usize = 500_000;
/// Path segments named in an error (`keys[3].metadata`); deeper values are reported there.
const NAMED_SEGMENTS: usize = 3;

/// Deserializes a JS value, naming the field on error.
///
/// The value is first read once into JSON data, with a depth and size limit, then deserialized
/// from that. serde-wasm-bindgen has no depth limit and recurses once per level (a deep or cyclic
/// object overflowed the wasm stack and trapped the instance for every caller), and it reads a
/// struct's fields by name, so unknown fields were never seen and could not be refused.
pub(super) fn from_js<T: DeserializeOwned>(v: JsValue) -> Result<T, ConfigError> {
    let mut budget = MAX_INPUT_VALUES;
    let value = to_json(&v, &Path::Root, 1, &mut budget)?.unwrap_or(Value::Null);
    serde_path_to_error::deserialize(value).map_err(ConfigError::from_serde)
}

/// Where a value sits, as a chain on the stack: rendered only for an error.
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, u32),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Field(parent, name) => {
                    segments.push(format!(".{name}"));
                    at = parent;
                }
                Path::Index(parent, i) => {
                    segments.push(format!("[{i}]"));
                    at = parent;
                }
            }
        }
        let named: String = segments.iter().rev().take(NAMED_SEGMENTS).map(String::as_str).collect();
        match named.strip_prefix('.') {
            Some(rest) => rest.to_owned(),
            None if named.is_empty() => "config".to_owned(),
            None => named,
        }
    }

    fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::new(self.render(), problem)
    }
}

/// One JS value as JSON data; `None` for `undefined` (a missing field, as JS callers mean it).
/// Recursion is bounded by [`MAX_INPUT_DEPTH`], which also stops a cycle.
fn to_json(v: &JsValue, path: &Path, depth: usize, budget: &mut usize) -> Result<Option<Value>, ConfigError> {
    if *budget == 0 {
        return Err(path.error(format!("holds more than {MAX_INPUT_VALUES} values")));
    }
    *budget -= 1;
    if v.is_undefined() {
        return Ok(None);
    }
    if v.is_null() {
        return Ok(Some(Value::Null));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Some(Value::Bool(b)));
    }
    if let Some(s) = v.as_string() {
        return Ok(Some(Value::String(s)));
    }
    if let Some(f) = v.as_f64() {
        return number(f).map(Some).ok_or_else(|| path.error(format!("expected a number, got {f}")));
    }
    if v.is_bigint() {
        let n = match i64::try_from(v.clone()) {
            Ok(i) => Number::from(i),
            Err(v) => u64::try_from(v).map(Number::from).map_err(|_| path.error("expected a number, got a BigInt beyond 64 bits"))?,
        };
        return Ok(Some(Value::Number(n)));
    }
    if !v.is_object() {
        return Err(path.error("expected data, got a function or a symbol"));
    }
    if depth >= MAX_INPUT_DEPTH {
        return Err(path.error(format!("nests deeper than {MAX_INPUT_DEPTH} levels or refers to itself")));
    }
    let unreadable = || path.error("could not be read (a getter or proxy threw)");
    if Array::is_array(v) {
        let len = Reflect::get(v, &"length".into()).map_err(|_| unreadable())?.as_f64().unwrap_or(0.0);
        if len > *budget as f64 {
            return Err(path.error(format!("holds more than {MAX_INPUT_VALUES} values")));
        }
        let mut items = Vec::with_capacity(len as usize);
        for i in 0..len as u32 {
            let item = Reflect::get_u32(v, i).map_err(|_| unreadable())?;
            items.push(to_json(&item, &Path::Index(path, i), depth + 1, budget)?.unwrap_or(Value::Null));
        }
        return Ok(Some(Value::Array(items)));
    }
    let mut out = Map::new();
    if let Some(map) = v.dyn_ref::<js_sys::Map>() {
        // A Map with string keys reads as an object.
        let entries = js_sys::try_iter(&map.entries()).map_err(|_| unreadable())?.into_iter().flatten();
        for entry in entries {
            let pair: Array = entry.map_err(|_| unreadable())?.into();
            let Some(name) = pair.get(0).as_string() else {
                return Err(path.error("expected an object or a Map with string keys"));
            };
            if let Some(item) = to_json(&pair.get(1), &Path::Field(path, &name), depth + 1, budget)? {
                out.insert(name, item);
            }
        }
        return Ok(Some(Value::Object(out)));
    }
    // Own string keys (Reflect.ownKeys reports a throwing proxy as an error, Object.keys would not).
    let keys = Reflect::own_keys(v).map_err(|_| unreadable())?;
    if keys.length() as usize > *budget {
        return Err(path.error(format!("holds more than {MAX_INPUT_VALUES} values")));
    }
    for key in keys.iter() {
        let Some(name) = key.as_string() else { continue };
        let item = Reflect::get(v, &key).map_err(|_| unreadable())?;
        if let Some(item) = to_json(&item, &Path::Field(path, &name), depth + 1, budget)? {
            out.insert(name, item);
        }
    }
    Ok(Some(Value::Object(out)))
}

/// A JS number as JSON: a whole number as an integer (so it fits integer fields), else a float.
fn number(f: f64) -> Option<Value> {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if f.fract() == 0.0 && f.abs() <= SAFE {
        return Some(Value::Number(if f < 0.0 { Number::from(f as i64) } else { Number::from(f as u64) }));
    }
    Number::from_f64(f).map(Value::Number)
}

/// Plain JS objects and numbers (not `Map`s or `BigInt`s).
pub(super) fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
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

/// `{ kind: "invalid_config", field, problem, message }`, fields in camelCase.
pub(super) fn config_error(e: &ConfigError) -> JsValue {
    let field = crate::core::wording::camel(&e.field);
    object(&[
        ("kind", "invalid_config".into()),
        ("field", field.as_str().into()),
        ("problem", e.problem.as_str().into()),
        ("message", format!("invalid config: {field} {}", e.problem).into()),
    ])
}

/// `{ kind, message, keyId?, retryAt?, afterMs? }`.
pub(super) fn pool_error(e: &PoolError) -> JsValue {
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
