// SIGHUP for `poolswitch-wasm serve`: re-reads the config and applies its key list to the running
// pool (keys added, removed, or replaced when their settings changed), so keys rotate without a
// restart or dropped requests. Other settings need a restart; a change to them is logged, and a
// config that does not load leaves the running pool as it is.
import { loadConfig } from "./gateway/config.js";

/** `[id, spec]` per key, named as the pool names them (plain strings are key-1, key-2, …). */
function keyEntries(keys) {
  return (Array.isArray(keys) ? keys : []).map((k, i) => {
    const id = typeof k === "string" || typeof k?.id !== "string" ? `key-${i + 1}` : k.id;
    return [id, typeof k === "string" ? { id, value: k } : { ...k, id }];
  });
}

const withoutKeys = ({ keys, ...rest }) => JSON.stringify(rest);

/** Returns the SIGHUP handler; `log(level, fields)` writes one JSON log line. */
export function reloader({ gateway, file, env, flags, initial, log }) {
  let current = initial;
  return () => {
    let next;
    try {
      next = loadConfig(file, env, flags);
    } catch (e) {
      return log("error", { event: "reload_failed", message: e.message });
    }
    const before = new Map(keyEntries(current.pool.keys));
    const after = new Map(keyEntries(next.pool.keys));
    const changes = { added: [], removed: [], replaced: [] };
    try {
      // Additions first: the pool refuses to remove its last key.
      for (const [id, spec] of after) {
        if (!before.has(id)) {
          gateway.client.addKey(spec);
          changes.added.push(id);
        }
      }
      for (const [id, spec] of before) {
        if (!after.has(id)) {
          gateway.client.removeKey(id);
          changes.removed.push(id);
        } else if (JSON.stringify(after.get(id)) !== JSON.stringify(spec)) {
          gateway.client.removeKey(id);
          gateway.client.addKey(after.get(id));
          changes.replaced.push(id);
        }
      }
    } catch (e) {
      // PoolSwitchError messages name the field, never a key value.
      return log("error", { event: "reload_failed", message: e.message, ...changes });
    }
    current = next;
    log("info", { event: "reloaded", ...changes });
    if (withoutKeys(next.pool) !== withoutKeys(initial.pool) || JSON.stringify(next.proxy) !== JSON.stringify(initial.proxy)) {
      log("warn", { event: "reload_partial", message: "only the key list reloads on SIGHUP; restart to apply the other changed settings" });
    }
  };
}
