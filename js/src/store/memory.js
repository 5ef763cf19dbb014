// The in-process store: one object that several clients in one process (or one isolate)
// can share by passing the same instance as `store`. It applies the same rules as Redis and
// the Durable Object, and delivers each batch to every subscriber on the next microtask.
// `store: "memory"` (the default) gives each client its own pool state and no store at all.

import { applyDelta, emptyRecord } from "./record.js";

export class MemoryStore {
  kind = "memory";
  #spaces = new Map(); // namespace → { records: Map<id, record>, applied: Map<from, seq>, listeners: Set }

  #space(ns) {
    let s = this.#spaces.get(ns);
    if (!s) this.#spaces.set(ns, (s = { records: new Map(), applied: new Map(), listeners: new Set() }));
    return s;
  }

  async apply(ns, batch) {
    return applyBatch(this.#space(ns), batch);
  }

  async load(ns, ids, month) {
    const { records } = this.#space(ns);
    return ids.filter((id) => records.has(id)).map((id) => monthView(records.get(id), month));
  }

  async subscribe(ns, onMessage) {
    this.#space(ns).listeners.add(onMessage);
  }

  async close() {}
}

/** A record as a load returns it: this month's use only. */
export function monthView(record, month) {
  return { ...record, month, monthSuccesses: record.month === month ? record.monthSuccesses : 0 };
}

/** Applies a batch to a namespace's records (skipping a batch number already applied). */
export function applyBatch(space, batch) {
  if (!batch || typeof batch.from !== "string" || !Array.isArray(batch.keys)) return [];
  if ((space.applied.get(batch.from) ?? 0) >= batch.seq) return [];
  space.applied.delete(batch.from); // re-inserted last: the map stays in order of last use
  space.applied.set(batch.from, batch.seq);
  const out = [];
  for (const delta of batch.keys) {
    if (!delta || typeof delta.id !== "string") continue;
    let r = space.records.get(delta.id);
    if (!r) space.records.set(delta.id, (r = emptyRecord(delta.id)));
    out.push(applyDelta(r, { ...delta, month: delta.month ?? batch.month }));
  }
  const message = { from: batch.from, keys: out };
  for (const listener of space.listeners ?? []) queueMicrotask(() => listener(message));
  return out;
}
