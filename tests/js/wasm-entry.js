// The package's client and its wasm glue, loaded the way an entry point loads them
// (pkg/esm/client.js with pkg/wasm/poolswitch.js), for the tests that need the wasm instance
// itself: the published bundles inline these same modules and keep the instance private.
import { readFileSync } from "node:fs";
import * as glue from "../../pkg/wasm/poolswitch.js";
import { useWasm } from "../../pkg/esm/client.js";

glue.initSync({ module: readFileSync(new URL("../../pkg/wasm/poolswitch_bg.wasm", import.meta.url)) });
useWasm({ WasmPool: glue.WasmPool, __wbg_reset_state: glue.__wbg_reset_state });

/** The live instance's exports (initSync answers them once loaded; they change on a reset). */
export const liveExports = () => glue.initSync({ module: new Uint8Array(0) });

export { glue };
export { PoolSwitchClient, PoolSwitchError } from "../../pkg/esm/client.js";
