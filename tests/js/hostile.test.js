// Hostile answers and hostile input against the packed package on Node: a provider's absurd
// times, snapshots with absurd numbers, metadata nested deep or cyclic, error bodies nested
// 100k deep. None may trap the wasm instance: the same client, a second client in the same
// process and 2,000 more hostile calls keep working, and every failure is a PoolSwitchError.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { PoolSwitchClient, PoolSwitchError } from "../../pkg/esm/node.js";

const HORIZON_MS = 30 * 24 * 3600 * 1000;
const KEY = "sk-hostile-key-secret";
const DEEP = "[".repeat(100_000) + "]".repeat(100_000);

// What the stand-in provider answers, by path.
const ANSWERS = {
  "/retry-after-1e12": [429, { "retry-after": "1e12" }],
  "/retry-after-ms-1e16": [429, { "retry-after-ms": "1e16" }],
  "/retry-after-1e17": [429, { "retry-after": "1e17" }],
  "/retry-after-year-9999": [429, { "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" }],
  "/retry-after-epoch": [429, { "retry-after": "Thu, 01 Jan 1970 00:00:00 GMT" }],
  "/reset-99999999h": [200, { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999999h" }],
  "/anthropic-far-reset": [200, { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "9999-12-31T23:59:59Z" }],
  "/remaining-1e20": [200, { "x-ratelimit-remaining-requests": "100000000000000000000" }],
  "/deep-error-body": [429, {}, DEEP],
  "/deep-server-error": [500, {}, DEEP],
};

let server;
let base;
before(async () => {
  server = createServer((req, res) => {
    const [status, headers, body] = ANSWERS[req.url] ?? [200, {}, '{"ok":true}'];
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(body ?? (status === 200 ? '{"ok":true}' : '{"error":{"type":"rate_limit_error","message":"slow down"}}'));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((resolve) => server.close(resolve)));

function client(extra = {}) {
  return new PoolSwitchClient({ upstreamBaseUrl: base, keys: [KEY], retryAttempts: 0, maxWaitMs: 0, ...extra });
}

/** A call that may fail, but only with a PoolSwitchError of one of `kinds`. */
async function settles(promise, kinds) {
  try {
    return await promise;
  } catch (e) {
    assert.ok(e instanceof PoolSwitchError, `a trap or raw error: ${e && e.stack}`);
    assert.ok(kinds.includes(e.kind), `${e.kind}: ${e.message}`);
    assert.ok(!e.message.includes(KEY));
    return e;
  }
}

function assertReadable(c) {
  const status = c.status();
  for (const k of status.keys) {
    if (k.cooldownUntil !== undefined && k.cooldownUntil !== null) {
      assert.ok(k.cooldownUntil <= Date.now() + HORIZON_MS + 60_000, `cooldown ${k.cooldownUntil}`);
    }
    for (const n of [k.totalRequests, k.successes, k.errorCount, k.estimatedRemainingQuota ?? 0]) assert.ok(Number.isSafeInteger(n), `${n}`);
  }
  assert.ok(JSON.stringify(c.exportState()).length > 0);
  return status;
}

async function stillWorks(c) {
  assert.deepEqual(await c.get("/ok"), { ok: true });
}

test("absurd provider times are capped: the key rests at most 30 days and every later call and status() work", async () => {
  // Answers after which the key rests (until the capped time); the others leave it usable.
  const resting = ["/retry-after-1e12", "/retry-after-ms-1e16", "/retry-after-1e17", "/retry-after-year-9999", "/reset-99999999h", "/anthropic-far-reset"];
  for (const path of Object.keys(ANSWERS).filter((p) => !p.startsWith("/deep"))) {
    const c = client();
    await settles(c.get(path), ["upstream"]);
    if (resting.includes(path)) {
      const second = await settles(c.get("/ok"), ["no_healthy_keys"]);
      assert.ok(second instanceof PoolSwitchError, `${path}: the resting key was used`);
      assert.ok(second.retryAt > Date.now() + HORIZON_MS - 60_000 && second.retryAt <= Date.now() + HORIZON_MS + 60_000, `${path}: retryAt ${second.retryAt}`);
      assert.match(second.message, /returns at \d{4}-/);
      // fetch() answers with a synthetic response instead of throwing.
      const res = await c.fetch(`${base}/ok`);
      assert.equal(res.status, 429);
    } else {
      // Usable again at once (a date before 1970 is no wait) or within a millisecond.
      await settles(c.get("/ok"), ["no_healthy_keys"]);
    }
    assertReadable(c);
    await stillWorks(client()); // a second client in the same process
  }
});

test("a 1e17 retry-after does not wrap around: the key is not reused at once", async () => {
  const c = new PoolSwitchClient({ upstreamBaseUrl: base, keys: [KEY, "sk-hostile-other"], strategy: "round_robin", retryAttempts: 0 });
  await settles(c.get("/retry-after-1e17"), ["upstream"]);
  const first = c.status().keys[0];
  assert.equal(first.state, "cooling");
  assert.ok(first.cooldownUntil > Date.now() + HORIZON_MS - 60_000);
});

test("error bodies nested 100k deep classify without a stack overflow", async () => {
  const c = client();
  const rateLimited = await settles(c.get("/deep-error-body"), ["upstream"]);
  assert.equal(rateLimited.reason, "rate_limited");
  const server = await settles(client().get("/deep-server-error"), ["upstream"]);
  assert.equal(server.reason, "server_error");
  assertReadable(c);
  await stillWorks(client());
});

test("importState and mergeState with absurd numbers are clamped or refused by name", async () => {
  const c = new PoolSwitchClient({ upstreamBaseUrl: base, keys: [{ id: "a", value: KEY }, { id: "b", value: "sk-hostile-b" }] });
  c.importState({ keys: [{ id: "a", cooldownUntil: 9e15, totalRequests: 2 ** 53 - 1, lastUsedAt: 9e15, cooldownReason: "rate_limited" }] });
  let a = assertReadable(c).keys.find((k) => k.id === "a");
  assert.ok(a.cooldownUntil <= Date.now() + HORIZON_MS + 60_000);
  c.mergeState({ keys: [{ id: "a", errors: 2n ** 63n, successes: 2n ** 60n }] });
  c.mergeState({ keys: [{ id: "a", errors: 2n ** 63n }] });
  a = assertReadable(c).keys.find((k) => k.id === "a");
  assert.ok(Number.isSafeInteger(a.errorCount));
  for (const [snapshot, field] of [
    [{ keys: [{ id: "a", errors: -1 }] }, "snapshot.keys[0].errors"],
    [{ keys: [{ id: "a", errors: NaN }] }, "snapshot.keys[0].errors"],
    [{ keys: [{ id: "a", errors: 1.5 }] }, "snapshot.keys[0].errors"],
    [{ keys: [{ id: "a", cooldownUntill: 5 }] }, "snapshot.keys[0].cooldownUntill"],
    [{ keys: [{ id: "a" }], extra: 1 }, "snapshot.extra"],
  ]) {
    for (const op of ["importState", "mergeState"]) {
      assert.throws(() => c[op](snapshot), (e) => e instanceof PoolSwitchError && e.kind === "invalid_config" && e.field === field, `${op} ${field}`);
    }
  }
  assertReadable(c);
  await stillWorks(c);
});

function nested(depth) {
  let m = { leaf: 1 };
  for (let i = 0; i < depth; i++) m = { m };
  return m;
}

test("metadata nested 2,000 deep or cyclic is refused as invalid_config, constructor and addKey", async () => {
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  const cyclicArray = [];
  cyclicArray.push(cyclicArray);
  for (const metadata of [nested(2_000), nested(40), cyclic, { list: cyclicArray }, new Map([["m", cyclic]])]) {
    assert.throws(
      () => new PoolSwitchClient({ upstreamBaseUrl: base, keys: [{ value: KEY, metadata }] }),
      (e) => e instanceof PoolSwitchError && e.kind === "invalid_config" && e.field.startsWith("keys[0].metadata"),
    );
    const c = client();
    assert.throws(() => c.addKey({ value: "sk-hostile-added", metadata }), (e) => e.kind === "invalid_config" && e.field.startsWith("key.metadata"));
  }
  // 32 levels are fine, 16 KiB of metadata too; more is refused with the field named.
  const ok = new PoolSwitchClient({ upstreamBaseUrl: base, keys: [{ value: KEY, metadata: nested(30) }] });
  assert.throws(() => ok.addKey({ value: "sk-hostile-big", metadata: { a: "x".repeat(20_000) } }), (e) => e.field === "key.metadata");
  assertReadable(ok);
  await stillWorks(ok);
});

test("config errors name the field and the nearest known one, and never echo a key", () => {
  const refused = (config) => {
    try {
      new PoolSwitchClient({ upstreamBaseUrl: base, ...config });
    } catch (e) {
      assert.ok(e instanceof PoolSwitchError && e.kind === "invalid_config", String(e));
      return e;
    }
    assert.fail("accepted");
  };
  let e = refused({ keys: [KEY], retryAttemps: 2 });
  assert.equal(e.field, "retryAttemps");
  assert.match(e.message, /did you mean `retryAttempts`\?/);
  assert.match(refused({ keys: [KEY], maxRetries: 2 }).message, /did you mean `retryAttempts`\?/);
  assert.match(refused({ keys: [KEY], timeout: 2 }).message, /did you mean `requestTimeoutMs`\?/);
  e = refused({ keys: [KEY], retryAttempts: -1 });
  assert.equal(e.problem, "expected a whole number between 0 and 100, got -1");
  e = refused({ keys: [1234567890123] });
  assert.equal(e.field, "keys[0]");
  assert.ok(!e.message.includes("1234567890123") && e.message.includes("quoted"), e.message);
  e = refused({ keys: ["sk-clé-non-ascii"] });
  assert.equal(e.field, "keys[0].value");
  assert.ok(!e.message.includes("clé"));
});

test("2,000 hostile calls leave the process working", async () => {
  const cyclic = {};
  cyclic.self = cyclic;
  const paths = Object.keys(ANSWERS);
  for (let i = 0; i < 400; i++) {
    const c = client();
    await settles(c.get(paths[i % paths.length]), ["upstream"]);
    await settles(c.get("/ok"), ["no_healthy_keys"]);
    c.importState({ keys: [{ id: "key-1", cooldownUntil: 9e15 + i, errors: 2n ** 64n - 1n }] });
    assert.throws(() => c.addKey({ value: `sk-hostile-${i}`, metadata: cyclic }), (e) => e.kind === "invalid_config");
    assertReadable(c);
  }
  await stillWorks(client());
  const other = new PoolSwitchClient({ upstreamBaseUrl: base, keys: ["sk-hostile-fresh"] });
  await stillWorks(other);
  assert.equal(other.status().keys[0].state, "healthy");
});

test("a response whose headers throw while read fails its own call only: its rate-limit headers reach no later answer", async () => {
  let calls = 0;
  // The first answer says the key has no requests left for an hour, then breaks while the
  // pool is still reading its rate-limit headers.
  const fetch = async () => {
    calls++;
    const response = new Response('{"ok":true}', { status: 200, headers: { "content-type": "application/json" } });
    if (calls === 1) {
      const get = response.headers.get.bind(response.headers);
      const broken = { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1h" };
      Object.defineProperty(response.headers, "get", {
        value: (name) => {
          if (name === "x-ratelimit-remaining-tokens") throw new Error("headers broke while read");
          return broken[name] ?? get(name);
        },
      });
    }
    return response;
  };
  const c = new PoolSwitchClient({ upstreamBaseUrl: "http://127.0.0.1:9", keys: [KEY], fetch });
  await assert.rejects(c.post("/v1/chat/completions", { json: {} }), (e) => e instanceof PoolSwitchError && !e.message.includes(KEY));
  // The next answers carry no rate-limit headers: nothing may read them with the first one's.
  assert.deepEqual(await c.post("/v1/chat/completions", { json: {} }), { ok: true });
  const [key] = c.status().keys;
  assert.equal(key.state, "healthy");
  assert.equal(key.estimatedRemainingQuota, null);
  assert.equal(key.cooldownUntil, null);
  assert.deepEqual(await c.post("/v1/chat/completions", { json: {} }), { ok: true });
});
