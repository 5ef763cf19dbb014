//! The target-agnostic engine. The request policy is a sans-IO machine ([`machine`]) fed with
//! the time and the results of host operations; [`client`] drives it through the traits in
//! [`host`], and the JS binding drives it directly, so every host runs the same logic.

// Namespaces of their own: their constants and lower-level parts (the pool without the request
// policy, the proxy rules, the limits parser, a driver's event delivery) are used by name from
// tests, benches and the gateway.
pub mod classify;
pub mod config;
pub mod error;
pub mod limits;
pub mod machine;
pub mod pool;
pub mod proxy;
pub mod secret;
pub mod shared;

// Reached only through the re-exports below (or, inside the crate, by path).
mod backoff;
mod client;
mod events;
mod host;
mod index;
mod request;
mod snapshot;
mod status;
mod strategy;
mod target;
pub(crate) mod wording;

pub use classify::{classify, Classification, Outcome};
pub use client::{PoolClient, Reply};
pub use config::{KeyConfig, PoolConfig, Strategy};
pub use error::{ConfigError, PoolError};
pub use events::PoolEvent;
pub use host::{Clock, FailureKind, HttpRequest, HttpResponse, ResponseBody, Rng, SeededRng, Sleeper, Transport, TransportError};
pub use machine::{Action, Call, Finished};
pub use request::Request;
pub use secret::ApiKey;
pub use shared::{Listener, Shared};
pub use snapshot::{KeySnapshot, PoolSnapshot};
pub use status::{KeyState, KeyStatus, PoolStatus};
