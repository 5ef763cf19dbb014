//! The proxy rules of the core (`crate::core::proxy`) for the Node gateway (`js/gateway/`), as
//! free functions: the Node gateway keeps only its sockets and streams, and asks here for every
//! decision, so it answers exactly as the WASI gateway does. Built only with the `node-proxy`
//! feature, into the gateway's own wasm (`pkg/gateway/wasm/`, loaded by `js/gateway/rules.js`).

use js_sys::{Array, Object, Reflect};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

use crate::core::proxy::headers;
use crate::core::proxy::settings::{parse_key_body, Listen};
use crate::core::proxy::{self, ProxyConfig, Route};
use crate::core::ConfigError;

fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v.into());
}

/// `{ kind: "invalid_config", field, problem, message }`, as the client's errors.
fn config_error(e: &ConfigError) -> JsValue {
    let o = Object::new();
    set(&o, "kind", "invalid_config");
    set(&o, "field", e.field.as_str());
    set(&o, "problem", e.problem.as_str());
    set(&o, "message", e.to_string());
    o.into()
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}

/// JSON text in (serde_json bounds its nesting), a config error naming `field` otherwise.
fn json(text: &str, field: &str) -> Result<Value, JsValue> {
    serde_json::from_str(text)
        .map_err(|e| config_error(&ConfigError::new(field, format!("is not valid JSON (line {}, column {})", e.line(), e.column()))))
}

/// Resolves the proxy config: `file` (the config file's object, as JSON text, or `null`), `env`
/// (the `POOLSWITCH_*` variables, as a JSON object of strings), `flags` (command-line values by
/// field name). Returns `{ pool, proxy }`: the pool's fields (camelCase) for the client and the
/// gateway's settings. Throws `{ kind: "invalid_config", field, problem, message }`.
#[wasm_bindgen(js_name = proxyConfig)]
pub fn proxy_config(file: &str, env: &str, flags: &str) -> Result<JsValue, JsValue> {
    let file = json(file, "config")?;
    let env: Map<String, Value> = match json(env, "env")? {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let env: Vec<(&str, &str)> = env.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect();
    let flags = match json(flags, "flags")? {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let c = ProxyConfig::resolve(&file, env, &flags, Listen::Configured).map_err(|e| config_error(&e))?;
    let out = Object::new();
    set(&out, "pool", to_js(&c.pool_fields_camel_case())?);
    set(&out, "proxy", to_js(&c.settings)?);
    Ok(out.into())
}

/// `{ route, id?, allow?, needsToken }` for a request line (`route` as `Route::name`).
#[wasm_bindgen(js_name = proxyRoute)]
pub fn proxy_route(method: &str, target: &str) -> JsValue {
    let route = proxy::route(method, target);
    let o = Object::new();
    set(&o, "route", route.name());
    set(&o, "needsToken", route.needs_token());
    match &route {
        Route::RemoveKey(id) | Route::EnableKey(id) | Route::DisableKey(id) => set(&o, "id", id.as_str()),
        Route::MethodNotAllowed { allow } => set(&o, "allow", *allow),
        _ => {}
    }
    o.into()
}

/// The rules the gateway applies on every forwarded request, as tables read once at load:
/// `{ prefix, hopByHop, requestOnly, decodedOnly }` (see `core::proxy::headers`; `prefix`: a
/// target that starts with `/` but not with it is forwarded). The per-request path then needs
/// no crossing into wasm; the functions below stay for everything else and are the reference
/// the tables are checked against (tests/js/forward.test.js).
#[wasm_bindgen(js_name = proxyTables)]
pub fn proxy_tables() -> JsValue {
    let list = |names: &[&str]| names.iter().map(|n| JsValue::from_str(n)).collect::<Array>();
    let o = Object::new();
    set(&o, "prefix", proxy::PREFIX);
    set(&o, "hopByHop", list(&headers::HOP_BY_HOP));
    set(&o, "requestOnly", list(&headers::REQUEST_ONLY));
    set(&o, "decodedOnly", list(&headers::DECODED_ONLY));
    o.into()
}

/// Whether the request presents `expected` (Bearer or `x-poolswitch-token`), in constant time.
#[wasm_bindgen(js_name = proxyAuthorized)]
pub fn proxy_authorized(authorization: Option<String>, x_token: Option<String>, expected: &str) -> bool {
    proxy::token_matches(proxy::presented_token(authorization.as_deref(), x_token.as_deref()), expected)
}

fn connection(flat: &[String]) -> Option<String> {
    let values: Vec<&str> = flat.chunks_exact(2).filter(|p| p[0].eq_ignore_ascii_case("connection")).map(|p| p[1].as_str()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The request headers that go upstream, from flat `[name, value, …]` (Node's `rawHeaders`).
#[wasm_bindgen(js_name = proxyRequestHeaders)]
pub fn proxy_request_headers(flat: Vec<String>) -> Vec<String> {
    let conn = connection(&flat);
    let pairs = flat.chunks_exact(2).filter(|p| proxy::forward_request_header(&p[0], conn.as_deref()));
    pairs.flat_map(|p| [p[0].clone(), p[1].clone()]).collect()
}

/// The response headers that go back, from flat `[name, value, …]`; `body_decoded`: fetch has
/// undone the content encoding.
#[wasm_bindgen(js_name = proxyResponseHeaders)]
pub fn proxy_response_headers(flat: Vec<String>, body_decoded: bool) -> Vec<String> {
    let conn = connection(&flat);
    let pairs = flat.chunks_exact(2).filter(|p| proxy::forward_response_header(&p[0], conn.as_deref(), body_decoded));
    pairs.flat_map(|p| [p[0].clone(), p[1].clone()]).collect()
}

/// `{ status, headers: [[name, value], …], body }` for an error of `kind`.
#[wasm_bindgen(js_name = proxyErrorAnswer)]
pub fn proxy_error_answer(kind: &str, message: &str, retry_at_ms: Option<f64>, now_ms: f64) -> JsValue {
    // Saturating casts: a NaN or negative time is 0, a huge one the largest u64.
    let a = proxy::error_answer(kind, message, retry_at_ms.map(|t| t as u64), now_ms as u64);
    let o = Object::new();
    set(&o, "status", a.status);
    let headers = Array::new();
    for (k, v) in a.headers {
        headers.push(&Array::of2(&JsValue::from_str(k), &JsValue::from_str(&v)));
    }
    set(&o, "headers", headers);
    set(&o, "body", a.body);
    o.into()
}

/// The `x-poolswitch-key-id` value for a key id (percent-encoded outside visible ASCII).
#[wasm_bindgen(js_name = proxyKeyIdHeader)]
pub fn proxy_key_id_header(id: &str) -> String {
    proxy::key_id_header(id)
}

/// The Prometheus text for a status (the client's `status()`, as JSON text).
#[wasm_bindgen(js_name = proxyMetrics)]
pub fn proxy_metrics(status: &str) -> String {
    proxy::render_metrics(&serde_json::from_str(status).unwrap_or_default())
}

/// The key in a `POST /poolswitch/keys` body, or an error that shows no part of the body.
#[wasm_bindgen(js_name = proxyParseKey)]
pub fn proxy_parse_key(text: &str) -> Result<JsValue, JsValue> {
    let key = parse_key_body(text).map_err(|e| config_error(&e))?;
    to_js(&key)
}
