// Node CommonJS entry (bundled to cjs/index.cjs by esbuild): same as node.js, with __dirname.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { initSync, WasmPool } from "../wasm/poolswitch.js";
import { useWasm } from "./client.js";

initSync({ module: readFileSync(join(__dirname, "..", "wasm", "poolswitch_bg.wasm")) });
useWasm({ WasmPool });

export { PoolSwitchClient, PoolSwitchError } from "./client.js";
