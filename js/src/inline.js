// The entry for every host that can compile wasm from bytes (browsers and bundlers, Node through
// cjs/index.cjs, Deno, Bun, edge runtimes). The build inlines the .wasm into the bundle, so no
// bundler loader, file read, fetch, top-level await or import.meta.url is needed to load it.
import wasmBytes from "../wasm/poolswitch_bg.wasm";
import { initSync, WasmPool } from "../wasm/poolswitch.js";
import { useWasm } from "./client.js";

initSync({ module: wasmBytes });
useWasm({ WasmPool });

export { PoolSwitchClient, PoolSwitchError } from "./client.js";
