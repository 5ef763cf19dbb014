//! The wasm-bindgen binding for Node, browsers and workerd.
//!
//! Only the small JS wrapper in `js/` calls this; users see `PoolSwitchClient`. The host's
//! `fetch` stays on the JS side, and so do request bodies, responses and abort signals: the
//! wrapper drives each request as a task, starting the operations each step asks for (see
//! [`ops`]) and reporting back when they finish.

mod convert;
mod ops;
#[cfg(feature = "node-proxy")]
mod proxy;
mod time;
mod transport;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::core::{KeyConfig, PoolClient, PoolConfig, PoolError, PoolEvent, PoolSnapshot, Reply, Request, SeededRng};
use convert::{config_error, from_js, pool_error, to_js};
use ops::{pairs, OpResult, Ops, US};
use time::{JsClock, JsSleeper};
use transport::{parse_headers, JsBody, JsTransport};

type Client = PoolClient<JsTransport, JsClock, JsSleeper, SeededRng<fn() -> u64>>;
type Task = Pin<Box<dyn Future<Output = Result<Reply<JsBody>, PoolError>>>>;

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
    ops: Rc<Ops>,
    tasks: RefCell<HashMap<u32, Task>>,
    next_task: Cell<u32>,
}

#[wasm_bindgen]
impl WasmPool {
    /// `config`: the options object (snake_case or camelCase).
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WasmPool, JsValue> {
        let config: PoolConfig = from_js(config).map_err(|e| config_error(&e))?;
        let ops = Rc::new(Ops::default());
        let transport = JsTransport::new(ops.clone());
        let sleeper = JsSleeper::new(ops.clone());
        let client =
            PoolClient::new(&config, transport, JsClock, sleeper, SeededRng::new(seed as fn() -> u64)).map_err(|e| config_error(&e))?;
        Ok(WasmPool { client: Rc::new(client), ops, tasks: RefCell::new(HashMap::new()), next_task: Cell::new(0) })
    }

    /// The response headers the core reads, joined by US: the wrapper copies only these.
    #[wasm_bindgen(js_name = limitHeaders)]
    pub fn limit_headers() -> String {
        crate::core::limits::LIMIT_HEADERS.join(&US.to_string())
    }

    /// Starts a request and returns its task id; [`WasmPool::step`] gives its first step.
    /// `headers` and `query` are flat `name US value US …` text. Throws an error object for a
    /// request that cannot be sent.
    pub fn start(&self, method: &str, path: String, headers: &str, query: &str, timeout_ms: Option<f64>) -> Result<u32, JsValue> {
        let task = self.next_task.get().wrapping_add(1);
        self.next_task.set(task);
        let req = build_request(method, path, headers, query, timeout_ms).map_err(|e| pool_error(&e))?;
        let client = self.client.clone();
        self.tasks.borrow_mut().insert(task, Box::pin(async move { client.request(req).await }));
        Ok(task)
    }

    /// Polls task `task` and returns its step: records separated by RS, the first `P`
    /// (pending) or `D US responseOp US keyId US attempts US outcome US retryAt` (done), then
    /// the operations to start (`S`, `T`, `K`) or cancel (`C`). Throws the request's error
    /// object when it failed.
    pub fn step(&self, task: u32) -> Result<String, JsValue> {
        // Out of the map while polled: an event listener may start or step another request.
        let Some(mut future) = self.tasks.borrow_mut().remove(&task) else { return Err(unknown_task()) };
        let (poll, records) = self.ops.as_task(task, || future.as_mut().poll(&mut Context::from_waker(Waker::noop())));
        let mut out = String::new();
        match poll {
            Poll::Pending => {
                self.tasks.borrow_mut().insert(task, future);
                out.push('P');
            }
            Poll::Ready(result) => {
                drop(future);
                self.ops.clear_task(task);
                let reply = result.map_err(|e| pool_error(&e))?;
                let retry_at = reply.retry_at_ms.map(|t| t.to_string()).unwrap_or_default();
                let _ = write!(
                    out,
                    "D{US}{}{US}{}{US}{}{US}{}{US}{retry_at}",
                    reply.response.body.response_op,
                    reply.key_id,
                    reply.attempts,
                    reply.outcome.as_str()
                );
            }
        }
        out.push_str(&records);
        Ok(out)
    }

    /// Reports that fetch `op` of `task` answered with `status`; `limits` is the flat
    /// `name US value …` text of its rate-limit headers. Returns the next step.
    pub fn sent(&self, task: u32, op: u32, status: u16, limits: &str) -> Result<String, JsValue> {
        self.resume(task, op, OpResult::Sent { status, limits: parse_headers(limits) })
    }

    /// Reports that fetch `op` failed (no response).
    pub fn failed(&self, task: u32, op: u32, message: String) -> Result<String, JsValue> {
        self.resume(task, op, OpResult::Failed(message))
    }

    /// Reports that timer `op` fired.
    pub fn slept(&self, task: u32, op: u32) -> Result<String, JsValue> {
        self.resume(task, op, OpResult::Slept)
    }

    /// Reports the start of a response body that peek `op` asked for.
    pub fn peeked(&self, task: u32, op: u32, bytes: Vec<u8>) -> Result<String, JsValue> {
        self.resume(task, op, OpResult::Peeked(bytes))
    }

    fn resume(&self, task: u32, op: u32, result: OpResult) -> Result<String, JsValue> {
        if !self.tasks.borrow().contains_key(&task) {
            return Err(unknown_task());
        }
        self.ops.finish(op, result);
        self.step(task)
    }

    /// Drops a request (the caller aborted): an attempt in flight is booked as cancelled. The
    /// wrapper cancels the task's operations itself.
    pub fn cancel(&self, task: u32) {
        let future = self.tasks.borrow_mut().remove(&task);
        drop(future);
        self.ops.clear_task(task);
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

fn unknown_task() -> JsValue {
    pool_error(&PoolError::InvalidRequest("this request has already finished".to_owned()))
}

fn build_request(method: &str, path: String, headers: &str, query: &str, timeout_ms: Option<f64>) -> Result<Request, PoolError> {
    let mut req = Request::parse(method, path, pairs(headers))?;
    req.timeout_ms = match timeout_ms {
        None => None,
        Some(ms) if (1.0..=3_600_000.0).contains(&ms) => Some(ms as u64),
        Some(_) => return Err(PoolError::InvalidRequest("timeoutMs must be between 1 and 3600000".into())),
    };
    req.query = pairs(query).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    Ok(req)
}
