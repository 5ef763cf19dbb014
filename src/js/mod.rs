//! The wasm-bindgen binding for Node, browsers and workerd.
//!
//! Only the small JS wrapper in `js/` calls this; users see `PoolSwitchClient`. The host's
//! `fetch` stays on the JS side: the wrapper hands the core a `send` function and keeps
//! request bodies and abort signals in a per-request context, so bodies never cross into wasm.

mod convert;
mod time;
mod transport;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_lite::future;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::core::{KeyConfig, PoolClient, PoolConfig, PoolError, PoolEvent, PoolSnapshot, Request, SeededRng};
use convert::{config_error, from_js, pool_error, reply_to_js, to_js};
use time::{JsClock, JsSleeper};
use transport::JsTransport;

type Client = PoolClient<JsTransport, JsClock, JsSleeper, SeededRng<fn() -> u64>>;

fn seed() -> u64 {
    // Drawn on first use, never at module scope (workerd forbids randomness there).
    let hi = (js_sys::Math::random() * u32::MAX as f64) as u64;
    let lo = (js_sys::Math::random() * u32::MAX as f64) as u64;
    (hi << 32) | lo
}

/// One pool, as the JS wrapper sees it.
#[wasm_bindgen]
pub struct WasmPool {
    client: Rc<Client>,
    contexts: Rc<RefCell<HashMap<u64, JsValue>>>,
    next_tag: Cell<u64>,
}

#[wasm_bindgen]
impl WasmPool {
    /// `config`: the options object (snake_case or camelCase). `send(ctx, method, url, headers,
    /// signal)` performs one attempt and resolves to `[response, status, limitHeaders]`;
    /// `peek(response, limit)` reads the start of an error body without consuming it.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue, send: Function, peek: Function) -> Result<WasmPool, JsValue> {
        let config: PoolConfig = from_js(config).map_err(|e| config_error(&e))?;
        let contexts = Rc::new(RefCell::new(HashMap::new()));
        let transport = JsTransport::new(send, peek, contexts.clone());
        let client =
            PoolClient::new(&config, transport, JsClock, JsSleeper, SeededRng::new(seed as fn() -> u64)).map_err(|e| config_error(&e))?;
        Ok(WasmPool { client: Rc::new(client), contexts, next_tag: Cell::new(1) })
    }

    /// Sends one request through the pool. `headers` is a flat `[name, value, …]` array,
    /// `query` likewise. `ctx` is the wrapper's per-request context (`signal`, `aborted`, `body`).
    /// Resolves to `{ response, keyId, attempts, outcome, retryAt }`; rejects with an error object.
    pub fn request(&self, method: String, path: String, headers: Array, query: Array, timeout_ms: Option<f64>, ctx: JsValue) -> Promise {
        let client = self.client.clone();
        let contexts = self.contexts.clone();
        let tag = self.next_tag.get();
        self.next_tag.set(tag + 1);
        let aborted = js_sys::Reflect::get(&ctx, &"aborted".into()).ok().filter(|v| v.is_instance_of::<Promise>());
        contexts.borrow_mut().insert(tag, ctx);
        future_to_promise(async move {
            let result = match build_request(&method, path, &headers, &query, timeout_ms, tag) {
                Ok(req) => {
                    let work = async { client.request(req).await.map(reply_to_js).map_err(|e| pool_error(&e)) };
                    // The caller's abort wins over whatever the request is doing; dropping the
                    // request future aborts its in-flight fetch and books the attempt as cancelled.
                    match aborted {
                        Some(p) => {
                            future::or(async { Err(JsFuture::from(Promise::from(p)).await.err().unwrap_or(JsValue::UNDEFINED)) }, work)
                                .await
                        }
                        None => work.await,
                    }
                }
                Err(e) => Err(pool_error(&e)),
            };
            contexts.borrow_mut().remove(&tag);
            result
        })
    }

    /// Per-key and pool status.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js(&self.client.status())
    }

    /// Subscribes `listener(event)` to pool events; `undefined` unsubscribes.
    #[wasm_bindgen(js_name = setListener)]
    pub fn set_listener(&self, listener: Option<Function>) {
        self.client.set_listener(listener.map(|f| {
            Rc::new(move |e: &PoolEvent| {
                if let Ok(v) = to_js(e) {
                    // A throwing listener must not break the request that emitted the event.
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }) as Rc<dyn Fn(&PoolEvent)>
        }));
    }

    /// Adds a key (string or `{ id, value, … }`); returns its id.
    #[wasm_bindgen(js_name = addKey)]
    pub fn add_key(&self, key: JsValue) -> Result<String, JsValue> {
        let key: KeyConfig = from_js(key).map_err(|e| config_error(&e.within("key")))?;
        self.client.add_key(&key).map_err(|e| config_error(&e))
    }

    #[wasm_bindgen(js_name = removeKey)]
    pub fn remove_key(&self, id: &str) -> Result<(), JsValue> {
        self.client.remove_key(id).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = setKeyEnabled)]
    pub fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<(), JsValue> {
        self.client.set_enabled(id, enabled).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = recordStreamError)]
    pub fn record_stream_error(&self, key_id: &str) -> Result<(), JsValue> {
        self.client.record_stream_error(key_id).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = exportState)]
    pub fn export_state(&self) -> Result<JsValue, JsValue> {
        to_js(&self.client.export_state())
    }

    #[wasm_bindgen(js_name = importState)]
    pub fn import_state(&self, snapshot: JsValue) -> Result<(), JsValue> {
        let s: PoolSnapshot = from_js(snapshot).map_err(|e| config_error(&e.within("snapshot")))?;
        self.client.import_state(&s);
        Ok(())
    }

    #[wasm_bindgen(js_name = mergeState)]
    pub fn merge_state(&self, snapshot: JsValue) -> Result<(), JsValue> {
        let s: PoolSnapshot = from_js(snapshot).map_err(|e| config_error(&e.within("snapshot")))?;
        self.client.merge_state(&s);
        Ok(())
    }
}

fn pairs(flat: &Array) -> impl Iterator<Item = (String, String)> + '_ {
    (0..flat.length() / 2)
        .map(move |i| (flat.get(2 * i).as_string().unwrap_or_default(), flat.get(2 * i + 1).as_string().unwrap_or_default()))
}

fn build_request(
    method: &str,
    path: String,
    headers: &Array,
    query: &Array,
    timeout_ms: Option<f64>,
    tag: u64,
) -> Result<Request, PoolError> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| PoolError::InvalidRequest(format!("`{method}` is not an HTTP method")))?;
    let mut map = HeaderMap::new();
    for (name, value) in pairs(headers) {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| PoolError::InvalidRequest(format!("`{name}` is not a valid header name")))?;
        let v =
            HeaderValue::from_str(&value).map_err(|_| PoolError::InvalidRequest(format!("the value of header `{name}` is not valid")))?;
        map.append(n, v);
    }
    let timeout_ms = match timeout_ms {
        None => None,
        Some(ms) if (1.0..=3_600_000.0).contains(&ms) => Some(ms as u64),
        Some(_) => return Err(PoolError::InvalidRequest("timeoutMs must be between 1 and 3600000".into())),
    };
    Ok(Request { method, path, query: pairs(query).collect(), headers: map, body: None, timeout_ms, tag })
}
