// workerd (Cloudflare Workers) entry: the .wasm is imported as a compiled module, as Workers allow.
import wasmModule from "../wasm/poolswitch_bg.wasm";
import { __wbg_reset_state, initSync, WasmPool } from "../wasm/poolswitch.js";
import { useWasm } from "./client.js";

initSync({ module: wasmModule });
useWasm({ WasmPool, __wbg_reset_state });

export { PoolSwitchClient, PoolSwitchError } from "./client.js";
export { MemoryStore } from "./store/memory.js";
export { durableObjectStore, PoolStateObject } from "./store/durable-object.js";
