//! The request machine: one call's policy (key choice, failover, retries, backoff, waits,
//! timeouts, deadline) as pure transitions, with no I/O and no clock of its own.
//!
//! A driver starts a [`Call`] with the time, then repeats: take the actions [`Call::poll`]
//! gives and carry them out; wait until an attempt it started ends or the time
//! [`Call::poll_timeout`] names comes; report that with the time (`handle_*`). Each driver
//! (the async [`super::client::PoolClient`], the JS binding, the tests) is a small loop around
//! this. Every method takes the pool's [`Shared`] state for the length of one call.
//!
//! The driver keeps each attempt's response (the core never holds a body). Every
//! [`Action::Send`] ends in an [`Action::Discard`] of that attempt or in the [`Finished`]
//! result that names it.

use std::collections::VecDeque;

use http::{HeaderMap, HeaderValue};

use super::backoff::backoff_ms;
use super::classify::{classify, Classification, Outcome, ERROR_BODY_LIMIT};
use super::config::ValidConfig;
use super::error::PoolError;
use super::events::{EventBuffer, PoolEvent};
use super::host::{FailureKind, HttpRequest, Rng, TransportError};
use super::limits::min_opt;
use super::pool::{AttemptEnd, Choice};
use super::request::Request;
use super::secret::ApiKey;
use super::shared::Shared;
use super::target::with_query;

/// Credential headers dropped from a caller's request (the configured auth header is too).
const CALLER_CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// The longest an error body is read for classification when no timeout or deadline is
/// nearer: error bodies are small, and a stalled one must not hold the call or its key.
pub const PEEK_WAIT_MS: u64 = 10_000;

/// What the driver must do next.
#[derive(Debug)]
pub enum Action {
    /// Send `request` as attempt `attempt`; report its end with [`Call::handle_response`] or
    /// [`Call::handle_failure`]. When `request.cancellable` is set the machine may end the
    /// attempt before it completes (a timeout applies), so the host must be able to abort it.
    /// `key_id` names the key it goes out with (the [`Finished::key_id`] if it is the answer).
    Send { attempt: u32, key_id: String, request: HttpRequest },
    /// Read up to `limit` bytes of the body of attempt `attempt` (an error answer), leaving the
    /// body readable in full; report with [`Call::handle_peeked`].
    Peek { attempt: u32, limit: usize },
    /// Attempt `attempt` is over for the machine: abort it if still running, stop reading its
    /// body and release its response.
    Discard { attempt: u32 },
    /// The call ended. Stop any read still running on the answer's body; release every other
    /// response.
    Done(Result<Finished, PoolError>),
}

/// A call that ended with an upstream answer: a success, an answer handed back at once (4xx,
/// too large), or the last failure once no key, retry or time was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The attempt whose response is the answer.
    pub attempt: u32,
    pub key_id: String,
    pub attempts: u32,
    pub outcome: Outcome,
    /// When the call ended on key faults: when the earliest key returns (epoch ms).
    pub retry_at_ms: Option<u64>,
}

/// One attempt in flight.
#[derive(Debug, Clone)]
struct Attempt {
    number: u32,
    slot: usize,
    key_id: String,
    started: u64,
    /// When the machine ends it if it has not ended (timeout, deadline, peek bound).
    ends_at: Option<u64>,
}

#[derive(Debug)]
enum Phase {
    /// A key is to be chosen at the next poll.
    Choose,
    /// Waiting for a backoff, a cooling key or a rate ceiling until this time.
    Waiting {
        until: u64,
    },
    /// Waiting for the response head of this attempt.
    Sent(Attempt),
    /// Waiting for the start of this attempt's error body.
    Peeking {
        attempt: Attempt,
        status: u16,
        headers: HeaderMap,
    },
    Done,
}

/// The best answer so far, given back when the call can go no further.
#[derive(Debug)]
enum Last {
    Reply(Finished),
    Error(PoolError),
}

/// One call through the pool.
#[derive(Debug)]
pub struct Call {
    req: Request,
    url: String,
    timeout_ms: Option<u64>,
    deadline_at: Option<u64>,
    /// The method may be resent after an ambiguous failure.
    resendable: bool,
    started: u64,
    /// Key faults fail over without spending retries, but never more than once per key.
    max_attempts: u32,
    /// Retries after transient failures: the request's own `retry_attempts`, else the config's.
    retry_budget: u32,
    attempts: u32,
    retries: u32,
    tried: Vec<usize>,
    last: Option<Last>,
    /// A key fault whose `failover` event waits for the key the call moves to.
    failover: Option<(String, Outcome, u32)>,
    /// The end of the last wait, for a call that runs out of time before any attempt.
    waited_for: Option<u64>,
    phase: Phase,
    actions: VecDeque<Action>,
}

impl Call {
    /// Starts a call at `now`. Everything that could send a key elsewhere, and every request
    /// no upstream should get, is refused here, before a key is touched.
    pub fn start<R: Rng>(shared: &Shared<R>, req: Request, now: u64) -> Result<Call, PoolError> {
        req.check()?;
        let config = &shared.config;
        let url = with_query(&shared.resolve(&req.path)?, &req.query, None);
        let pool_len = u32::try_from(shared.pool.len()).unwrap_or(u32::MAX);
        let retry_budget = req.retry_attempts.unwrap_or(config.retry_attempts);
        Ok(Call {
            timeout_ms: req.timeout_ms.or(config.request_timeout_ms),
            deadline_at: req.deadline_ms.or(config.deadline_ms).map(|ms| now.saturating_add(ms)),
            resendable: config.retryable_methods.contains(&req.method),
            started: now,
            max_attempts: retry_budget.saturating_add(pool_len).saturating_add(1),
            retry_budget,
            attempts: 0,
            retries: 0,
            tried: Vec::new(),
            last: None,
            failover: None,
            waited_for: None,
            phase: Phase::Choose,
            actions: VecDeque::new(),
            req,
            url,
        })
    }

    /// The next thing to do, or `None` until an input or [`Call::poll_timeout`] comes.
    pub fn poll<R: Rng>(&mut self, shared: &mut Shared<R>, now: u64) -> Option<Action> {
        if self.actions.is_empty() && matches!(self.phase, Phase::Choose) {
            self.choose(shared, now);
        }
        self.actions.pop_front()
    }

    /// When [`Call::handle_timeout`] is due (epoch ms), if anything waits on time.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.phase {
            Phase::Waiting { until } => Some(*until),
            Phase::Sent(a) | Phase::Peeking { attempt: a, .. } => a.ends_at,
            Phase::Choose | Phase::Done => None,
        }
    }

    /// Whether the call has ended (its [`Action::Done`] may still wait to be polled).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Time has come: a wait ends, or an attempt runs out of time. Early calls do nothing.
    pub fn handle_timeout<R: Rng>(&mut self, shared: &mut Shared<R>, now: u64) {
        let due = self.poll_timeout().is_some_and(|t| now >= t);
        if !due {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Choose) {
            Phase::Waiting { .. } => {}
            Phase::Sent(a) => {
                let after_ms = a.ends_at.unwrap_or(now).saturating_sub(a.started);
                let error = PoolError::Timeout { key_id: a.key_id.clone(), after_ms };
                self.attempt_failed(shared, a, now, AttemptEnd::Timeout, error, FailureKind::Ambiguous);
            }
            // A stalled error body: classify on the status and headers that arrived.
            Phase::Peeking { attempt, status, headers } => {
                let verdict = classify(status, &headers, &[], now);
                self.answered(shared, attempt, now, status, verdict);
            }
            phase @ (Phase::Choose | Phase::Done) => self.phase = phase,
        }
    }

    /// The response head of attempt `attempt` arrived. Returns false (and changes nothing)
    /// when the machine does not wait for it (a stale or wrong report).
    pub fn handle_response<R: Rng>(&mut self, shared: &mut Shared<R>, attempt: u32, now: u64, status: u16, headers: &HeaderMap) -> bool {
        let Some(a) = self.take_sent(attempt) else { return false };
        if status >= 400 {
            let mut a = a;
            a.ends_at = min_opt(a.ends_at, Some(now.saturating_add(PEEK_WAIT_MS)));
            self.phase = Phase::Peeking { attempt: a, status, headers: headers.clone() };
            self.actions.push_back(Action::Peek { attempt, limit: ERROR_BODY_LIMIT });
        } else {
            let verdict = classify(status, headers, &[], now);
            self.answered(shared, a, now, status, verdict);
        }
        true
    }

    /// Attempt `attempt` got no response. Returns false when the machine does not wait for it.
    pub fn handle_failure<R: Rng>(&mut self, shared: &mut Shared<R>, attempt: u32, now: u64, error: &TransportError) -> bool {
        let Some(a) = self.take_sent(attempt) else { return false };
        let e = PoolError::Network { key_id: a.key_id.clone(), message: shared.redact(&error.message) };
        self.attempt_failed(shared, a, now, AttemptEnd::Network, e, error.kind);
        true
    }

    /// The start of attempt `attempt`'s error body (what could be read: a body that broke
    /// off is reported with what arrived). Returns false when the machine does not wait for it.
    pub fn handle_peeked<R: Rng>(&mut self, shared: &mut Shared<R>, attempt: u32, now: u64, body: &[u8]) -> bool {
        if !matches!(&self.phase, Phase::Peeking { attempt: a, .. } if a.number == attempt) {
            return false;
        }
        let Phase::Peeking { attempt: a, status, headers } = std::mem::replace(&mut self.phase, Phase::Choose) else { return false };
        let verdict = classify(status, &headers, body, now);
        self.answered(shared, a, now, status, verdict);
        true
    }

    /// The caller gave up: an attempt in flight is booked as cancelled, so per key
    /// `total_requests = successes + errors` holds. The driver releases everything it holds.
    pub fn cancel<R: Rng>(&mut self, shared: &mut Shared<R>, now: u64) {
        if let Phase::Sent(a) | Phase::Peeking { attempt: a, .. } = std::mem::replace(&mut self.phase, Phase::Done) {
            shared.pool.finish(a.slot, now, AttemptEnd::Cancelled, &mut EventBuffer::new());
        }
        self.actions.clear();
        self.last = None;
    }

    fn take_sent(&mut self, attempt: u32) -> Option<Attempt> {
        if !matches!(&self.phase, Phase::Sent(a) if a.number == attempt) {
            return None;
        }
        match std::mem::replace(&mut self.phase, Phase::Choose) {
            Phase::Sent(a) => Some(a),
            _ => None,
        }
    }

    fn fits_deadline(&self, at: u64) -> bool {
        self.deadline_at.is_none_or(|d| at < d)
    }

    /// Emits the pending `failover` event, naming the key the call moved to (if any).
    fn emit_failover<R: Rng>(&mut self, shared: &mut Shared<R>, to_key_id: Option<String>) {
        if let Some((from_key_id, reason, attempt)) = self.failover.take() {
            shared.push_events([PoolEvent::Failover { from_key_id, to_key_id, reason, attempt }]);
        }
    }

    fn choose<R: Rng>(&mut self, shared: &mut Shared<R>, now: u64) {
        self.choose_key(shared, now);
        // No attempt began (a wait, or the end): the failover went to no key.
        self.emit_failover(shared, None);
    }

    fn choose_key<R: Rng>(&mut self, shared: &mut Shared<R>, now: u64) {
        if !self.fits_deadline(now) {
            return self.give_up(self.waited_for);
        }
        // Bounded: a slot that cannot begin is passed over from then on.
        for _ in 0..=shared.pool.len() {
            let mut events = EventBuffer::new();
            let choice = shared.pool.choose(now, &self.tried, &shared.rng, &mut events);
            shared.push_events(events);
            match choice {
                Choice::Key(slot) => {
                    if self.send(shared, slot, now) {
                        return;
                    }
                    self.tried.push(slot);
                }
                Choice::Wait { until, shaping } => {
                    let delay = until.saturating_sub(now);
                    let fits = delay <= shared.config.max_wait_ms && self.fits_deadline(until);
                    // Waiting on a rate ceiling is free; waiting for a cooling key is a retry.
                    if fits && !shaping && self.retries < self.retry_budget {
                        self.retries += 1;
                        shared.push_events([PoolEvent::Retry {
                            attempt: self.attempts,
                            reason: "all_keys_cooling".into(),
                            delay_ms: delay,
                        }]);
                    } else if !(fits && shaping) {
                        return self.give_up(Some(until));
                    }
                    self.waited_for = Some(until);
                    self.phase = Phase::Waiting { until };
                    return;
                }
                Choice::None => return self.give_up(None),
            }
        }
        self.give_up(None)
    }

    /// Begins an attempt on `slot`; false if the key is gone.
    fn send<R: Rng>(&mut self, shared: &mut Shared<R>, slot: usize, now: u64) -> bool {
        let Some((key_id, key)) = shared.pool.begin(slot, now) else { return false };
        self.attempts = self.attempts.saturating_add(1);
        let number = self.attempts;
        let ends_at = min_opt(self.timeout_ms.map(|ms| now.saturating_add(ms)), self.deadline_at);
        let request = match wire_request(&shared.config, &self.req, &self.url, &key, ends_at.is_some()) {
            Ok(r) => r,
            Err(e) => {
                shared.pool.finish(slot, now, AttemptEnd::Network, &mut EventBuffer::new());
                self.finish(Err(e));
                return true;
            }
        };
        self.emit_failover(shared, Some(key_id.clone()));
        if shared.listening() {
            shared.push_events([PoolEvent::Request { key_id: key_id.clone(), attempt: number, method: self.req.method.to_string() }]);
        }
        self.actions.push_back(Action::Send { attempt: number, key_id: key_id.clone(), request });
        self.phase = Phase::Sent(Attempt { number, slot, key_id, started: now, ends_at });
        true
    }

    /// An attempt ended with no response (network failure or timeout).
    fn attempt_failed<R: Rng>(
        &mut self,
        shared: &mut Shared<R>,
        a: Attempt,
        now: u64,
        end: AttemptEnd,
        error: PoolError,
        kind: FailureKind,
    ) {
        shared.pool.finish(a.slot, now, end, &mut EventBuffer::new());
        self.actions.push_back(Action::Discard { attempt: a.number });
        // Sent with no answer, the upstream may have acted on it: resend only methods the
        // caller allows. Nothing was sent when the connection could not be made.
        let safe = kind == FailureKind::Connect || self.resendable;
        let config = &shared.config;
        if safe && self.retries < self.retry_budget && self.attempts < self.max_attempts {
            let delay = backoff_ms(self.retries + 1, config.backoff_base_ms, config.backoff_max_ms, &shared.rng).min(config.max_wait_ms);
            let until = now.saturating_add(delay);
            if self.fits_deadline(until) {
                let reason = error.kind().into();
                return self.retry_after(shared, a.slot, reason, delay, until, Last::Error(error));
            }
        }
        self.set_last(Last::Error(error));
        self.give_up(None);
    }

    /// Spends a retry: `slot` is passed over, `last` kept as the answer so far, and the call
    /// waits until `until` before choosing again.
    fn retry_after<R: Rng>(&mut self, shared: &mut Shared<R>, slot: usize, reason: String, delay: u64, until: u64, last: Last) {
        self.retries += 1;
        self.tried.push(slot);
        shared.push_events([PoolEvent::Retry { attempt: self.attempts, reason, delay_ms: delay }]);
        self.set_last(last);
        self.phase = Phase::Waiting { until };
    }

    /// An attempt got an answer, classified as `verdict`.
    fn answered<R: Rng>(&mut self, shared: &mut Shared<R>, a: Attempt, now: u64, status: u16, verdict: Classification) {
        let mut events = EventBuffer::new();
        shared.pool.finish(a.slot, now, AttemptEnd::Response(verdict), &mut events);
        let outcome = verdict.outcome;
        shared.push_events(events);
        let moves_on = outcome.is_key_fault() && self.attempts < self.max_attempts;
        if outcome.is_key_fault() {
            self.failover = Some((a.key_id.clone(), outcome, self.attempts));
            if !moves_on {
                self.emit_failover(shared, None);
            }
        }
        let reply = Finished { attempt: a.number, key_id: a.key_id, attempts: self.attempts, outcome, retry_at_ms: None };
        let config = &shared.config;
        if moves_on {
            self.tried.push(a.slot);
            self.set_last(Last::Reply(reply));
            self.phase = Phase::Choose;
            return;
        }
        if outcome.is_transient() && self.retries < self.retry_budget && self.attempts < self.max_attempts {
            // The provider's own delay is honoured or not waited for at all; ours is capped.
            let backoff =
                || backoff_ms(self.retries + 1, config.backoff_base_ms, config.backoff_max_ms, &shared.rng).min(config.max_wait_ms);
            let delay = verdict.limits.retry_after_ms.unwrap_or_else(backoff);
            let until = now.saturating_add(delay);
            if delay <= config.max_wait_ms && self.fits_deadline(until) {
                return self.retry_after(shared, a.slot, outcome.as_str().into(), delay, until, Last::Reply(reply));
            }
        }
        if !outcome.is_key_fault() && shared.listening() {
            let (key_id, attempts, elapsed_ms) = (reply.key_id.clone(), reply.attempts, now.saturating_sub(self.started));
            shared.push_events([PoolEvent::Success { key_id, status, attempts, elapsed_ms }]);
        }
        self.finish(Ok(reply));
    }

    /// Keeps `last` as the answer to give if the call goes no further, releasing the response
    /// it replaces.
    fn set_last(&mut self, last: Last) {
        if let Some(Last::Reply(old)) = self.last.replace(last) {
            self.actions.push_back(Action::Discard { attempt: old.attempt });
        }
    }

    /// Ends with the best answer so far; `retry_at` is when the earliest key returns.
    fn give_up(&mut self, retry_at: Option<u64>) {
        let result = match self.last.take() {
            Some(Last::Reply(reply)) => Ok(Finished { retry_at_ms: retry_at, ..reply }),
            Some(Last::Error(e)) => Err(e),
            None => Err(PoolError::NoHealthyKeys { retry_at_ms: retry_at }),
        };
        self.finish(result);
    }

    fn finish(&mut self, result: Result<Finished, PoolError>) {
        if let Some(Last::Reply(old)) = self.last.take() {
            if result.as_ref().map_or(true, |r| r.attempt != old.attempt) {
                self.actions.push_back(Action::Discard { attempt: old.attempt });
            }
        }
        self.phase = Phase::Done;
        self.actions.push_back(Action::Done(result));
    }
}

/// The request for one attempt, with `key` attached and the caller's credentials dropped.
fn wire_request(config: &ValidConfig, req: &Request, url: &str, key: &ApiKey, cancellable: bool) -> Result<HttpRequest, PoolError> {
    let mut headers = config.default_headers.clone();
    // A caller's own credentials (an SDK's dummy key) never go upstream: keys come from the pool.
    let from_caller = |name: &http::HeaderName| !CALLER_CREDENTIALS.contains(&name.as_str());
    for name in req.headers.keys().filter(|n| from_caller(n)) {
        headers.remove(name);
    }
    for (name, value) in req.headers.iter().filter(|(n, _)| from_caller(n)) {
        headers.append(name, value.clone());
    }
    headers.remove(&config.auth_header);
    let url = match &config.query_auth_param {
        Some(param) => with_query(url, &[(param.clone(), key.expose().to_owned())], Some(param)),
        None => {
            let text = match &config.auth_scheme {
                // Joined by hand: `format!` costs several times the copy (every request builds one).
                Some(scheme) => {
                    let mut text = String::with_capacity(scheme.len() + 1 + key.expose().len());
                    text.push_str(scheme);
                    text.push(' ');
                    text.push_str(key.expose());
                    text
                }
                None => key.expose().to_owned(),
            };
            let mut value =
                HeaderValue::from_str(&text).map_err(|_| PoolError::InvalidRequest("key is not a valid header value".to_owned()))?;
            value.set_sensitive(true);
            headers.insert(config.auth_header.clone(), value);
            url.to_owned()
        }
    };
    Ok(HttpRequest { method: req.method.clone(), url, headers, body: req.body.clone(), cancellable })
}
