//! poolswitch: one API-key pool client for every WebAssembly host.
//!
//! [`core`] is the host-agnostic engine (key choice, classification, retries, cooldowns, status).
//! Host bindings live beside it, each behind the `cfg` of the target it serves.

pub mod core;

// The JS binding; its wire format is also compiled for native tests.
#[cfg(any(all(target_arch = "wasm32", target_os = "unknown"), test))]
pub mod js;

#[cfg(target_os = "wasi")]
pub mod component;
