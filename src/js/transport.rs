//! The JS transport: one attempt through the wrapper's `send`, which calls the host's `fetch`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use http::{HeaderMap, HeaderName, HeaderValue};
use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use crate::core::{HttpRequest, HttpResponse, ResponseBody, Transport, TransportError};

/// Aborts the attempt's fetch when dropped before the response arrived (a timeout or the
/// caller's abort dropped the attempt).
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.abort();
        }
    }
}

pub struct JsTransport {
    send: Function,
    peek: Function,
    contexts: Rc<RefCell<HashMap<u64, JsValue>>>,
}

impl JsTransport {
    pub fn new(send: Function, peek: Function, contexts: Rc<RefCell<HashMap<u64, JsValue>>>) -> Self {
        Self { send, peek, contexts }
    }
}

/// The host's `Response`, handed back to the caller untouched.
pub struct JsBody {
    pub response: JsValue,
    peek: Function,
}

impl ResponseBody for JsBody {
    async fn peek(&mut self, limit: usize) -> Vec<u8> {
        let Ok(p) = self.peek.call2(&JsValue::NULL, &self.response, &JsValue::from_f64(limit as f64)) else { return Vec::new() };
        match JsFuture::from(Promise::from(p)).await {
            Ok(bytes) => bytes.dyn_into::<Uint8Array>().map(|b| b.to_vec()).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }
}

fn js_error_message(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "fetch failed".to_owned())
}

impl Transport for JsTransport {
    type Body = JsBody;

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<JsBody>, TransportError> {
        let ctx = self.contexts.borrow().get(&request.tag).cloned().unwrap_or(JsValue::UNDEFINED);
        let headers = Array::new();
        for (name, value) in &request.headers {
            headers.push(&JsValue::from_str(name.as_str()));
            headers.push(&JsValue::from_str(value.to_str().unwrap_or_default()));
        }
        // Only an attempt the core may drop (a timeout applies) needs its own abort signal; a
        // caller's abort reaches fetch through the caller's signal. Signals are not free in Node.
        let controller = match request.cancellable {
            true => Some(AbortController::new().map_err(|e| TransportError::new(js_error_message(&e)))?),
            false => None,
        };
        let signal: JsValue = controller.as_ref().map_or(JsValue::UNDEFINED, |c| c.signal().into());
        let args = Array::of5(&ctx, &request.method.as_str().into(), &request.url.as_str().into(), &headers, &signal);
        let mut guard = AbortOnDrop(controller);
        let promise = self.send.apply(&JsValue::NULL, &args).map_err(|e| TransportError::new(js_error_message(&e)))?;
        let result = JsFuture::from(Promise::from(promise)).await;
        // The response (and its streaming body) now belongs to the caller: never abort it.
        guard.0 = None;
        let triple: Array = match result {
            Ok(v) => v.unchecked_into(),
            Err(e) => {
                let caller_aborted = Reflect::get(&ctx, &"signal".into())
                    .ok()
                    .filter(|s| !s.is_undefined() && !s.is_null())
                    .and_then(|s| Reflect::get(&s, &"aborted".into()).ok())
                    .is_some_and(|a| a.is_truthy());
                if caller_aborted {
                    // The caller's abort is reported by the binding, not as a network failure.
                    std::future::pending::<()>().await;
                }
                return Err(TransportError::new(js_error_message(&e)));
            }
        };
        let status = triple.get(1).as_f64().unwrap_or(0.0) as u16;
        let mut map = HeaderMap::new();
        let flat: Array = triple.get(2).unchecked_into();
        for i in 0..flat.length() / 2 {
            let (Some(n), Some(v)) = (flat.get(2 * i).as_string(), flat.get(2 * i + 1).as_string()) else { continue };
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_str(&v)) {
                map.append(n, v);
            }
        }
        Ok(HttpResponse { status, headers: map, body: JsBody { response: triple.get(0), peek: self.peek.clone() } })
    }
}
