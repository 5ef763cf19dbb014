// Node ESM entry: re-exports the CommonJS build, so `import` and `require` in one process share
// one wasm instance and one PoolSwitchError class (no dual-package hazard).
import cjs from "../cjs/index.cjs";

export const { PoolSwitchClient, PoolSwitchError } = cjs;
