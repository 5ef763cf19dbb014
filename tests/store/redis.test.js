// Shared key state through a real redis-server: two proxies (`poolswitch-wasm serve`) and
// two embedded clients, each in its own process, on one pool. The mock provider (its own
// process) logs every call with the key it came on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fork, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { createClient } from "@redis/client";
import { startMock, ROOT } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";
import { redisMissing, startRedis, until } from "./redis-server.js";
import { freshKeys } from "../support/provider.js";

const skip = redisMissing();
if (skip) console.log(`# skipping the Redis store tests: ${skip}`);

let redis;
let mock;
let control;
const children = new Set();

before(async () => {
  if (skip) return;
  redis = await startRedis();
  mock = await startMock();
  control = mockControl(mock.url);
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await mock?.stop();
  await redis?.stop();
});

/** A fresh pool: key values and a namespace of its own, registered with the mock. */
async function pool(specs) {
  const { tag, keys, values, counts } = await freshKeys(control, "r", specs);
  return { namespace: tag, keys, values, counts };
}

function config(p) {
  return { upstreamBaseUrl: mock.url, keys: p.keys, strategy: "round_robin", cooldownSeconds: 3600, store: redis.url, namespace: p.namespace };
}

/** An embedded client in a child process. */
async function embedded(p) {
  const child = fork(join(ROOT, "tests/store/instance.mjs"), { env: { ...process.env, INSTANCE_CONFIG: JSON.stringify(config(p)) }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let next = 0;
  const waiting = new Map();
  child.on("message", (m) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(m.error));
    else w.resolve(m.result);
  });
  await new Promise((resolve, reject) => {
    child.once("message", (m) => (m.ready ? resolve() : reject(new Error("unexpected first message"))));
    child.once("exit", (code) => reject(new Error(`instance exited with ${code}`)));
  });
  const call = (op, args = {}) =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  return {
    name: "embedded",
    child,
    requests: (n, concurrency = 1) => call("requests", { n, concurrency }),
    status: () => call("status"),
    async close() {
      const exited = new Promise((r) => child.once("exit", r));
      await call("close");
      return exited;
    },
  };
}

/** `poolswitch-wasm serve` configured from the environment, in a child process. */
async function proxy(p) {
  const env = {
    ...process.env,
    POOLSWITCH_UPSTREAM_BASE_URL: mock.url,
    POOLSWITCH_KEYS: JSON.stringify(p.keys),
    POOLSWITCH_STRATEGY: "round_robin",
    POOLSWITCH_COOLDOWN_SECONDS: "3600",
    POOLSWITCH_STORE: redis.url,
    POOLSWITCH_NAMESPACE: p.namespace,
    POOLSWITCH_LOG_LEVEL: "warn",
  };
  const child = spawn(process.execPath, [join(ROOT, "pkg/cli.js"), "serve", "--port", "0", "--log-level", "info"], { env, stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let logs = "";
  const url = await new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      logs += d;
      const m = logs.match(/"event":"listening","url":"([^"]+)"/);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`proxy exited with ${code}: ${logs}`)));
  });
  async function one() {
    try {
      const res = await fetch(`${url}/v1/models`);
      await res.arrayBuffer();
      return { status: res.status, keyId: res.headers.get("x-poolswitch-key-id") };
    } catch (e) {
      return { status: 0, error: e.message };
    }
  }
  return {
    name: "proxy",
    child,
    logs: () => logs,
    async requests(n, concurrency = 1) {
      const out = [];
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          out.push(await one());
        }
      }));
      return out;
    },
    status: async () => (await fetch(`${url}/poolswitch/status`)).json(),
  };
}

const byKey = (status) => Object.fromEntries(status.keys.map((k) => [k.id, k]));
const totals = (status) => Object.fromEntries(status.keys.filter((k) => k.totalRequests > 0).map((k) => [k.id, k.totalRequests]));

/** Waits until every instance reports per-key totals equal to the provider's call counts. */
async function converged(instances, p) {
  const expected = await p.counts();
  await until(async () => {
    for (const i of instances) {
      const s = await i.status();
      if (!s.store.healthy || JSON.stringify(totals(s)) !== JSON.stringify(expected)) return false;
    }
    return true;
  }, `every instance to report the provider's call counts ${JSON.stringify(expected)}`);
  return expected;
}

test("a key one instance finds exhausted is skipped by the others; counters add up exactly", { skip: skip || false }, async () => {
  const p = await pool({ a: { quota: 0 }, b: {}, c: {} });
  const instances = [await embedded(p), await embedded(p), await proxy(p), await proxy(p)];
  await until(async () => (await Promise.all(instances.map((i) => i.status()))).every((s) => s.store.healthy), "all four instances connected");

  // The first request meets key a exhausted and fails over.
  const [first] = await instances[0].requests(1);
  assert.equal(first.status, 200);
  assert.deepEqual(await p.counts(), { a: 1, [first.keyId]: 1 });

  // Every other instance learns it from the store (no request of theirs involved).
  await until(async () => {
    for (const i of instances) if (byKey(await i.status()).a.state !== "exhausted") return false;
    return true;
  }, "every instance to see key a exhausted");

  // From now on nobody calls a, under concurrency too.
  const results = (await Promise.all(instances.map((i) => i.requests(40, 8)))).flat();
  assert.ok(results.every((r) => r.status === 200), "every request answered");
  assert.equal((await p.counts()).a, 1, "no instance spent another call on the exhausted key");

  // Each instance's totals are everyone's: the provider's own count, per key, exactly.
  const expected = await converged(instances, p);
  assert.equal(expected.b + expected.c, 161);
  const direct = createClient({ url: redis.url });
  await direct.connect();
  try {
    const stored = await direct.hGetAll(`ps:{${p.namespace}}:key:b`);
    assert.equal(Number(stored.totalRequests), expected.b);
    assert.ok((await direct.ttl(`ps:{${p.namespace}}:key:b`)) > 0, "stored state expires");
    // Ids and state only: no key value anywhere in the store.
    for await (const batch of direct.scanIterator({ MATCH: `ps:{${p.namespace}}:*` })) {
      for (const name of [].concat(batch)) {
        const dump = JSON.stringify(await direct.sendCommand((await direct.type(name)) === "hash" ? ["HGETALL", name] : ["GET", name]));
        for (const v of p.values) assert.ok(!name.includes(v) && !dump.includes(v), `${name} holds no key value`);
      }
    }
  } finally {
    await direct.close();
  }
  await Promise.all(instances.filter((i) => i.name === "embedded").map((i) => i.close()));
});

test("a restarted process keeps totalRequests and the month's quota estimate", { skip: skip || false }, async () => {
  const p = await pool({ a: { monthlyQuota: 1000 }, b: { monthlyQuota: 500 } });
  const first = await embedded(p);
  const served = await first.requests(30, 3);
  assert.ok(served.every((r) => r.status === 200));
  await first.close(); // exits: close() released the connections

  const second = await embedded(p);
  const s = await until(async () => {
    const st = await second.status();
    return st.store.healthy && st.totalRequests === 30 ? st : null;
  }, "the restarted instance to load 30 requests");
  const keys = byKey(s);
  assert.deepEqual([keys.a.totalRequests, keys.b.totalRequests], [15, 15]);
  assert.deepEqual([keys.a.estimatedRemainingQuota, keys.b.estimatedRemainingQuota], [985, 485]);
  await second.close();
});

test("Redis killed mid-run: no request lost, status unhealthy, one warning, then convergence", { skip: skip || false }, async () => {
  const p = await pool({ a: {}, b: {}, c: {} });
  const instances = [await embedded(p), await embedded(p), await proxy(p)];
  await until(async () => (await Promise.all(instances.map((i) => i.status()))).every((s) => s.store.healthy), "all instances connected");
  const before = (await Promise.all(instances.map((i) => i.requests(10, 2)))).flat();
  await converged(instances, p);

  await redis.kill();
  const during = (await Promise.all(instances.map((i) => i.requests(20, 4)))).flat();
  await until(async () => (await Promise.all(instances.map((i) => i.status()))).every((s) => !s.store.healthy), "every instance to report the store unhealthy");
  const more = (await Promise.all(instances.map((i) => i.requests(10, 2)))).flat();
  assert.ok([...before, ...during, ...more].every((r) => r.status === 200), "every request served on local state");
  for (const i of instances.filter((x) => x.name === "embedded")) assert.equal((await i.status()).warnings, 1, "one warning per outage");
  assert.equal(instances[2].logs().match(/"event":"store_unhealthy"/g)?.length, 1, "the proxy logged the outage once");

  await redis.start();
  const expected = await converged(instances, p);
  assert.equal(Object.values(expected).reduce((a, b) => a + b, 0), 120, "nothing lost or counted twice across the outage");
  await Promise.all(instances.filter((i) => i.name === "embedded").map((i) => i.close()));
});

test("close() right after construction, or with Redis unreachable, lets the process exit", { skip: skip || false }, () => {
  for (const url of [redis.url, "redis://127.0.0.1:1"]) {
    const script = `import { PoolSwitchClient } from ${JSON.stringify(join(ROOT, "pkg/esm/node.js"))};
      const c = new PoolSwitchClient({ upstreamBaseUrl: "http://127.0.0.1:9", keys: ["sk-x"], store: ${JSON.stringify(url)} });
      await c.close();`;
    // The deadline only bounds a hang; exiting by itself is the assertion.
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000, encoding: "utf8" });
    assert.equal(r.status, 0, `exited by itself (${url}): ${r.signal ?? ""} ${r.stderr}`);
  }
});
