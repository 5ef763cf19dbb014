// Two Workers in workerd (Miniflare) run examples/workers-durable-object/src/worker.js with
// one Durable Object binding: a key one Worker finds exhausted is skipped by the other once
// it has synced with the object, and both report the same totals.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { startMock, ROOT } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";
import { until } from "./redis-server.js";
import { bundleWorker } from "../support/worker.js";

const KEYS = [{ id: "a", value: "sk-do-a-secret" }, { id: "b", value: "sk-do-b-secret" }, { id: "c", value: "sk-do-c-secret" }];
let mock;
let control;
let mf;
let bundle;

before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
  await control.setKeys({ "sk-do-a-secret": { id: "do-a", quota: 0 }, "sk-do-b-secret": { id: "do-b" }, "sk-do-c-secret": { id: "do-c" } });
  // Bundled as Wrangler does: conditions workerd/worker/browser, the .wasm kept as a module.
  bundle = await bundleWorker([join(ROOT, "examples/workers-durable-object/src/worker.js")]);
  assert.ok(!bundle.files.some((f) => f.includes("redis")));
  const worker = (name, durableObjects) => ({
    name,
    ...bundle.modules,
    bindings: { UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: JSON.stringify(KEYS), STRATEGY: "round_robin", POOL_NAMESPACE: "openai" },
    durableObjects,
  });
  mf = new Miniflare({
    workers: [worker("one", { POOL_STATE: "PoolStateObject" }), worker("two", { POOL_STATE: { className: "PoolStateObject", scriptName: "one" } })],
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await mock?.stop();
  await bundle?.remove();
});

const calls = async () => {
  const out = {};
  for (const c of await control.calls()) if (c.keyId?.startsWith("do-")) out[c.keyId.slice(3)] = (out[c.keyId.slice(3)] ?? 0) + 1;
  return out;
};

async function status(name) {
  const res = await (await mf.getWorker(name)).fetch("http://worker/poolswitch/status");
  return res.json();
}

async function request(name) {
  const res = await (await mf.getWorker(name)).fetch("http://worker/v1/models");
  await res.arrayBuffer();
  return { status: res.status, keyId: res.headers.get("x-poolswitch-key-id") };
}

test("two Workers share a cooldown and their counters through the Durable Object", async () => {
  // Worker two starts (and loads the empty state) before anything happened.
  await until(async () => (await status("two")).store.lastSyncAt !== null, "worker two synced once");

  const first = await request("one");
  assert.equal(first.status, 200);
  assert.deepEqual(Object.keys(await calls()).sort(), ["a", first.keyId].sort());

  // Worker two learns it through the object (each status call exchanges in the background).
  await until(async () => (await status("two")).keys.find((k) => k.id === "a").state === "exhausted", "worker two to see key a exhausted");
  for (let i = 0; i < 6; i++) assert.equal((await request("two")).status, 200);
  assert.equal((await calls()).a, 1, "worker two never called the exhausted key");

  // Both end with the provider's own per-key counts.
  const expected = await calls();
  const totals = (s) => Object.fromEntries(s.keys.filter((k) => k.totalRequests > 0).map((k) => [k.id, k.totalRequests]));
  await until(async () => {
    const [one, two] = [await status("one"), await status("two")];
    return JSON.stringify(totals(one)) === JSON.stringify(expected) && JSON.stringify(totals(two)) === JSON.stringify(expected);
  }, `both Workers to report ${JSON.stringify(expected)}`);
  const s = await status("one");
  assert.equal(s.store.kind, "durable_object");
  assert.equal(s.store.healthy, true);
});
