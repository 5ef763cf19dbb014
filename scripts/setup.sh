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

# WASI hosts for the tests: Wasmtime's CLI (serve + run with wasi:http) and wac (composes the
# test driver with the component). Pinned; built from crates.io the first time (~10 minutes).
need_cargo_tool() { # binary crate version
  if ! "$1" --version 2>/dev/null | grep -q " $3"; then
    cargo install "$2" --version "=$3" --locked || cargo install "$2" --version "=$3"
  fi
}
if [ "${POOLSWITCH_SKIP_WASI_TOOLS:-}" != 1 ]; then
  need_cargo_tool wasmtime wasmtime-cli 48.0.8
  need_cargo_tool wac wac-cli 0.12.0
  # The Python WASI host of the tests (tests/wasi/python_host.py): PyPI's wasmtime at the version
  # pinned in tests/wasi/requirements.txt, in the venv target/python.
  wasmtime_py=$(sed -n 's/^wasmtime==//p' tests/wasi/requirements.txt)
  if ! target/python/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('wasmtime') != '$wasmtime_py')" 2>/dev/null; then
    # Debian's python3 makes venvs only with python3-venv (ensurepip); a fresh machine lacks it.
    if ! python3 -c "import ensurepip" 2>/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv
    fi
    python3 -m venv --clear target/python
    target/python/bin/pip install --quiet --disable-pip-version-check -r tests/wasi/requirements.txt
  fi
fi

# npm tools (esbuild, binaryen's wasm-opt, miniflare, playwright-core, typescript; for the packaging suite vite,
# webpack, webpack-cli, bun, deno, edge-runtime, publint, attw: bun and deno ship their binaries in optional
# platform packages, so they work without install scripts), as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
