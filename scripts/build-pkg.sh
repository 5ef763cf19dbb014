#!/usr/bin/env bash
# Assembles pkg/, the npm package `poolswitch-wasm` as published: wasm module, JS wrapper,
# per-runtime entry points, types, and the WASI components with their WIT.
# Run by demo.sh and test.sh after setup (test.sh builds the components first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=pkg

cargo build --locked --profile wasm-speed --target wasm32-unknown-unknown
rm -rf "$out" && mkdir -p "$out"/{wasm,esm,cjs,component}
# --experimental-reset-state-function: `__wbg_reset_state`, with which the wrapper replaces an
# instance that trapped (see js/src/client.js) and which makes objects of the old one refuse use.
wasm-bindgen --target web --out-dir "$out/wasm" --out-name poolswitch --no-typescript --experimental-reset-state-function \
  target/wasm32-unknown-unknown/wasm-speed/poolswitch.wasm
# The features rustc enables by default for wasm32; wasm-opt must know them to keep them. -O3
# as the profile (Cargo.toml): the pool's wasm is built for speed, the gateway's below for size.
npx --no-install wasm-opt -O3 \
  --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-reference-types --enable-multivalue \
  "$out/wasm/poolswitch_bg.wasm" -o "$out/wasm/poolswitch_bg.wasm"
# Every entry instantiates with initSync(); the glue's fallback that fetches the .wasm next to
# itself would make bundlers emit a stray asset and break hosts without import.meta.url.
glue="$out/wasm/poolswitch.js"
grep -q "new URL('poolswitch_bg.wasm', import.meta.url)" "$glue"
sed -i "s|new URL('poolswitch_bg.wasm', import.meta.url)|undefined; throw new Error('poolswitch-wasm: the wasm is instantiated by the entry point')|" "$glue"
! grep -q "import.meta" "$glue"

cp js/src/client.js js/src/options.js js/src/browser-guard.js js/src/events.js js/src/task.js js/src/workerd.js js/src/inline.js js/src/node-inline.js "$out/esm/"
cp -r js/src/transport "$out/esm/transport"
# The shared-store code (the client and workerd.js import it; esm/node.js adds the Redis store).
cp -r js/src/store "$out/esm/store"
# One bundle per module format, the .wasm inlined as base64 (decoded by inline.js): esm/browser.js
# for browsers, bundlers, Deno, Bun and edge runtimes; cjs/index.cjs (its base64 in
# cjs/wasm-base64.js, required) for require() and, through esm/node.js, for import in Node.
base64() { node -e 'const fs = require("node:fs"); fs.writeFileSync(process.argv[2], process.argv[3] + JSON.stringify(fs.readFileSync(process.argv[1]).toString("base64")) + ";\n")' "$out/wasm/poolswitch_bg.wasm" "$@"; }
base64 "$out/esm/wasm-base64.js" "export default "
npx --no-install esbuild "$out/esm/inline.js" --bundle --format=esm --platform=neutral --target=es2022 \
  --log-level=warning --outfile="$out/esm/browser.js"
echo '{ "type": "commonjs" }' > "$out/cjs/package.json"
base64 "$out/cjs/wasm-base64.js" "module.exports = "
npx --no-install esbuild "$out/esm/inline.js" --bundle --format=cjs --platform=neutral --target=es2022 \
  --external:./wasm-base64.js --log-level=warning --outfile="$out/cjs/index.cjs"
# Node's own CommonJS build (node + require, and import through esm/node.js): the same, with
# undici's dispatcher as the upstream transport; undici stays a dependency, loaded on first use.
npx --no-install esbuild "$out/esm/node-inline.js" --bundle --format=cjs --platform=node --target=node20 \
  --external:./wasm-base64.js --external:undici --log-level=warning --log-override:empty-import-meta=silent \
  --outfile="$out/cjs/node.cjs"
rm "$out/esm/inline.js" "$out/esm/node-inline.js" "$out/esm/wasm-base64.js"
cp js/src/node.js "$out/esm/node.js"
cp js/src/node-import.cjs "$out/cjs/node-import.cjs"
# The mock provider for require() too; its "run as a program" check is for the ESM file (the bin).
npx --no-install esbuild js/mock-provider.js --bundle --format=cjs --platform=node --target=node20 \
  --define:import.meta.url='""' --log-level=warning --outfile="$out/cjs/mock-provider.cjs"

cp js/index.d.ts js/mock-provider.js js/mock-provider.d.ts js/cli.js js/cli-reload.js js/package.json "$out/"
# The CommonJS types: the same declarations, read as CommonJS by TypeScript under node16/nodenext.
cp js/index.d.ts "$out/index.d.cts"
cp js/mock-provider.d.ts "$out/mock-provider.d.cts"
cp -r js/gateway "$out/gateway"
cp -r wit "$out/wit"
# The Node gateway's proxy rules (src/core/proxy through src/js/proxy.rs): the same crate with the
# `node-proxy` feature, in a wasm of its own under gateway/, so the client's wasm stays as small.
cargo build --locked --profile wasm-size --target wasm32-unknown-unknown --features node-proxy
wasm-bindgen --target web --out-dir "$out/gateway/wasm" --out-name poolswitch --no-typescript \
  target/wasm32-unknown-unknown/wasm-size/poolswitch.wasm
npx --no-install wasm-opt -Oz \
  --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-reference-types --enable-multivalue \
  "$out/gateway/wasm/poolswitch_bg.wasm" -o "$out/gateway/wasm/poolswitch_bg.wasm"
cp js/README.md "$out/README.md"
if [ -f target/components/poolswitch.wasm ] && [ -f target/components/poolswitch-gateway.wasm ]; then
  cp target/components/poolswitch.wasm target/components/poolswitch-gateway.wasm "$out/component/"
else
  echo "warning: no WASI components in $out/component (run ./scripts/build-components.sh first)" >&2
fi
echo "built $out/ ($(wc -c < "$out/wasm/poolswitch_bg.wasm") bytes of wasm)"
