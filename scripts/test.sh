#!/usr/bin/env bash
# Runs every check and test of the project. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -- -D warnings

step "core tests (native, virtual clock)"
cargo test --locked

step "the crate builds for both wasm targets"
cargo build --locked --target wasm32-unknown-unknown --release
cargo build --locked --target wasm32-wasip2 --release
