#!/usr/bin/env bash
# Assembles pkg/, the npm package `poolswitch-wasm` as published: wasm module, JS wrapper,
# per-runtime entry points, types. Run by demo.sh and test.sh after setup.
set -euo pipefail
cd "$(dirname "$0")/.."
out=pkg

cargo build --locked --profile wasm-size --target wasm32-unknown-unknown
rm -rf "$out" && mkdir -p "$out"/{wasm,esm,cjs}
wasm-bindgen --target web --out-dir "$out/wasm" --out-name poolswitch --no-typescript \
  target/wasm32-unknown-unknown/wasm-size/poolswitch.wasm
# The features rustc enables by default for wasm32; wasm-opt must know them to keep them.
npx --no-install wasm-opt -Oz \
  --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-reference-types --enable-multivalue \
  "$out/wasm/poolswitch_bg.wasm" -o "$out/wasm/poolswitch_bg.wasm"

cp js/src/client.js js/src/task.js js/src/node.js js/src/browser.js js/src/workerd.js "$out/esm/"
# CommonJS: the same wrapper and glue, bundled into one file that loads the same .wasm.
cp js/src/node-cjs.js "$out/esm/node-cjs.js"
npx --no-install esbuild "$out/esm/node-cjs.js" --bundle --format=cjs --platform=node --target=node20 \
  --log-level=warning --log-override:empty-import-meta=silent --outfile="$out/cjs/index.cjs"
rm "$out/esm/node-cjs.js"

cp js/index.d.ts js/mock-provider.js js/cli.js js/package.json "$out/"
cp -r js/gateway "$out/gateway"
cp js/README.md "$out/README.md"
echo "built $out/ ($(wc -c < "$out/wasm/poolswitch_bg.wasm") bytes of wasm)"
