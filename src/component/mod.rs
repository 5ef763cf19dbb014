//! The WASI binding (wasm32-wasip2): host adapters over `wasi:http`, `wasi:clocks` and
//! `wasi:random` through `wstd`, and (with the `client-component` feature) the exports of the
//! `poolswitch:client` WIT world.

pub mod host;

// wit-bindgen's generated glue is the only unsafe code in the crate.
#[cfg(feature = "client-component")]
#[allow(unsafe_code)]
mod exports;
