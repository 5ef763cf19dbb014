// The sync engine on an in-process store, in Node: propagation, exact counters, re-enabling,
// and a store that fails (its replies lost, then unreachable) without losing or double
// counting work. The provider is the mock, in its own process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PoolSwitchClient, PoolSwitchError, MemoryStore } from "../../pkg/esm/node.js";
import { until } from "./redis-server.js";
import { useMockProvider, freshKeys } from "../support/provider.js";

const mock = useMockProvider();

// Fresh keys, with a store namespace of their own; `counts()` is the provider's calls per key.
async function pool(specs) {
  const { keys, counts, tag } = await freshKeys(mock.control, "m", specs);
  return { keys, counts, namespace: tag };
}

const client = (p, store, extra = {}) => new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: p.keys, strategy: "round_robin", store, namespace: p.namespace, ...extra });
const totals = (c) => Object.fromEntries(c.status().keys.filter((k) => k.totalRequests > 0).map((k) => [k.id, k.totalRequests]));
const state = (c, id) => c.status().keys.find((k) => k.id === id).state;

async function converged(clients, p) {
  const expected = await p.counts();
  await until(() => clients.every((c) => c.status().store.healthy && JSON.stringify(totals(c)) === JSON.stringify(expected)), `totals ${JSON.stringify(expected)} everywhere`);
  return expected;
}

test("an exhausted key is skipped by the other client; concurrent counters add up exactly", async () => {
  const p = await pool({ a: { quota: 0 }, b: {}, c: {} });
  const store = new MemoryStore();
  const [one, two] = [client(p, store), client(p, store)];
  await until(() => one.status().store.healthy && two.status().store.healthy, "both synced");
  await one.get("/v1/models");
  await until(() => state(two, "a") === "exhausted", "two to see a exhausted");
  await Promise.all([...Array(50)].flatMap(() => [one.get("/v1/models"), two.get("/v1/models")]));
  assert.equal((await p.counts()).a, 1);
  const expected = await converged([one, two], p);
  assert.equal(expected.b + expected.c, 101);
  await Promise.all([one.close(), two.close()]);
});

test("enableKey on one client clears the verdict on the other", async () => {
  const p = await pool({ a: { script: ["invalid"] }, b: {} });
  const store = new MemoryStore();
  const [one, two] = [client(p, store), client(p, store)];
  await until(() => one.status().store.healthy && two.status().store.healthy, "both synced");
  await one.get("/v1/models");
  await until(() => state(two, "a") === "invalid", "two to see a invalid");
  one.enableKey("a");
  await until(() => state(two, "a") === "healthy", "two to see a enabled again");
  await Promise.all([one.close(), two.close()]);
});

// MemoryStore with a switch: `lose` applies a batch and then fails as if the reply was lost;
// `down` fails every call. A subscription stays (the engine resyncs when told it is back).
class FlakyStore extends MemoryStore {
  mode = "up";
  onConnection = null;
  async apply(ns, batch) {
    if (this.mode === "down") throw new Error("connection refused");
    const applied = await super.apply(ns, batch);
    if (this.mode === "lose") throw new Error("connection reset");
    return applied;
  }
  async load(ns, ids, month) {
    if (this.mode !== "up") throw new Error("connection refused");
    return super.load(ns, ids, month);
  }
  async subscribe(ns, onMessage, onConnection) {
    this.onConnection = onConnection;
    return super.subscribe(ns, onMessage);
  }
}

test("a store that loses replies and then goes down: every request served, one warning, exact totals after", async () => {
  const p = await pool({ a: {}, b: {} });
  const store = new FlakyStore();
  const warnings = [];
  const onWarning = (w) => w.name === "PoolSwitchStoreWarning" && warnings.push(w.message);
  process.on("warning", onWarning);
  const events = [];
  const [one, two] = [client(p, store, { onEvent: (e) => e.type.startsWith("store") && events.push(e.type) }), client(p, store)];
  try {
    await until(() => one.status().store.healthy && two.status().store.healthy, "both synced");
    await Promise.all([...Array(10)].flatMap(() => [one.get("/v1/models"), two.get("/v1/models")]));
    await converged([one, two], p);

    store.mode = "lose"; // applied in the store, but the senders hear a failure
    await Promise.all([...Array(10)].flatMap(() => [one.get("/v1/models"), two.get("/v1/models")]));
    await until(() => !one.status().store.healthy && !two.status().store.healthy, "both unhealthy");
    store.mode = "down";
    await Promise.all([...Array(10)].flatMap(() => [one.get("/v1/models"), two.get("/v1/models")]));
    assert.equal(warnings.length, 2, "one warning per client");
    assert.deepEqual(events, ["storeHealthy", "storeUnhealthy"]);

    store.mode = "up";
    store.onConnection(true);
    const expected = await converged([one, two], p);
    assert.equal(expected.a + expected.b, 60, "the resent batches were not counted twice");
  } finally {
    process.off("warning", onWarning);
    await Promise.all([one.close(), two.close()]);
  }
});

test("bad store settings are refused by name", () => {
  const p = { keys: ["sk-x"], namespace: "n" };
  for (const [extra, field] of [
    [{ store: "postgres://x" }, "store"],
    [{ store: {} }, "store"],
    [{ store: "memory", namespace: "a b" }, "namespace"],
    [{ store: "memory", storeOptions: { flushMs: 1 } }, "storeOptions.flushMs"],
    [{ store: "memory", storeOptions: { timeoutMs: -1 } }, "storeOptions.timeoutMs"],
    [{ store: "memory", store_options: { flushMs: 1 } }, "storeOptions.flushMs"], // a proxy config file's spelling
  ]) {
    assert.throws(() => new PoolSwitchClient({ upstreamBaseUrl: "https://example.com", keys: p.keys, ...extra }), (e) => e instanceof PoolSwitchError && e.kind === "invalid_config" && e.field === field);
  }
  assert.equal(new PoolSwitchClient({ upstreamBaseUrl: "https://example.com", keys: ["sk-x"] }).status().store.kind, "memory");
});

test("after the store loses its data, the clients still hear each other", async () => {
  const p = await pool({ a: {}, b: {}, c: { script: [...Array(12).fill("ok"), "invalid"] } });
  // A store whose data can be wiped, as a Redis without persistence restarting.
  const store = {
    kind: "memory",
    inner: new MemoryStore(),
    subscribers: [],
    apply: (ns, batch) => store.inner.apply(ns, batch),
    load: (ns, ids, month) => store.inner.load(ns, ids, month),
    async subscribe(ns, onMessage, onConnection) {
      store.subscribers.push({ ns, onMessage, onConnection });
      await store.inner.subscribe(ns, onMessage);
    },
    async wipe() {
      store.inner = new MemoryStore();
      for (const s of store.subscribers) await store.inner.subscribe(s.ns, s.onMessage);
      for (const s of store.subscribers) s.onConnection(true);
    },
  };
  const [one, two] = [client(p, store), client(p, store)];
  try {
    await until(() => one.status().store.healthy && two.status().store.healthy, "both synced");
    for (let i = 0; i < 6; i++) await Promise.all([one.get("/v1/models"), two.get("/v1/models")]);
    await converged([one, two], p);
    await store.wipe();
    await until(() => one.status().store.resyncs >= 2 && two.status().store.resyncs >= 2, "both resynced");
    // Versions start again in the wiped store; each client must still add the other's new work
    // (both held the same totals before, so they agree again after).
    for (let i = 0; i < 6; i++) await Promise.all([one.get("/v1/models"), two.get("/v1/models")]);
    await converged([one, two], p);
    // And a rest still travels: key c goes invalid on one of them.
    while (state(one, "c") !== "invalid" && state(two, "c") !== "invalid") await one.get("/v1/models");
    await until(() => state(one, "c") === "invalid" && state(two, "c") === "invalid", "both to see c invalid");
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});
