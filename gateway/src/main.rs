//! The gateway world: a `wasi:http/incoming-handler` component that forwards every request to
//! the upstream through the key pool. `wasmtime serve -S cli=y --env POOLSWITCH_… gateway.wasm`.
//!
//! Configured from `POOLSWITCH_*` variables, with the same schema, routes, token check, body
//! limit, error answers and metrics as the Node gateway (`poolswitch::core::proxy`):
//! `/poolswitch/health`, `/poolswitch/status` and `/poolswitch/metrics` answer locally;
//! everything else goes upstream with a pool key, and the upstream body streams back untouched.
//!
//! `wasmtime serve` gives every request a fresh instance, so the pool's key state lives in a
//! JSON file (`POOLSWITCH_STATE_FILE` in a preopened dir): read at the start of a request and
//! merged back at its end (this request's counters added, later cooldowns kept).

#[cfg(target_os = "wasi")]
mod config;
#[cfg(target_os = "wasi")]
mod proxy;
#[cfg(target_os = "wasi")]
mod state;

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(request: wstd::http::Request<wstd::http::Body>) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    proxy::handle(request).await
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("poolswitch-gateway is a WASI component: cargo build -p poolswitch-gateway --target wasm32-wasip2 --release");
    std::process::exit(2);
}
