#!/usr/bin/env bash
# Builds the two WASI components into target/components/:
#   poolswitch.wasm          the `poolswitch:client` world (exports the client interface)
#   poolswitch-gateway.wasm  the gateway (exports wasi:http/incoming-handler, for `wasmtime serve`)
# The gateway builds in its own target dir: it links the library without the client exports,
# and sharing one dir would overwrite the client component's file.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --target wasm32-wasip2 --release
cargo build --locked -p poolswitch-gateway --target wasm32-wasip2 --release --target-dir target/gateway
mkdir -p target/components
cp target/wasm32-wasip2/release/poolswitch.wasm target/components/poolswitch.wasm
cp target/gateway/wasm32-wasip2/release/poolswitch-gateway.wasm target/components/poolswitch-gateway.wasm
ls -l target/components
