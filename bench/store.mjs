// The shared store, measured (not a test). Needs redis-server and a built pkg/.
//   node bench/store.mjs            → JSON on stdout, progress on stderr
//   node bench/store.mjs throughput → only section 3 (also: wasted, propagation)
// 1. Wasted upstream calls per exhausted key: 1, 2 and 8 instances (separate processes)
//    over keys a, b, c (round robin); key a answers 20 successes and then 429
//    insufficient_quota, with no remaining-count headers before. Counted: a's quota answers (the first is unavoidable), without a
//    store and with Redis. Two loads per instance: "paced" (one request at a time, 10 ms
//    apart: callers that are not saturating) and "saturating" (4 at a time, no pause: the
//    requests already in flight on the key when it runs out dominate, store or not).
// 2. Propagation: one client meets an exhausted key; how long until a second client (its own
//    Redis connections, same process) reports the key exhausted.
// 3. Throughput of one client with the Redis store as a ratio of the memory store, with an
//    in-process fetch (the pool's own cost: the worst case for the ratio) and over HTTP to the
//    mock provider.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PoolSwitchClient } from "../pkg/esm/node.js";
import { startMock } from "../tests/js/mock.js";
import { mockControl } from "../tests/scenarios/scenarios.js";
import { startRedis } from "../tests/store/redis-server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const log = (...a) => console.error(...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const redis = await startRedis();
const mock = await startMock();
const control = mockControl(mock.url);
let run = 0;

// Key a: `spec` for the mock (default: unlimited).
async function freshKeys(spec = {}) {
  const tag = `b${run++}`;
  await control.setKeys({ [`sk-${tag}-a`]: { id: `${tag}-a`, ...spec }, [`sk-${tag}-b`]: { id: `${tag}-b` }, [`sk-${tag}-c`]: { id: `${tag}-c` } });
  return { tag, keys: ["a", "b", "c"].map((id) => ({ id, value: `sk-${tag}-${id}` })) };
}

async function wasted(instances, store, load) {
  // No remaining-count headers: the key runs out without warning, the case the store is for.
  const { tag, keys } = await freshKeys({ script: [...Array(20).fill("ok"), ...Array(4000).fill("quota")] });
  const config = { upstreamBaseUrl: mock.url, keys, strategy: "round_robin", cooldownSeconds: 3600, ...(store ? { store: redis.url, namespace: tag, ...(process.env.FLUSH_MS ? { storeOptions: { flushIntervalMs: Number(process.env.FLUSH_MS) } } : {}) } : {}) };
  const children = [];
  for (let i = 0; i < instances; i++) {
    const child = fork(`${ROOT}/bench/store-instance.mjs`, { env: { ...process.env, STORE_BENCH: JSON.stringify({ config, ...load }) } });
    await new Promise((r) => child.once("message", r));
    children.push(child);
  }
  const done = children.map((c) => new Promise((r) => c.on("message", (m) => m.done && r())));
  for (const c of children) c.send("go");
  await Promise.all(done);
  const calls = (await control.calls()).filter((c) => c.keyId === `${tag}-a`);
  return calls.filter((c) => c.outcome === "quota").length;
}

async function propagation(trials) {
  const out = [];
  for (let i = 0; i < trials; i++) {
    const { tag, keys } = await freshKeys({ quota: 0 });
    const base = { upstreamBaseUrl: mock.url, keys, strategy: "round_robin", store: redis.url, namespace: tag };
    let t0 = 0;
    const a = new PoolSwitchClient({ ...base, onEvent: (e) => e.type === "cooldown" && !t0 && (t0 = performance.now()) });
    const b = new PoolSwitchClient(base);
    while (!a.status().store.healthy || !b.status().store.healthy) await new Promise((r) => setTimeout(r, 5));
    await a.get("/v1/models");
    while (b.status().keys[0].state !== "exhausted") await new Promise((r) => setImmediate(r));
    out.push(performance.now() - t0);
    await Promise.all([a.close(), b.close()]);
  }
  return { medianMs: +median(out).toFixed(2), maxMs: +Math.max(...out).toFixed(2), trials };
}

const payload = JSON.stringify({ object: "list", data: [] });
const localFetch = () => new Promise((resolve) => setImmediate(() => resolve(new Response(payload, { status: 200, headers: { "content-type": "application/json" } }))));

async function throughput(store, viaHttp, n) {
  const { tag, keys } = await freshKeys();
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys, strategy: "round_robin", ...(viaHttp ? {} : { fetch: localFetch }), ...(store ? { store: redis.url, namespace: tag } : {}) });
  while (!client.status().store.healthy) await new Promise((r) => setTimeout(r, 5));
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < n) {
      next++;
      await client.get("/v1/models");
    }
  }));
  const rate = n / ((performance.now() - started) / 1000);
  await client.close();
  return rate;
}

const only = process.argv[2];
const result = {};
if (!only || only === "wasted") {
  result.wastedCallsPerExhaustedKey = {};
  const loads = { paced: { requests: 100, concurrency: 1, pauseMs: 10 }, saturating: { requests: 200, concurrency: 4, pauseMs: 0 } };
  for (const [name, load] of Object.entries(loads)) {
    for (const instances of [1, 2, 8]) {
      const row = { withoutStore: await wasted(instances, false, load), withRedis: await wasted(instances, true, load) };
      result.wastedCallsPerExhaustedKey[`${name}, ${instances} instance${instances > 1 ? "s" : ""}`] = row;
      log(name, instances, row);
    }
  }
}
if (!only || only === "propagation") {
  result.propagation = await propagation(20);
  log("propagation", result.propagation);
}
if (!only || only === "throughput") {
  result.throughput = {};
  for (const [name, viaHttp, n] of [["inProcessFetch", false, 20000], ["httpToMock", true, 4000]]) {
    await throughput(false, viaHttp, n / 4); // warm-up
    await throughput(true, viaHttp, n / 4);
    const mem = [];
    const red = [];
    for (let i = 0; i < 5; i++) {
      // Interleaved, so the machine's other load falls on both alike.
      mem.push(await throughput(false, viaHttp, n));
      red.push(await throughput(true, viaHttp, n));
    }
    result.throughput[name] = { memoryPerSec: Math.round(median(mem)), redisPerSec: Math.round(median(red)), ratio: +(median(red) / median(mem)).toFixed(3) };
    log(name, result.throughput[name]);
  }
}
console.log(JSON.stringify(result, null, 2));
await mock.stop();
await redis.stop();
