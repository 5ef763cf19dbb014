// The pool's own cost per request in Node, without a network, on both transports: an in-process
// `fetch`, and an in-process undici dispatcher (the Node default's API: `request(opts, callback)`
// answering with undici's own body stream), each answering on the next macrotask as a socket
// would. Prints JSON: CPU µs per request (process.cpuUsage, so GC threads count) and bytes
// allocated per request (the inspector's sampling heap profiler, collected objects included),
// for a bare call of each + json() and for client.post through the pool on each. The pool's own
// cost is the median over rounds of (pool − bare) measured in the same round: rounds are
// interleaved, so a slow stretch of the machine moves both sides of a difference.
// Usage: node bench/wrapper-cost.mjs [package dir, default pkg] (WRAPPER_ROUNDS, default 11)
import inspector from "node:inspector/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkgDir = resolve(process.argv[2] ?? fileURLToPath(new URL("../pkg", import.meta.url)));
const { PoolSwitchClient } = await import(pathToFileURL(`${pkgDir}/esm/node.js`).href);
// An odd count has one middle value; an even one reports the upper of its two.
const ROUNDS = Math.max(1, Math.floor(Number(process.env.WRAPPER_ROUNDS ?? 11)) || 11);

// undici's response body class, as its dispatcher hands it over.
const { Readable: BodyReadable } = createRequire(import.meta.url)("undici/lib/api/readable.js");

const KEYS = ["sk-a", "sk-b", "sk-c"];
const BODY = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const payload = JSON.stringify({ id: "x", choices: [{ message: { role: "assistant", content: "hello" } }] });
const headers = { "content-type": "application/json", "x-ratelimit-remaining-requests": "100", "x-ratelimit-reset-requests": "1s", "x-request-id": "abc" };
const localFetch = () => new Promise((resolve) => setImmediate(() => resolve(new Response(payload, { status: 200, headers }))));
const payloadBytes = Buffer.from(payload);
const localDispatcher = {
  request(opts, callback) {
    setImmediate(() => {
      const body = new BodyReadable({ resume() {}, abort() {}, contentType: headers["content-type"], contentLength: payloadBytes.length });
      body.push(payloadBytes);
      body.push(null);
      callback(null, { statusCode: 200, headers: { ...headers, "content-length": String(payloadBytes.length) }, body, trailers: {}, opaque: null, context: {} });
    });
  },
};
const viaFetch = new PoolSwitchClient({ upstreamBaseUrl: "http://127.0.0.1:9", keys: KEYS, strategy: "quota_failover", fetch: localFetch });
const viaUndici = new PoolSwitchClient({ upstreamBaseUrl: "http://127.0.0.1:9", keys: KEYS, strategy: "quota_failover", dispatcher: localDispatcher });
const calls = {
  bare: () => localFetch("http://127.0.0.1:9/v1/chat/completions", { method: "POST", headers: { authorization: "Bearer sk-a", "content-type": "application/json" }, body: JSON.stringify(BODY) }).then((r) => r.json()),
  pool: () => viaFetch.post("/v1/chat/completions", { json: BODY }),
  bareUndici: () =>
    new Promise((resolve, reject) =>
      localDispatcher.request({ origin: "http://127.0.0.1:9", path: "/v1/chat/completions", method: "POST", headers: { authorization: "Bearer sk-a", "content-type": "application/json" }, body: JSON.stringify(BODY) }, (err, data) => (err ? reject(err) : resolve(data))),
    ).then((data) => data.body.json()),
  poolUndici: () => viaUndici.post("/v1/chat/completions", { json: BODY }),
};

async function run(call, n, concurrency = 32) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < n) { next++; await call(); } }));
}

async function cpu(call, n) {
  const before = process.cpuUsage();
  await run(call, n);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

async function allocated(call, n) {
  const session = new inspector.Session();
  session.connect();
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await run(call, n);
  const { profile } = await session.post("HeapProfiler.stopSampling");
  session.disconnect();
  let total = 0;
  (function walk(node) {
    total += node.selfSize;
    node.children.forEach(walk);
  })(profile.head);
  return total / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const call of Object.values(calls)) await run(call, 5000); // warm-up: JIT, lazy wasm compilation
const rounds = Object.fromEntries(Object.keys(calls).map((name) => [name, []]));
for (let i = 0; i < ROUNDS; i++) for (const [name, call] of Object.entries(calls)) rounds[name].push(await cpu(call, 10000)); // interleaved
const out = { rounds: ROUNDS, cpuUs: {}, bytes: {}, addedUs: {} };
for (const [name, call] of Object.entries(calls)) {
  out.cpuUs[name] = median(rounds[name]);
  out.bytes[name] = await allocated(call, 20000);
}
// What the pool adds on each transport: per-round differences, their median and range.
for (const [transport, pool, bare] of [["undici", "poolUndici", "bareUndici"], ["fetch", "pool", "bare"]]) {
  const diffs = rounds[pool].map((p, i) => p - rounds[bare][i]);
  out.addedUs[transport] = { median: median(diffs), min: Math.min(...diffs), max: Math.max(...diffs) };
}
console.log(JSON.stringify(out));
