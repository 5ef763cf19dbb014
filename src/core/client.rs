//! The request loop: choose a key, send, classify, record, fail over or retry.
//!
//! Pool state sits in a `RefCell` and is only borrowed in short synchronous sections, never
//! across an `.await`, so any number of requests can be in flight on one instance.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use super::backoff::backoff_ms;
use super::classify::{classify, Outcome, ERROR_BODY_LIMIT};
use super::config::{validate_key, KeyConfig, PoolConfig, ValidConfig};
use super::error::{ConfigError, PoolError};
use super::events::{EventBuffer, PoolEvent};
use super::host::{Clock, HttpRequest, HttpResponse, ResponseBody, Rng, Sleeper, Transport};
use super::pool::{AttemptEnd, Choice, Pool};
use super::secret::redact;
use super::snapshot::PoolSnapshot;
use super::status::{pool_status, PoolStatus};
use super::target::with_query;

/// Credential headers dropped from a caller's request (the configured auth header is too).
const CALLER_CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// A request as the caller describes it, relative to the upstream base.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path under the base URL (or an absolute URL on the same origin and base path).
    pub path: String,
    /// Extra query parameters, percent-encoded for you.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Overrides `request_timeout_ms` for this request.
    pub timeout_ms: Option<u64>,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), query: Vec::new(), headers: HeaderMap::new(), body: None, timeout_ms: None }
    }

    /// A request from a binding's plain values: the method by name (any case) and header
    /// pairs, each checked, so every binding refuses bad input with the same typed error.
    pub fn parse<'a>(method: &str, path: String, headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, PoolError> {
        let parsed = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PoolError::InvalidRequest(format!("`{method}` is not an HTTP method")))?;
        let mut req = Self::new(parsed, path);
        for (name, value) in headers {
            let n = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PoolError::InvalidRequest(format!("`{name}` is not a valid header name")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| PoolError::InvalidRequest(format!("the value of header `{name}` is not valid")))?;
            req.headers.append(n, v);
        }
        Ok(req)
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// The upstream response the request ended with: a success, a response returned at once
/// (4xx, too large), or the last failure once no key or retry was left.
#[derive(Debug)]
pub struct Reply<B> {
    pub response: HttpResponse<B>,
    pub key_id: String,
    pub attempts: u32,
    pub outcome: Outcome,
    /// When the request ended on key faults: when the earliest key returns (epoch ms).
    pub retry_at_ms: Option<u64>,
}

pub type Listener = Rc<dyn Fn(&PoolEvent)>;

/// Books an attempt as cancelled if the request future is dropped while it is in flight
/// (a caller's abort), so `total_requests = successes + errors` holds even then.
struct AttemptGuard<'a> {
    pool: &'a RefCell<Pool>,
    slot: usize,
    started_ms: u64,
    armed: bool,
}

impl AttemptGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut pool) = self.pool.try_borrow_mut() {
                pool.finish(self.slot, self.started_ms, AttemptEnd::Cancelled, &mut EventBuffer::new());
            }
        }
    }
}

enum Failure {
    Network(String),
    Timeout(u64),
}

/// The API-key pool client, generic over its host.
pub struct PoolClient<T, C, S, R> {
    config: ValidConfig,
    pool: RefCell<Pool>,
    transport: T,
    clock: C,
    sleeper: S,
    rng: R,
    listener: RefCell<Option<Listener>>,
}

impl<T: Transport, C: Clock, S: Sleeper, R: Rng> PoolClient<T, C, S, R> {
    /// Validates `config` and builds the client.
    pub fn new(config: &PoolConfig, transport: T, clock: C, sleeper: S, rng: R) -> Result<Self, ConfigError> {
        let config = config.validate()?;
        let pool = Pool::new(config.keys.clone(), config.strategy, config.cooldown_ms, config.rate_limit_per_second);
        Ok(Self { config, pool: RefCell::new(pool), transport, clock, sleeper, rng, listener: RefCell::new(None) })
    }

    /// Subscribes to pool events (replacing any earlier listener).
    pub fn set_listener(&self, listener: Option<Listener>) {
        *self.listener.borrow_mut() = listener;
    }

    /// Emits events built only when someone listens (the hot path builds two per request).
    fn emit_with(&self, make: impl FnOnce() -> EventBuffer) {
        if self.listener.borrow().is_some() {
            self.emit(make());
        }
    }

    fn emit(&self, events: EventBuffer) {
        if events.is_empty() {
            return;
        }
        let listener = self.listener.borrow().clone();
        if let Some(l) = listener {
            for e in &events {
                l(e);
            }
        }
    }

    /// Per-key and pool status at this moment.
    pub fn status(&self) -> PoolStatus {
        let now = self.clock.now_ms();
        pool_status(&self.pool.borrow(), self.config.base.as_url(), now)
    }

    /// The shareable state of every key.
    pub fn export_state(&self) -> PoolSnapshot {
        self.pool.borrow().export()
    }

    /// Replaces key state from a snapshot.
    pub fn import_state(&self, snapshot: &PoolSnapshot) {
        self.pool.borrow_mut().import(snapshot, self.clock.now_ms())
    }

    /// Merges another instance's key state.
    pub fn merge_state(&self, snapshot: &PoolSnapshot) {
        self.pool.borrow_mut().merge(snapshot, self.clock.now_ms())
    }

    /// Adds a key at run time (same rules as at construction).
    pub fn add_key(&self, key: &KeyConfig) -> Result<String, ConfigError> {
        let mut pool = self.pool.borrow_mut();
        // A plain key is named `key-N` by its position; after removals, the first N still free.
        let mut position = pool.len() + 1;
        while key.id.is_none() && pool.contains(&format!("key-{position}")) {
            position += 1;
        }
        let valid = validate_key(key, position, "key", |id| pool.contains(id))?;
        if pool.contains_value(&valid.value) {
            return Err(ConfigError::new("key.value", "this key value is already in the pool"));
        }
        let id = valid.id.clone();
        pool.insert(valid, self.clock.now_ms());
        Ok(id)
    }

    /// Removes a key; requests in flight on it finish normally. The last key cannot be removed.
    pub fn remove_key(&self, id: &str) -> Result<(), PoolError> {
        let mut pool = self.pool.borrow_mut();
        if !pool.contains(id) {
            return Err(PoolError::UnknownKey(id.to_owned()));
        }
        if pool.len() == 1 {
            return Err(PoolError::InvalidRequest("the last key cannot be removed".to_owned()));
        }
        pool.remove(id);
        Ok(())
    }

    /// Switches a key on or off. Enabling also clears an `invalid` verdict and any rest.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), PoolError> {
        let mut pool = self.pool.borrow_mut();
        pool.update(id, self.clock.now_ms(), |key| {
            key.enabled = enabled;
            if enabled {
                key.invalid = false;
                key.cooldown_until = None;
                key.cooldown_reason = None;
            }
        })
        .ok_or_else(|| PoolError::UnknownKey(id.to_owned()))
    }

    /// Books a response body that broke off after it was handed to the caller (a stream cut
    /// mid-way): counted against the key in status and reported as a `stream_error` event.
    pub fn record_stream_error(&self, id: &str) -> Result<(), PoolError> {
        {
            let mut pool = self.pool.borrow_mut();
            pool.update(id, self.clock.now_ms(), |key| {
                key.counters.stream_errors += 1;
                key.last_error = Some("stream_interrupted".to_owned());
            })
            .ok_or_else(|| PoolError::UnknownKey(id.to_owned()))?;
        }
        self.emit(vec![PoolEvent::StreamError { key_id: id.to_owned() }]);
        Ok(())
    }

    fn redact(&self, message: &str) -> String {
        let pool = self.pool.borrow();
        let text = redact(message, self.config.keys.iter().map(|k| &k.value));
        redact(&text, pool.keys().map(|k| &k.value))
    }

    /// Builds the wire request for one attempt with `key` attached.
    fn wire_request(&self, req: &Request, url: &str, key: &super::secret::ApiKey, cancellable: bool) -> Result<HttpRequest, PoolError> {
        let mut headers = self.config.default_headers.clone();
        // A caller's own credentials (an SDK's dummy key) never go upstream: keys come from the pool.
        let from_caller = |name: &http::HeaderName| !CALLER_CREDENTIALS.contains(&name.as_str());
        for name in req.headers.keys().filter(|n| from_caller(n)) {
            headers.remove(name);
        }
        for (name, value) in req.headers.iter().filter(|(n, _)| from_caller(n)) {
            headers.append(name, value.clone());
        }
        headers.remove(&self.config.auth_header);
        let url = match &self.config.query_auth_param {
            Some(param) => with_query(url, &[(param.clone(), key.expose().to_owned())], Some(param)),
            None => {
                let text = match &self.config.auth_scheme {
                    Some(scheme) => format!("{scheme} {}", key.expose()),
                    None => key.expose().to_owned(),
                };
                let mut value =
                    HeaderValue::from_str(&text).map_err(|_| PoolError::InvalidRequest("key is not a valid header value".to_owned()))?;
                value.set_sensitive(true);
                headers.insert(self.config.auth_header.clone(), value);
                url.to_owned()
            }
        };
        Ok(HttpRequest { method: req.method.clone(), url, headers, body: req.body.clone(), cancellable })
    }

    async fn send_with_timeout(&self, request: HttpRequest, timeout_ms: Option<u64>) -> Result<HttpResponse<T::Body>, Failure> {
        let send = async { self.transport.send(request).await.map_err(|e| Failure::Network(e.message)) };
        match timeout_ms {
            None => send.await,
            Some(ms) => {
                let timer = async {
                    self.sleeper.sleep(ms).await;
                    Err(Failure::Timeout(ms))
                };
                futures_lite::future::or(send, timer).await
            }
        }
    }

    /// Sends `req` through the pool. See DESIGN.md's behaviour contract for the rules.
    pub async fn request(&self, req: Request) -> Result<Reply<T::Body>, PoolError> {
        // Everything that could send a key elsewhere is refused before a key is touched.
        let url = with_query(&self.config.base.resolve(&req.path)?, &req.query, None);
        let timeout_ms = req.timeout_ms.or(self.config.request_timeout_ms);
        let resendable = self.config.retryable_methods.contains(&req.method);
        let retry_budget = self.config.retry_attempts;
        let started = self.clock.now_ms();
        // Key faults fail over without spending retries, but never more than once per key.
        let max_attempts = 1 + retry_budget + self.pool.borrow().len() as u32;
        let (mut attempts, mut retries) = (0u32, 0u32);
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<Reply<T::Body>> = None;

        loop {
            let now = self.clock.now_ms();
            let mut events = EventBuffer::new();
            let choice = self.pool.borrow_mut().choose(now, &tried, &self.rng, &mut events);
            self.emit(events);
            let slot = match choice {
                Choice::Key(slot) => slot,
                Choice::Wait { until, shaping: true } => {
                    self.sleeper.sleep(until.saturating_sub(now)).await;
                    continue;
                }
                Choice::Wait { until, shaping: false } => {
                    let delay = until.saturating_sub(now);
                    if retries < retry_budget && delay <= self.config.max_wait_ms {
                        retries += 1;
                        self.emit(vec![PoolEvent::Retry { attempt: attempts, reason: "all_keys_cooling".into(), delay_ms: delay }]);
                        self.sleeper.sleep(delay).await;
                        continue;
                    }
                    return match last {
                        Some(reply) => Ok(Reply { retry_at_ms: Some(until), ..reply }),
                        None => Err(PoolError::NoHealthyKeys { retry_at_ms: Some(until) }),
                    };
                }
                Choice::None => return last.ok_or(PoolError::NoHealthyKeys { retry_at_ms: None }),
            };

            let Some((key_id, key)) = self.pool.borrow_mut().begin(slot, now) else { continue };
            attempts += 1;
            let wire = match self.wire_request(&req, &url, &key, timeout_ms.is_some()) {
                Ok(w) => w,
                Err(e) => {
                    self.pool.borrow_mut().finish(slot, now, AttemptEnd::Network, &mut EventBuffer::new());
                    return Err(e);
                }
            };
            self.emit_with(|| vec![PoolEvent::Request { key_id: key_id.clone(), attempt: attempts, method: req.method.to_string() }]);

            let guard = AttemptGuard { pool: &self.pool, slot, started_ms: now, armed: true };
            let result = self.send_with_timeout(wire, timeout_ms).await;
            let mut response = match result {
                Ok(r) => r,
                Err(failure) => {
                    let (end, error) = match failure {
                        Failure::Network(m) => (AttemptEnd::Network, PoolError::Network { key_id, message: self.redact(&m) }),
                        Failure::Timeout(ms) => (AttemptEnd::Timeout, PoolError::Timeout { key_id, after_ms: ms }),
                    };
                    guard.disarm();
                    self.pool.borrow_mut().finish(slot, self.clock.now_ms(), end, &mut EventBuffer::new());
                    // The upstream may have acted on it: resend only methods the user allows.
                    if resendable && retries < retry_budget && attempts < max_attempts {
                        retries += 1;
                        tried.push(slot);
                        let delay = backoff_ms(retries, self.config.backoff_base_ms, self.config.backoff_max_ms, &self.rng);
                        self.emit(vec![PoolEvent::Retry { attempt: attempts, reason: error.kind().into(), delay_ms: delay }]);
                        self.sleeper.sleep(delay).await;
                        continue;
                    }
                    return Err(error);
                }
            };

            let body = if response.status >= 400 { response.body.peek(ERROR_BODY_LIMIT).await } else { Vec::new() };
            guard.disarm();
            let now = self.clock.now_ms();
            let verdict = classify(response.status, &response.headers, &body, now);
            let mut events = EventBuffer::new();
            self.pool.borrow_mut().finish(slot, now, AttemptEnd::Response(verdict), &mut events);
            let outcome = verdict.outcome;
            if outcome.is_key_fault() {
                events.push(PoolEvent::Failover { from_key_id: key_id.clone(), reason: outcome, attempt: attempts });
            }
            self.emit(events);
            let reply = Reply { response, key_id, attempts, outcome, retry_at_ms: None };

            if outcome.is_key_fault() && attempts < max_attempts {
                tried.push(slot);
                last = Some(reply);
                continue;
            }
            if outcome.is_transient() && retries < retry_budget && attempts < max_attempts {
                retries += 1;
                tried.push(slot);
                let backoff = backoff_ms(retries, self.config.backoff_base_ms, self.config.backoff_max_ms, &self.rng);
                let delay = verdict.limits.retry_after_ms.unwrap_or(backoff).min(self.config.max_wait_ms);
                self.emit(vec![PoolEvent::Retry { attempt: attempts, reason: outcome.as_str().into(), delay_ms: delay }]);
                self.sleeper.sleep(delay).await;
                continue;
            }
            if !outcome.is_key_fault() {
                let status = reply.response.status;
                let elapsed_ms = self.clock.now_ms().saturating_sub(started);
                self.emit_with(|| vec![PoolEvent::Success { key_id: reply.key_id.clone(), status, attempts, elapsed_ms }]);
            }
            return Ok(reply);
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }
}
