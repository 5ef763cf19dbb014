// Browser and bundler entry: fetches the wasm next to this file (bundlers follow new URL()).
import init, { WasmPool } from "../wasm/poolswitch.js";
import { useWasm } from "./client.js";

await init({ module_or_path: new URL("../wasm/poolswitch_bg.wasm", import.meta.url) });
useWasm({ WasmPool });

export { PoolSwitchClient, PoolSwitchError } from "./client.js";
