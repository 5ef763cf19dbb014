// Node ESM entry: re-exports the CommonJS build for Node (cjs/node.cjs), so `import` and
// `require` in one process share one wasm instance and one PoolSwitchError class (no
// dual-package hazard). Through cjs/node-import.cjs, which spares Node a scan of the bundle.
import cjs from "../cjs/node-import.cjs";
// The Redis store exists only here: browser and Worker bundles never see it, and its client
// library (@redis/client) is imported only when a redis:// URL is configured.
import { createRedisStore } from "./store/redis.js";

cjs.useRedis(createRedisStore);

export const { PoolSwitchClient, PoolSwitchError, MemoryStore } = cjs;
