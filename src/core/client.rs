//! `PoolClient`: the request machine ([`super::machine`]) driven by async host traits, for
//! hosts with an executor (the WASI component and gateway, native tests).
//!
//! Pool state sits in a `RefCell` and is only borrowed while the machine takes one step,
//! never across an `.await`, so any number of requests can be in flight on one instance.

use std::cell::{Ref, RefCell};

use super::config::{KeyConfig, PoolConfig, ValidConfig};
use super::error::{ConfigError, PoolError};
use super::host::{Clock, HttpRequest, HttpResponse, ResponseBody, Rng, Sleeper, Transport, TransportError};
use super::machine::{Action, Call, Finished};
use super::shared::{deliver, Shared};
use super::snapshot::PoolSnapshot;
use super::status::PoolStatus;

pub(super) use super::classify::Outcome;
pub(super) use super::request::Request;
pub(super) use super::shared::Listener;

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

/// The API-key pool client, generic over its host.
pub struct PoolClient<T, C, S, R> {
    shared: RefCell<Shared<R>>,
    transport: T,
    clock: C,
    sleeper: S,
}

/// What one wait of the driver ended with.
enum Event<B> {
    Sent(u32, Result<HttpResponse<B>, TransportError>),
    Peeked(u32, Vec<u8>),
    Time,
}

/// A call being driven; dropped before its end (a caller's abort), it books the attempt in
/// flight as cancelled.
struct Running<'a, R: Rng, C: Clock> {
    shared: &'a RefCell<Shared<R>>,
    clock: &'a C,
    call: Call,
}

impl<R: Rng, C: Clock> Drop for Running<'_, R, C> {
    fn drop(&mut self) {
        if !self.call.is_done() {
            if let Ok(mut shared) = self.shared.try_borrow_mut() {
                self.call.cancel(&mut shared, self.clock.now_ms());
            }
        }
    }
}

impl<T: Transport, C: Clock, S: Sleeper, R: Rng> PoolClient<T, C, S, R> {
    /// Validates `config` and builds the client.
    pub fn new(config: &PoolConfig, transport: T, clock: C, sleeper: S, rng: R) -> Result<Self, ConfigError> {
        Ok(Self { shared: RefCell::new(Shared::new(config, rng)?), transport, clock, sleeper })
    }

    /// Runs `f` on the shared state at this moment, then delivers the events it produced.
    fn with_shared<X>(&self, f: impl FnOnce(&mut Shared<R>, u64) -> X) -> X {
        let now = self.clock.now_ms();
        let (out, events) = {
            let mut shared = self.shared.borrow_mut();
            let out = f(&mut shared, now);
            (out, shared.take_events())
        };
        deliver(events);
        out
    }

    /// Subscribes to pool events (replacing any earlier listener).
    pub fn set_listener(&self, listener: Option<Listener>) {
        self.shared.borrow_mut().set_listener(listener);
    }

    /// Per-key and pool status at this moment.
    pub fn status(&self) -> PoolStatus {
        self.shared.borrow().status(self.clock.now_ms())
    }

    /// The shareable state of every key.
    pub fn export_state(&self) -> PoolSnapshot {
        self.shared.borrow().export_state()
    }

    /// Replaces key state from a snapshot.
    pub fn import_state(&self, snapshot: &PoolSnapshot) {
        self.with_shared(|s, now| s.import_state(snapshot, now))
    }

    /// Merges another instance's key state.
    pub fn merge_state(&self, snapshot: &PoolSnapshot) {
        self.with_shared(|s, now| s.merge_state(snapshot, now))
    }

    /// Adds a key at run time (same rules as at construction).
    pub fn add_key(&self, key: &KeyConfig) -> Result<String, ConfigError> {
        self.with_shared(|s, now| s.add_key(key, now))
    }

    /// Removes a key; requests in flight on it finish normally. The last key cannot be removed.
    pub fn remove_key(&self, id: &str) -> Result<(), PoolError> {
        self.with_shared(|s, _| s.remove_key(id))
    }

    /// Switches a key on or off. Enabling also clears an `invalid` verdict and any rest.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), PoolError> {
        self.with_shared(|s, now| s.set_enabled(id, enabled, now))
    }

    /// Books a response body that broke off after it was handed to the caller (a stream cut
    /// mid-way): counted against the key in status and reported as a `stream_error` event.
    pub fn record_stream_error(&self, id: &str) -> Result<(), PoolError> {
        self.with_shared(|s, now| s.record_stream_error(id, now))
    }

    /// The validated configuration.
    pub fn config(&self) -> Ref<'_, ValidConfig> {
        Ref::map(self.shared.borrow(), |s| &s.config)
    }

    /// Sends `req` through the pool: the machine decides, this carries out its actions.
    pub async fn request(&self, req: Request) -> Result<Reply<T::Body>, PoolError> {
        let call = self.with_shared(|s, now| Call::start(s, req, now))?;
        let mut run = Running { shared: &self.shared, clock: &self.clock, call };
        let mut responses: Vec<(u32, HttpResponse<T::Body>)> = Vec::new();
        loop {
            let mut sending: Option<(u32, HttpRequest)> = None;
            let mut peeking: Option<(u32, usize)> = None;
            while let Some(action) = self.with_shared(|s, now| run.call.poll(s, now)) {
                match action {
                    Action::Send { attempt, request, .. } => sending = Some((attempt, request)),
                    Action::Peek { attempt, limit } => peeking = Some((attempt, limit)),
                    Action::Discard { attempt } => responses.retain(|(a, _)| *a != attempt),
                    Action::Done(result) => return answer(result?, responses),
                }
            }
            // One attempt at a time: the machine waits for it, or for time.
            let timeout = run.call.poll_timeout();
            let event = {
                let io = async {
                    if let Some((attempt, request)) = sending {
                        return Event::Sent(attempt, self.transport.send(request).await);
                    }
                    if let Some((attempt, limit)) = peeking {
                        if let Some((_, r)) = responses.iter_mut().find(|(a, _)| *a == attempt) {
                            return Event::Peeked(attempt, r.body.peek(limit).await);
                        }
                    }
                    std::future::pending().await
                };
                let time = async {
                    let Some(at) = timeout else { return std::future::pending().await };
                    // Sleeps until the clock says so, so the machine finds its time has come.
                    loop {
                        let now = self.clock.now_ms();
                        if now >= at {
                            return Event::Time;
                        }
                        self.sleeper.sleep(at - now).await;
                    }
                };
                futures_lite::future::or(io, time).await
            };
            match event {
                Event::Sent(attempt, Ok(response)) => {
                    let (status, headers) = (response.status, response.headers.clone());
                    responses.push((attempt, response));
                    self.with_shared(|s, now| run.call.handle_response(s, attempt, now, status, &headers));
                }
                Event::Sent(attempt, Err(e)) => {
                    self.with_shared(|s, now| run.call.handle_failure(s, attempt, now, &e));
                }
                Event::Peeked(attempt, body) => {
                    self.with_shared(|s, now| run.call.handle_peeked(s, attempt, now, &body));
                }
                Event::Time => self.with_shared(|s, now| run.call.handle_timeout(s, now)),
            }
        }
    }
}

/// The reply for the attempt the machine named.
fn answer<B>(done: Finished, responses: Vec<(u32, HttpResponse<B>)>) -> Result<Reply<B>, PoolError> {
    let Some((_, response)) = responses.into_iter().find(|(a, _)| *a == done.attempt) else {
        return Err(PoolError::Network { key_id: done.key_id, message: "the response was lost by the host".to_owned() });
    };
    Ok(Reply { response, key_id: done.key_id, attempts: done.attempts, outcome: done.outcome, retry_at_ms: done.retry_at_ms })
}
