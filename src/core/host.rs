//! What the core needs from its host, as small traits each binding implements.
//!
//! No `Send` bounds anywhere: wasm is single-threaded and JS futures are `!Send`.
#![allow(async_fn_in_trait)] // deliberately no Send bound on the returned futures

use std::cell::RefCell;

use bytes::Bytes;
use http::{HeaderMap, Method};

/// A request ready to go on the wire: key attached, URL absolute.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// The auth header (if any) is marked sensitive, so `Debug` hides it.
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The core may drop this attempt before it completes (a timeout applies to it), so a host
    /// whose requests outlive their future must make the request abortable.
    pub cancellable: bool,
}

/// A response as the transport received it. `body` is the host's own body type, so a
/// successful body never has to cross into the core.
#[derive(Debug)]
pub struct HttpResponse<B> {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: B,
}

/// The host's response body.
pub trait ResponseBody {
    /// Reads up to `limit` bytes for classifying an error response, leaving the body still
    /// readable in full by the caller (hosts tee, clone or buffer as they must).
    async fn peek(&mut self, limit: usize) -> Vec<u8>;
}

impl ResponseBody for Vec<u8> {
    async fn peek(&mut self, limit: usize) -> Vec<u8> {
        self[..self.len().min(limit)].to_vec()
    }
}

/// Whether a failed attempt may have reached the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureKind {
    /// Nothing was sent: the name did not resolve, the connection was refused or timed out
    /// while connecting. Safe to resend on any key, for any method.
    Connect,
    /// The request may have been received (the connection broke after it was written, or no
    /// answer came). Resent only for `retryable_methods`: a resent POST may be billed twice.
    #[default]
    Ambiguous,
}

/// The upstream could not be reached, or the connection broke before a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// The host's message; the core redacts key values from it before showing it.
    pub message: String,
    pub kind: FailureKind,
}

impl TransportError {
    /// A failure after which the request may have been received.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Ambiguous }
    }

    /// A failure to connect: nothing was sent.
    pub fn connect(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Connect }
    }
}

/// Sends one HTTP request.
pub trait Transport {
    type Body: ResponseBody;
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<Self::Body>, TransportError>;
}

/// Wall-clock time in milliseconds since the Unix epoch.
/// (Never `Instant::now()`: it panics on wasm32-unknown-unknown.)
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// Waits without blocking the host.
pub trait Sleeper {
    async fn sleep(&self, ms: u64);
}

/// Random numbers for jitter and the random strategies.
pub trait Rng {
    fn next_u64(&self) -> u64;

    /// A float in `[0, 1)`.
    fn next_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in `[0, n)`; 0 when `n` is 0.
    fn below(&self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }
    }
}

/// A fast generator seeded on first use from the host's entropy. Lazy because edge workers
/// forbid randomness at module scope, which is where a client is often built.
pub struct SeededRng<F: Fn() -> u64> {
    seed: F,
    rng: RefCell<Option<fastrand::Rng>>,
}

impl<F: Fn() -> u64> SeededRng<F> {
    pub fn new(seed: F) -> Self {
        Self { seed, rng: RefCell::new(None) }
    }
}

impl<F: Fn() -> u64> Rng for SeededRng<F> {
    fn next_u64(&self) -> u64 {
        let mut slot = self.rng.borrow_mut();
        slot.get_or_insert_with(|| fastrand::Rng::with_seed((self.seed)())).u64(..)
    }
}
