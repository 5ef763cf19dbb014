//! The wasm-bindgen binding for Node, browsers and workerd.
//!
//! Only the small JS wrapper in `js/` calls this; users see `PoolSwitchClient`. The binding
//! drives the request machine ([`crate::core::machine`]) directly: every call from JS feeds
//! the machine one input and answers with one step of actions, encoded by [`wire`]. The
//! host's `fetch`, request bodies, responses and abort signals stay on the JS side.
//!
//! [`wire`] is plain Rust, compiled natively for its tests too.

pub mod wire;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod convert;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod pool;
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "node-proxy"))]
mod proxy;
// The module's exports to JS, and so this target's public API.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use pool::WasmPool;
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "node-proxy"))]
pub use proxy::*;
