#!/usr/bin/env bash
# Runs every check and test of the project. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Headless Chromium for the browser tests, from Debian.
if ! command -v chromium >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
# A real redis-server for the shared-store tests, from Debian.
if ! command -v redis-server >/dev/null; then
  apt-get update -qq && apt-get install -y -qq redis-server
fi

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown --features node-proxy -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -- -D warnings
cargo clippy --locked -p poolswitch-gateway -p poolswitch-wasi-driver --target wasm32-wasip2 --target-dir target/gateway -- -D warnings

step "core tests (native, virtual clock)"
cargo test --locked

step "WASI components and the test driver"
./scripts/build-components.sh
cargo build --locked -p poolswitch-wasi-driver --target wasm32-wasip2 --release --target-dir target/driver

step "npm package"
./scripts/build-pkg.sh

step "hosts: Node, install from tarball, both proxy gateways, headless Chromium, workerd, jco, Wasmtime (CLI and its Python embedding); shared stores (Redis, Durable Object, the WASI state file)"
node --test tests/js/ tests/proxy/ tests/browser/ tests/workerd/ tests/wasi/ tests/store/

step "packaging: npm pack, install into fresh projects, build with Vite/webpack/esbuild/bun, run in Chromium, Node, Bun, Deno, edge-runtime; publint, attw, tsc; CLI under npx"
node --test tests/packaging/
