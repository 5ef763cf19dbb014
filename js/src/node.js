// Node ESM entry: re-exports the CommonJS build for Node (cjs/node.cjs), so `import` and
// `require` in one process share one wasm instance and one PoolSwitchError class (no
// dual-package hazard).
import cjs from "../cjs/node.cjs";

export const { PoolSwitchClient, PoolSwitchError } = cjs;
