// Shared key state on Cloudflare Workers: one Durable Object per namespace holds the
// records; each isolate's client sends its batches to it and loads the others' work from
// it (Workers cannot hold a subscription across requests, so an isolate learns of others'
// work at its next exchange: hand `client.flush()` to `ctx.waitUntil` after each request).
//
//   // worker.js
//   import { PoolSwitchClient, durableObjectStore } from "poolswitch-wasm";
//   export { PoolStateObject } from "poolswitch-wasm";
//   new PoolSwitchClient({ …, store: durableObjectStore(env.POOL_STATE), namespace: "openai" })
//
// The object keeps its records in its own storage (they survive eviction) and deletes them
// all after `ttlSeconds` without a write.

import { applyBatch, monthView } from "./memory.js";

const ORIGIN = "https://poolswitch-state";
const DEFAULT_TTL_SECONDS = 35 * 86_400;
const MAX_BODY = 1 << 20;
// Instances (isolates) whose last batch number is remembered; older ones are forgotten.
const MAX_SENDERS = 1000;

/** The adapter: `binding` is the Durable Object namespace binding (env.POOL_STATE). */
export function durableObjectStore(binding, { ttlSeconds = DEFAULT_TTL_SECONDS } = {}) {
  if (!binding || typeof binding.idFromName !== "function" || typeof binding.get !== "function") {
    throw new TypeError("durableObjectStore needs a Durable Object namespace binding (env.POOL_STATE)");
  }
  // A stub per call: a stub made in one request's context is not used from another's.
  const call = async (ns, op, body) => {
    const stub = binding.get(binding.idFromName(ns));
    const res = await stub.fetch(`${ORIGIN}/${op}`, { method: "POST", headers: { "content-type": "application/json", "x-poolswitch-ttl": String(ttlSeconds) }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`the pool state object answered ${res.status}`);
    return res.json();
  };
  return {
    kind: "durable_object",
    apply: (ns, batch) => call(ns, "apply", batch),
    load: (ns, ids, month) => call(ns, "load", { ids, month }),
  };
}

/** The Durable Object class: export it from the Worker and bind it (see the example). */
export class PoolStateObject {
  #state;
  #space = null;

  constructor(state) {
    this.#state = state;
  }

  // Records are read from storage once per object lifetime; later requests use memory.
  async #load() {
    if (this.#space) return this.#space;
    const stored = await this.#state.storage.list({ prefix: "key:" });
    const records = new Map();
    for (const r of stored.values()) records.set(r.id, r);
    const applied = new Map(Object.entries((await this.#state.storage.get("applied")) ?? {}));
    this.#space = { records, applied };
    return this.#space;
  }

  async fetch(request) {
    const op = new URL(request.url).pathname.slice(1);
    if (request.method !== "POST" || (op !== "apply" && op !== "load")) return new Response("not found", { status: 404 });
    const text = await request.text();
    if (text.length > MAX_BODY) return new Response("too large", { status: 413 });
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      return new Response("bad json", { status: 400 });
    }
    const space = await this.#load();
    if (op === "load") {
      const ids = Array.isArray(body.ids) ? body.ids.filter((id) => typeof id === "string") : [];
      return Response.json(ids.filter((id) => space.records.has(id)).map((id) => monthView(space.records.get(id), body.month)));
    }
    const entries = applyBatch(space, body);
    for (const from of space.applied.keys()) {
      if (space.applied.size <= MAX_SENDERS) break;
      space.applied.delete(from);
    }
    // Written before the answer leaves (the output gate holds it until storage confirms).
    const puts = Object.fromEntries(entries.map((e) => [`key:${e.id}`, space.records.get(e.id)]));
    puts.applied = Object.fromEntries(space.applied);
    await this.#state.storage.put(puts);
    const ttl = Math.max(60, Number(request.headers.get("x-poolswitch-ttl")) || DEFAULT_TTL_SECONDS);
    await this.#state.storage.setAlarm(Date.now() + ttl * 1000);
    return Response.json(entries);
  }

  /** No write for `ttlSeconds`: the pool is gone, and so is its state. */
  async alarm() {
    await this.#state.storage.deleteAll();
    this.#space = null;
  }
}
