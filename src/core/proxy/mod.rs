//! Proxy mode, defined once: what both gateways (the Node `poolswitch-wasm serve` and the WASI
//! component under `wasmtime serve`) answer, and how. Host-free: each gateway keeps only its
//! sockets and streams and asks this module for every decision.
//!
//! - [`routes`]: the URLs (all local endpoints under `/poolswitch/`, so none can shadow an
//!   upstream path) and what each one is;
//! - [`auth`]: the gateway token, compared in constant time;
//! - [`settings`]: the proxy's config from a file object, `POOLSWITCH_*` variables and flags,
//!   unknown fields refused by name with the nearest known one;
//! - [`answer`]: error kind → HTTP status and JSON body, and the retry headers of a
//!   no-healthy-keys answer;
//! - [`headers`]: which headers cross the proxy, and the key-id header's encoding;
//! - [`metrics`]: the Prometheus text rendered from the pool's status.

pub mod answer;
pub mod auth;
pub mod headers;
pub mod metrics;
pub mod routes;
pub mod settings;

pub use answer::{error_answer, status_for, ErrorAnswer};
pub use auth::{presented_token, token_matches};
pub use headers::{forward_request_header, forward_response_header, key_id_header};
pub use metrics::render_metrics;
pub use routes::{route, Route, PREFIX};
pub use settings::{ProxyConfig, ProxySettings};
