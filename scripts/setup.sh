# Sourced by demo.sh and test.sh: installs what the project needs, skipping what is there.
# shellcheck shell=bash
set -euo pipefail

need_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}
need_target wasm32-unknown-unknown
need_target wasm32-wasip2

# wasm-bindgen's CLI must be the exact version of the crate in Cargo.lock.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wb_version"; then
  cargo install wasm-bindgen-cli --version "=$wb_version"
fi

# npm tools (esbuild, binaryen's wasm-opt, miniflare, playwright-core, typescript), as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
