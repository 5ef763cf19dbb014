//! `WasmPool`: the pool as the JS wrapper sees it. Each request is a task holding one
//! [`Call`]; every method that feeds a task answers with its next step on the [`wire`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use http::HeaderMap;
use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::convert::{config_error, from_js, pool_error, to_js};
use super::wire::{self, Step, Timer};
use crate::core::shared::deliver;
use crate::core::{Call, KeyConfig, PoolConfig, PoolError, PoolEvent, PoolSnapshot, Request, SeededRng, Shared, TransportError};

type Rng = SeededRng<fn() -> u64>;

fn seed() -> u64 {
    // Drawn on first use, never at module scope (workerd forbids randomness there).
    let hi = (js_sys::Math::random() * u32::MAX as f64) as u64;
    let lo = (js_sys::Math::random() * u32::MAX as f64) as u64;
    (hi << 32) | lo
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A JS number of milliseconds as the core's: anything not a finite number of at least 0 is
/// 0, which the core refuses with its own message.
fn ms(v: Option<f64>) -> Option<u64> {
    v.map(|v| if v.is_finite() && v >= 0.0 { v.min(1e15) as u64 } else { 0 })
}

/// One request in flight.
struct Task {
    call: Call,
    /// When the driver's timer for this task fires, as last told.
    timer_at: Option<u64>,
}

/// One pool, as the JS wrapper sees it.
#[wasm_bindgen]
pub struct WasmPool {
    shared: RefCell<Shared<Rng>>,
    tasks: RefCell<HashMap<u32, Task>>,
    next_task: Cell<u32>,
    /// The last header pairs a request crossed with, checked: callers send the same headers
    /// call after call (a content type, an SDK's own), which need not be parsed again.
    last_headers: RefCell<Option<(String, HeaderMap)>>,
    /// The step `sent` wrote when it had more to say than a plain success, until `takeStep`.
    step: RefCell<String>,
    /// The rate-limit headers `limit` reported for the next `sent`; kept empty, with its room,
    /// between reports.
    limits: RefCell<HeaderMap>,
}

#[wasm_bindgen]
impl WasmPool {
    /// `config`: the options object (snake_case or camelCase).
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WasmPool, JsValue> {
        let config: PoolConfig = from_js(config).map_err(|e| config_error(&e))?;
        let shared = Shared::new(&config, SeededRng::new(seed as fn() -> u64)).map_err(|e| config_error(&e))?;
        Ok(WasmPool {
            shared: RefCell::new(shared),
            tasks: RefCell::new(HashMap::new()),
            next_task: Cell::new(0),
            last_headers: RefCell::new(None),
            step: RefCell::new(String::new()),
            limits: RefCell::new(HeaderMap::new()),
        })
    }

    /// The wire's constants as JSON (see [`wire::constants`]); the driver reads them once.
    pub fn wire() -> String {
        wire::constants()
    }

    /// Starts a request and returns its first step. `headers` and `query` are JSON arrays of
    /// name/value strings (`undefined` or `""` for none); the body stays in JS, `has_body` says
    /// whether there is one. Throws an error object for a request that cannot be sent.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &self,
        method: &str,
        path: String,
        headers: Option<String>,
        query: Option<String>,
        timeout_ms: Option<f64>,
        deadline_ms: Option<f64>,
        retry_attempts: Option<f64>,
        has_body: bool,
    ) -> Result<String, JsValue> {
        let overrides = Overrides { timeout_ms, deadline_ms, retry_attempts };
        let headers = self.header_map(headers.as_deref().unwrap_or_default()).map_err(|e| pool_error(&e))?;
        let req =
            build_request(method, path, headers, query.as_deref().unwrap_or_default(), overrides, has_body).map_err(|e| pool_error(&e))?;
        // One clock reading for the whole crossing (each is a call out to JS).
        let now = now();
        let call = Call::start(&self.shared.borrow(), req, now).map_err(|e| pool_error(&e))?;
        let task = self.next_task.get().wrapping_add(1);
        self.next_task.set(task);
        self.tasks.borrow_mut().insert(task, Task { call, timer_at: None });
        Ok(self.advance_at(task, now, None, |_, _, _| ()).into_text())
    }

    /// The header pairs `text` (JSON, `""` for none), checked; the last ones are kept.
    fn header_map(&self, text: &str) -> Result<HeaderMap, PoolError> {
        if text.is_empty() {
            return Ok(HeaderMap::new());
        }
        if let Some((_, map)) = self.last_headers.borrow().as_ref().filter(|(last, _)| last == text) {
            return Ok(map.clone());
        }
        let pairs = wire::pairs(text)?;
        let map = Request::header_map(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
        *self.last_headers.borrow_mut() = Some((text.to_owned(), map.clone()));
        Ok(map)
    }

    /// Reports one rate-limit header of the response the next [`Self::sent`] reports: `index`
    /// names it in the wire's `limitHeaders`. One that is not a limit header or not a valid
    /// value is skipped (the response itself is still good), and so is any past
    /// [`wire::MAX_LIMITS`] for one response.
    pub fn limit(&self, index: u32, value: &str) {
        let mut limits = self.limits.borrow_mut();
        if limits.len() < wire::MAX_LIMITS {
            if let Some((name, value)) = wire::limit_header(index, value) {
                limits.append(name, value);
            }
        }
    }

    /// Reports that attempt `attempt` of `task` answered with `status`, its rate-limit headers
    /// given by the `limit` calls just before. Returns the call's attempt count when this
    /// answer ends it as a plain success on this attempt, else 0: the next step is then
    /// [`Self::take_step`]'s (see the wire's header).
    pub fn sent(&self, task: u32, attempt: u32, status: u16) -> u32 {
        // Taken for the report (a listener may call back in) and handed back empty: the map's
        // room is reused by the next response's headers.
        let mut headers = std::mem::take(&mut *self.limits.borrow_mut());
        let answer = self.advance_at(task, now(), Some(attempt), |call, shared, now| {
            call.handle_response(shared, attempt, now, status, &headers);
        });
        headers.clear();
        *self.limits.borrow_mut() = headers;
        match answer {
            Answer::Plain(attempts) => attempts,
            Answer::Step(text) => {
                *self.step.borrow_mut() = text;
                0
            }
        }
    }

    /// The step the last `sent` that returned 0 wrote.
    #[wasm_bindgen(js_name = takeStep)]
    pub fn take_step(&self) -> String {
        std::mem::take(&mut *self.step.borrow_mut())
    }

    /// Reports that attempt `attempt` got no response; `failure` is a wire failure code.
    pub fn failed(&self, task: u32, attempt: u32, failure: u8, message: String) -> String {
        let error = TransportError { message, kind: wire::failure_kind(failure) };
        self.advance(task, |call, shared, now| {
            call.handle_failure(shared, attempt, now, &error);
        })
    }

    /// Reports the start of attempt `attempt`'s error body, as the step asked.
    pub fn peeked(&self, task: u32, attempt: u32, bytes: &[u8]) -> String {
        self.advance(task, |call, shared, now| {
            call.handle_peeked(shared, attempt, now, bytes);
        })
    }

    /// Reports that the task's timer fired.
    pub fn fired(&self, task: u32) -> String {
        if let Some(t) = self.tasks.borrow_mut().get_mut(&task) {
            t.timer_at = None; // the driver holds no timer now; a step that still waits sets one
        }
        self.advance(task, |call, shared, now| call.handle_timeout(shared, now))
    }

    /// Drops a request (the caller aborted, or the driver failed while reporting): an attempt
    /// in flight is booked as cancelled. The wrapper releases what it holds itself. Limits
    /// reported for a `sent` that never came are dropped, so no later answer is read with them.
    pub fn cancel(&self, task: u32) {
        self.limits.borrow_mut().clear();
        let Some(mut t) = self.tasks.borrow_mut().remove(&task) else { return };
        t.call.cancel(&mut self.shared.borrow_mut(), now());
    }

    /// Feeds task `task` one input, then encodes what the machine does next. A report for a
    /// task that is gone (finished, cancelled) is ignored: its step is empty.
    fn advance(&self, task: u32, input: impl FnOnce(&mut Call, &mut Shared<Rng>, u64)) -> String {
        self.advance_at(task, now(), None, input).into_text()
    }

    /// [`Self::advance`] at `now`. With `plain_on`, a step that is only a plain success on that
    /// attempt is not written ([`wire::plain_success`]).
    fn advance_at(&self, task: u32, now: u64, plain_on: Option<u32>, input: impl FnOnce(&mut Call, &mut Shared<Rng>, u64)) -> Answer {
        let mut step = Step::new(task);
        let (plain, events) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(t) = tasks.get_mut(&task) else { return Answer::Step(step.finish()) };
            let mut shared = self.shared.borrow_mut();
            input(&mut t.call, &mut shared, now);
            // Held until it is known whether the step is a plain success after all.
            let actions: Vec<_> = std::iter::from_fn(|| t.call.poll(&mut shared, now)).collect();
            let plain = plain_on.and_then(|attempt| wire::plain_success(&actions, attempt)).filter(|_| t.call.is_done());
            if plain.is_none() {
                for action in &actions {
                    step.action(action);
                }
            }
            if t.call.is_done() {
                tasks.remove(&task);
            } else {
                let want = t.call.poll_timeout();
                if want != t.timer_at {
                    t.timer_at = want;
                    step.timer(want.map_or(Timer::Clear, |at| Timer::Set(at.saturating_sub(now))));
                }
            }
            (plain, shared.take_events())
        };
        // With everything released: a listener may call back in, even cancel this task (then
        // the driver has ended it and ignores the step).
        deliver(events);
        match plain {
            Some(attempts) => Answer::Plain(attempts),
            None => Answer::Step(step.finish()),
        }
    }

    /// Per-key and pool status.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js(&self.shared.borrow().status(now()))
    }

    /// Subscribes `listener(event)` to pool events; `undefined` unsubscribes.
    #[wasm_bindgen(js_name = setListener)]
    pub fn set_listener(&self, listener: Option<Function>) {
        self.shared.borrow_mut().set_listener(listener.map(|f| {
            Rc::new(move |e: &PoolEvent| {
                if let Ok(v) = to_js(e) {
                    // A throwing listener must not break the request that emitted the event.
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }) as Rc<dyn Fn(&PoolEvent)>
        }));
    }

    /// Runs `f` on the shared state, then delivers the events it produced.
    fn with_shared<X>(&self, f: impl FnOnce(&mut Shared<Rng>, u64) -> X) -> X {
        let (out, events) = {
            let mut shared = self.shared.borrow_mut();
            let out = f(&mut shared, now());
            (out, shared.take_events())
        };
        deliver(events);
        out
    }

    /// Adds a key (string or `{ id, value, … }`); returns its id.
    #[wasm_bindgen(js_name = addKey)]
    pub fn add_key(&self, key: JsValue) -> Result<String, JsValue> {
        let key: KeyConfig = from_js(key).map_err(|e| config_error(&e.within("key")))?;
        self.with_shared(|s, now| s.add_key(&key, now)).map_err(|e| config_error(&e))
    }

    #[wasm_bindgen(js_name = removeKey)]
    pub fn remove_key(&self, id: &str) -> Result<(), JsValue> {
        self.with_shared(|s, _| s.remove_key(id)).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = setKeyEnabled)]
    pub fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<(), JsValue> {
        self.with_shared(|s, now| s.set_enabled(id, enabled, now)).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = recordStreamError)]
    pub fn record_stream_error(&self, key_id: &str) -> Result<(), JsValue> {
        self.with_shared(|s, now| s.record_stream_error(key_id, now)).map_err(|e| pool_error(&e))
    }

    #[wasm_bindgen(js_name = exportState)]
    pub fn export_state(&self) -> Result<JsValue, JsValue> {
        to_js(&self.shared.borrow().export_state())
    }

    #[wasm_bindgen(js_name = importState)]
    pub fn import_state(&self, snapshot: JsValue) -> Result<(), JsValue> {
        let s: PoolSnapshot = from_js(snapshot).map_err(|e| config_error(&e.within("snapshot")))?;
        self.with_shared(|shared, now| shared.import_state(&s, now));
        Ok(())
    }

    #[wasm_bindgen(js_name = mergeState)]
    pub fn merge_state(&self, snapshot: JsValue) -> Result<(), JsValue> {
        let s: PoolSnapshot = from_js(snapshot).map_err(|e| config_error(&e.within("snapshot")))?;
        self.with_shared(|shared, now| shared.merge_state(&s, now));
        Ok(())
    }
}

/// What a report into a task answers.
enum Answer {
    /// The call ended as a plain success; its attempt count.
    Plain(u32),
    /// The next step, as the wire writes it.
    Step(String),
}

impl Answer {
    fn into_text(self) -> String {
        match self {
            Answer::Step(text) => text,
            // Never: only `sent` asks for the short form (`plain_on`).
            Answer::Plain(_) => String::new(),
        }
    }
}

/// A request's own limits, as JS numbers.
struct Overrides {
    timeout_ms: Option<f64>,
    deadline_ms: Option<f64>,
    retry_attempts: Option<f64>,
}

fn build_request(
    method: &str,
    path: String,
    headers: HeaderMap,
    query: &str,
    overrides: Overrides,
    has_body: bool,
) -> Result<Request, PoolError> {
    let mut req = Request::parse(method, path, [])?;
    req.headers = headers;
    req.query = wire::pairs(query)?;
    req.timeout_ms = ms(overrides.timeout_ms);
    req.deadline_ms = ms(overrides.deadline_ms);
    // A count that is not a whole number in range becomes one the core's check refuses by name.
    req.retry_attempts = overrides.retry_attempts.map(|n| {
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 {
            n.min(f64::from(u32::MAX)) as u32
        } else {
            u32::MAX
        }
    });
    // The body stays in JS; an empty one here says there is one (GET/HEAD refuse it).
    req.body = has_body.then(Bytes::new);
    Ok(req)
}
