// A call's deadlines and semantics through the packed wrapper on Node: stalled error bodies,
// deadlineMs, when a request is resent, aborts from event listeners, broken custom fetches,
// and requests no upstream should get.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { PoolSwitchClient } from "../../pkg/esm/node.js";
import { useMockProvider, freshKeys } from "../support/provider.js";
import { createServer } from "node:net";

// A loopback port nothing listens on (bound, then closed): connecting to it is refused.
function closedPort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const mock = useMockProvider();
let unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
before(() => process.on("unhandledRejection", onUnhandled));
after(() => process.off("unhandledRejection", onUnhandled));

// Fresh keys per test; `specs` by id. Returns the keys ({ id, value }) and this test's calls.
const keys = (specs) => freshKeys(mock.control, "c", specs);

function balanced(client) {
  for (const k of client.status().keys) {
    assert.equal(k.inFlight, 0, `key ${k.id} in flight`);
    assert.equal(k.totalRequests, k.successes + k.errorCount, `key ${k.id} books`);
  }
}

const chat = { json: { model: "m", messages: [] } };

test("a 429 whose body stalls ends with the attempt's timeout, frees the key and fails over", async () => {
  const k = await keys({ a: { script: ["stall_error:20"] }, b: {} });
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, strategy: "round_robin", requestTimeoutMs: 300 });
  const out = await client.post("/v1/chat/completions", chat);
  assert.match(out.choices[0].message.content, /-b$/);
  const a = client.status().keys.find((x) => x.id === "a");
  assert.equal(a.state, "cooling", "classified on the head that arrived: a 429 with retry-after");
  assert.ok(a.cooldownUntil > Date.now() + 10_000);
  assert.deepEqual((await k.calls()).map((c) => c.keyId), ["a", "b"]);
  balanced(client);
});

test("a success names the key and attempt count of the attempt that answered, on both transports", async () => {
  // a: 429, b: quota (both fail over); c answers on the third attempt, whatever the order.
  const k = await keys({ a: { script: ["rate_limit:60000", "rate_limit:60000"] }, b: { script: ["quota", "quota"] }, c: {} });
  for (const transport of [{}, { fetch }]) {
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, ...transport });
    const res = await client.fetch("/v1/chat/completions", { method: "POST", body: JSON.stringify(chat.json), headers: { "content-type": "application/json" } });
    assert.equal(res.status, 200);
    await res.text();
    assert.deepEqual(res.poolswitch, { keyId: "c", attempts: 3, outcome: "success" });
    const once = await client.fetch("/v1/models");
    await once.text();
    assert.deepEqual(once.poolswitch, { keyId: "c", attempts: 1, outcome: "success" }, "a and b are resting");
    balanced(client);
  }
});

test("deadlineMs bounds a wait for Retry-After: 30 (config and per request)", async () => {
  const k = await keys({ a: { script: ["anthropic_rate_limit:30", "anthropic_rate_limit:30"] } });
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, deadlineMs: 2_000 });
  await assert.rejects(client.post("/v1/chat/completions", chat), (e) => e.kind === "upstream" && e.status === 429 && e.retryAt > Date.now() + 20_000);
  const perRequest = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys });
  await assert.rejects(perRequest.post("/v1/chat/completions", { ...chat, deadlineMs: 1_000 }), (e) => e.kind === "upstream" && e.status === 429);
  assert.equal((await k.calls()).length, 2, "one attempt each, no second try after the wait");
  await assert.rejects(perRequest.get("/v1/models", { deadlineMs: 0 }), (e) => e.kind === "invalid_request" && /deadlineMs/.test(e.message));
});

test("a POST is not resent after an ambiguous failure, but is after a failure to connect", async () => {
  const k = await keys({ a: { script: ["drop"] }, b: {} });
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, strategy: "round_robin", backoffBaseMs: 5 });
  await assert.rejects(client.post("/v1/chat/completions", chat), (e) => e.kind === "network");
  assert.deepEqual((await k.calls()).map((c) => c.keyId), ["a"], "the provider saw the POST once");

  // The first attempt goes to a closed port (a real refused connection): nothing was sent.
  const k2 = await keys({ a: {}, b: {} });
  const refused = `http://127.0.0.1:${await closedPort()}`;
  let n = 0;
  const refuseFirst = (url, init) => fetch(n++ === 0 ? url.replace(mock.url, refused) : url, init);
  const resending = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k2.keys, strategy: "round_robin", backoffBaseMs: 5, fetch: refuseFirst });
  const out = await resending.post("/v1/chat/completions", chat);
  assert.match(out.choices[0].message.content, /-b$/);
  assert.equal(resending.status().keys.find((x) => x.id === "a").networkErrorCount, 1);
  balanced(client);
  balanced(resending);
});

test("abort() from inside an event listener ends the call, books it, and leaks nothing", async () => {
  for (const when of ["request", "failover"]) {
    const k = await keys({ a: { script: ["rate_limit:5000"] }, b: {} });
    const controller = new AbortController();
    const client = new PoolSwitchClient({
      upstreamBaseUrl: mock.url,
      keys: k.keys,
      strategy: "round_robin",
      requestTimeoutMs: 60_000,
      onEvent: (e) => e.type === when && controller.abort(new Error(`stop at ${when}`)),
    });
    await assert.rejects(client.post("/v1/chat/completions", { ...chat, signal: controller.signal }), { message: `stop at ${when}` });
    balanced(client);
    // At a failover the next attempt is already booked; the abort books it as cancelled.
    assert.equal(client.status().totalRequests, when === "request" ? 1 : 2, when);
    const timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout");
    assert.equal(timers.length, 0, `no timer left after an abort at ${when}`);
    // The pool still serves.
    const out = await client.post("/v1/chat/completions", chat);
    assert.ok(out.choices[0].message.content);
  }
});

test("a custom fetch that resolves to no Response fails that attempt as a network error", async () => {
  const k = await keys({ a: {} });
  const used = await fetch(`${mock.url}/v1/models`, { headers: { authorization: `Bearer ${k.keys[0].value}` } });
  await used.text();
  for (const [name, result] of [["undefined", undefined], ["a plain object", {}], ["a used Response", used]]) {
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, retryAttempts: 1, backoffBaseMs: 5, fetch: async () => result });
    await assert.rejects(client.get("/v1/models"), (e) => {
      assert.equal(e.kind, "network", name);
      assert.match(e.message, /fetch function/, name);
      return true;
    });
    balanced(client);
  }
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(unhandled, [], "no unhandled rejection");
});

test("CONNECT, TRACE and a GET or HEAD with a body are refused before any call", async () => {
  const k = await keys({ a: {} });
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys });
  for (const call of [
    () => client.request("CONNECT", "/v1/models"),
    () => client.request("TRACE", "/v1/models"),
    () => client.get("/v1/models", { json: { a: 1 } }),
    () => client.request("HEAD", "/v1/models", { body: "x" }),
    () => client.fetch(`${mock.url}/v1/models`, { method: "GET", body: "x" }),
    () => client.get("/v1/models", { timeoutMs: 0 }),
  ]) {
    await assert.rejects(call(), (e) => e.kind === "invalid_request");
  }
  assert.equal((await k.calls()).length, 0);
  assert.equal(client.status().totalRequests, 0);
});

test("retryAttempts per request overrides the config's, and is checked like it", async () => {
  const k = await keys({ a: { script: ["server_error", "server_error", "server_error", "server_error", "server_error"] } });
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.keys, retryAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 2 });
  await assert.rejects(client.post("/v1/chat/completions", { ...chat, retryAttempts: 0 }), (e) => e.kind === "upstream" && e.status === 500 && e.attempts === 1);
  await assert.rejects(client.post("/v1/chat/completions", { ...chat, retryAttempts: 1 }), (e) => e.kind === "upstream" && e.attempts === 2);
  assert.equal((await k.calls()).length, 3, "one call, then two");
  for (const bad of [-1, 1.5, 1_000]) {
    await assert.rejects(client.post("/v1/chat/completions", { ...chat, retryAttempts: bad }), (e) => e.kind === "invalid_request" && /retryAttempts/.test(e.message), String(bad));
  }
  assert.equal((await k.calls()).length, 3, "a refused request makes no call");
  balanced(client);
});
