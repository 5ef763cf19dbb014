#!/usr/bin/env bash
# The main job: builds the npm package and runs a short workload through it against the
# built-in mock provider (three keys with small quotas, one rate-limiting). No keys needed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs no WASI tools.
POOLSWITCH_SKIP_WASI_TOOLS=1 source scripts/setup.sh
./scripts/build-pkg.sh
node examples/demo.mjs
