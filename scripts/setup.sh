# Sourced by the scripts: installs what the project needs, skipping what is already there.
# shellcheck shell=bash
need_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}
need_target wasm32-unknown-unknown
need_target wasm32-wasip2
