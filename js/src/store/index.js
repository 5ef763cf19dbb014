// Resolves the client's `store` option to an adapter (see adapter.md for the interface).

import { MemoryStore } from "./memory.js";

let redisFactory = null;

/** Called by the Node entry point only, so browser and Worker bundles never see Redis. */
export function useRedis(factory) {
  redisFactory = factory;
}

const NAMESPACE = /^[A-Za-z0-9_.:-]{1,100}$/;
const OPTIONS = new Set(["flushIntervalMs", "timeoutMs", "retryMs", "closeTimeoutMs", "ttlSeconds", "connectTimeoutMs"]);

/**
 * `store`: undefined or "memory" (no sharing: null), a redis:// or rediss:// URL, or an
 * adapter object. Throws `{ field, problem }` for a bad value.
 */
export function resolveStore(store, namespace, storeOptions) {
  if (namespace !== undefined && (typeof namespace !== "string" || !NAMESPACE.test(namespace))) {
    throw { field: "namespace", problem: "must be 1 to 100 letters, digits or _ . : -" };
  }
  if (storeOptions !== undefined && (typeof storeOptions !== "object" || storeOptions === null || Array.isArray(storeOptions))) {
    throw { field: "storeOptions", problem: "must be an object" };
  }
  for (const [k, v] of Object.entries(storeOptions ?? {})) {
    if (!OPTIONS.has(k)) throw { field: `storeOptions.${k}`, problem: "is not a known option" };
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 31_536_000_000) throw { field: `storeOptions.${k}`, problem: "must be a non-negative number" };
  }
  if (store === undefined || store === null || store === "memory") return null;
  if (typeof store === "string") {
    if (!/^rediss?:\/\//.test(store)) throw { field: "store", problem: 'must be "memory", a redis:// or rediss:// URL, or a store object' };
    if (!redisFactory) throw { field: "store", problem: "a Redis store needs Node (the package's node entry point)" };
    return redisFactory(store, storeOptions ?? {});
  }
  if (typeof store === "object" && typeof store.apply === "function" && typeof store.load === "function") return store;
  throw { field: "store", problem: 'must be "memory", a redis:// or rediss:// URL, or an object with apply() and load()' };
}

export { MemoryStore };
