// Node ESM entry: loads the wasm synchronously from the package folder (no top-level await).
import { readFileSync } from "node:fs";
import { initSync, WasmPool } from "../wasm/poolswitch.js";
import { useWasm } from "./client.js";

initSync({ module: readFileSync(new URL("../wasm/poolswitch_bg.wasm", import.meta.url)) });
useWasm({ WasmPool });

export { PoolSwitchClient, PoolSwitchError } from "./client.js";
