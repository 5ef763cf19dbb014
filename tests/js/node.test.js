// Node-specific behaviour: CommonJS, injected fetch implementations, event hook failures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { PoolSwitchClient } from "../../pkg/esm/node.js";
import { mockControl } from "../scenarios/scenarios.js";
import { startMock } from "./mock.js";

const require = createRequire(import.meta.url);
let mock;
let control;
before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
  await control.setKeys({ "sk-node-a-secret": { id: "node-a" }, "sk-node-b-secret": { id: "node-b" } });
});
after(() => mock.stop());

test("CommonJS require works and rotates keys", async () => {
  const cjs = require("../../pkg/cjs/node.cjs");
  const client = new cjs.PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret", "sk-node-b-secret"], strategy: "round_robin" });
  const a = await client.post("/v1/chat/completions", { json: { model: "m", messages: [] } });
  const b = await client.post("/v1/chat/completions", { json: { model: "m", messages: [] } });
  assert.deepEqual([a.choices[0].message.content, b.choices[0].message.content], ["served by node-a", "served by node-b"]);
  assert.ok(cjs.PoolSwitchError.prototype instanceof Error);
});

test("an injected fetch function is used, and an object with fetch (service binding style) too", async () => {
  let calls = 0;
  const myFetch = (url, init) => {
    calls++;
    return fetch(url, init);
  };
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], fetch: myFetch });
  await client.get("/v1/models");
  assert.equal(calls, 1);

  const binding = {
    calls: 0,
    fetch(url, init) {
      this.calls++; // needs `this`: called as a method, like a Workers Fetcher
      return fetch(url, init);
    },
  };
  const viaBinding = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], fetch: binding });
  await viaBinding.get("/v1/models");
  assert.equal(binding.calls, 1);
});

test("in Node requests go through undici's dispatcher; fetch only when injected, looked up at call time", async () => {
  const original = globalThis.fetch;
  const fast = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] });
  const injected = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], fetch: (u, i) => globalThis.fetch(u, i) });
  let seen = 0;
  globalThis.fetch = (u, i) => {
    seen++;
    return original(u, i);
  };
  try {
    assert.equal((await fast.get("/v1/models")).object, "list");
    assert.equal(seen, 0);
    assert.equal((await injected.get("/v1/models")).object, "list");
    assert.equal(seen, 1);
  } finally {
    globalThis.fetch = original;
  }
});

test("a throwing onEvent listener does not break requests", async () => {
  const client = new PoolSwitchClient({
    upstreamBaseUrl: mock.url,
    keys: ["sk-node-a-secret"],
    onEvent: () => {
      throw new Error("listener bug");
    },
  });
  const out = await client.get("/v1/models");
  assert.equal(out.object, "list");
});

test("a network failure is retried on another key, then reported without key values", async () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: "http://127.0.0.1:9", keys: ["sk-node-a-secret", "sk-node-b-secret"], retryAttempts: 1, backoffBaseMs: 5 });
  await assert.rejects(client.get("/v1/models"), (e) => {
    assert.equal(e.kind, "network");
    assert.ok(!e.message.includes("sk-node"), e.message);
    return true;
  });
  const s = client.status();
  assert.deepEqual(s.keys.map((k) => [k.totalRequests, k.lastError, k.networkErrorCount]), [[1, "network", 1], [1, "network", 1]]);
});

test("util.inspect of a client shows no key values", async () => {
  const { inspect } = await import("node:util");
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] });
  assert.ok(!inspect(client, { showHidden: true, depth: 5 }).includes("sk-node-a-secret"));
});

test("any query value crosses the wire, even the old format's separators; header values follow HTTP's rules", async () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] });
  const odd = "a\x1eb\x1fc \"q\" é";
  const echo = await client.get("/v1/echo", { query: { q: odd }, headers: { "x-note": "\"quoted\", é" } });
  assert.equal(echo.query.q, odd);
  assert.equal(echo.headers["x-note"], "\"quoted\", é".normalize());
  const before = (await control.calls()).length;
  await assert.rejects(client.get("/v1/models", { headers: { "x-note": "a\x1eb" } }), (e) => e.kind === "invalid_request");
  assert.equal((await control.calls()).length, before, "nothing reached the provider");
});

test("a timeout timer that lost its race is cleared, and a failed-over response's body is released", async () => {
  await control.setKeys({ "sk-node-a-secret": { id: "node-a", script: ["rate_limit:1000"] }, "sk-node-b-secret": { id: "node-b" } });
  const rejected = [];
  const fetchSpy = async (url, init) => {
    const r = await fetch(url, init);
    if (r.status === 429) rejected.push(r);
    return r;
  };
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret", "sk-node-b-secret"], strategy: "round_robin", requestTimeoutMs: 60_000, fetch: fetchSpy });
  const out = await client.post("/v1/chat/completions", { json: { model: "m", messages: [] } });
  assert.equal(out.choices[0].message.content, "served by node-b");
  assert.equal(rejected.length, 1);
  // Cancelled, the body reads as ended at once; left alone, it would still hold the 429 JSON.
  assert.deepEqual(await rejected[0].body.getReader().read(), { done: true, value: undefined }, "the 429 answer's body was released");
  // A 60 s timer left behind would show as an active handle keeping the process alive.
  const timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout");
  assert.equal(timers.length, 0, `no timer left: ${timers.join(",")}`);
  await control.setKeys({ "sk-node-a-secret": { id: "node-a" }, "sk-node-b-secret": { id: "node-b" } });
});
