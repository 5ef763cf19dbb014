//! The target-agnostic engine. It talks to the world only through the traits in [`host`],
//! so every binding (JS fetch, wasi:http, native tests) drives the same logic.

pub mod backoff;
pub mod classify;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod host;
pub mod index;
pub mod limits;
pub mod pool;
pub mod proxy;
pub mod secret;
pub mod snapshot;
pub mod status;
pub mod strategy;
pub mod target;
mod wording;

pub use classify::{classify, Classification, Outcome};
pub use client::{PoolClient, Reply, Request};
pub use config::{KeyConfig, PoolConfig, Strategy};
pub use error::{ConfigError, PoolError};
pub use events::PoolEvent;
pub use host::{Clock, HttpRequest, HttpResponse, ResponseBody, Rng, SeededRng, Sleeper, Transport, TransportError};
pub use secret::ApiKey;
pub use snapshot::{KeySnapshot, PoolSnapshot};
pub use status::{KeyState, KeyStatus, PoolStatus};
