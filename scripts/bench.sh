#!/usr/bin/env bash
# Benchmarks (bench/): builds the package, installs the original clients to compare with into
# bench/out (npm poolswitch-node@0.1.0, PyPI poolswitch 0.1.3 in a venv), runs bench/run.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
POOLSWITCH_SKIP_WASI_TOOLS=1 source scripts/setup.sh
./scripts/build-pkg.sh
mkdir -p bench/out/node
if [ ! -d bench/out/node/node_modules/poolswitch-node ]; then
  (cd bench/out/node && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --silent poolswitch-node@0.1.0)
fi
if [ ! -x bench/out/venv/bin/python ] || ! bench/out/venv/bin/python -c "import poolswitch" 2>/dev/null; then
  python3 -m venv bench/out/venv
  bench/out/venv/bin/pip install --quiet poolswitch==0.1.3
fi
node bench/run.mjs
