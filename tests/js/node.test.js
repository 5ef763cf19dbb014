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

test("a repeated header name reaches the transport joined, and a header named __proto__ as an own header", async () => {
  let sent;
  const dispatcher = {
    request(opts, callback) {
      sent = opts.headers;
      setImmediate(() => callback(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })));
    },
  };
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], defaultHeaders: { "x-default": "d" }, dispatcher, retryAttempts: 0 });
  const headers = [["x-note", "one"], ["x-note", "two"], ["__proto__", "p"]];
  await assert.rejects(client.get("/v1/echo", { headers }), (e) => e.kind === "network");
  assert.equal(sent["x-note"], "one, two");
  assert.equal(sent["x-default"], "d");
  assert.equal(Object.getOwnPropertyDescriptor(sent, "__proto__")?.value, "p");
  assert.equal(Object.getPrototypeOf(sent), Object.prototype);
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

// Each case is a caller mistake: a typed PoolSwitchError naming the problem, before any key is
// booked or any request sent.
test("bad caller input is refused with a typed error naming it, and nothing reaches the provider", async () => {
  const { PoolSwitchError } = await import("../../pkg/esm/node.js");
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] });
  const before = (await control.calls()).length;
  const cases = [
    ["signal: {}", () => client.get("/v1/models", { signal: {} }), /signal must be an AbortSignal/],
    ["options: a string", () => client.get("/v1/models", "fast"), /options must be an object/],
    ["fetch init: a number", () => client.fetch(`${mock.url}/v1/models`, 5), /init must be an object/],
    ["path: a number", () => client.get(42), /path must be a string/],
    ["path: undefined", () => client.post(), /path must be a string/],
    ["method: undefined", () => client.request(undefined, "/v1/models"), /method must be a string/],
    ["HEAD with json", () => client.request("HEAD", "/v1/models", { json: { a: 1 } }), /HEAD request cannot have a body/],
    ["GET with a body", () => client.get("/v1/models", { body: "x" }), /GET request cannot have a body/],
    ["fetch GET with a body", () => client.fetch(`${mock.url}/v1/models`, { body: "x" }), /GET request cannot have a body/],
    ["json and body", () => client.post("/v1/echo", { json: {}, body: "x" }), /json and body/],
    ["headers: a string", () => client.get("/v1/models", { headers: "x-a: 1" }), /headers must be/],
    ["headers: bad pairs", () => client.get("/v1/models", { headers: [["x-a"]] }), /headers must be/],
    ["query: a string", () => client.get("/v1/models", { query: "a=1" }), /query must be/],
    ["timeoutMs: a string", () => client.get("/v1/models", { timeoutMs: "100" }), /timeoutMs must be a finite number/],
  ];
  for (const [name, call] of cases) {
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof PoolSwitchError, `${name}: ${e && e.name}: ${e && e.message}`);
      assert.equal(e.kind, "invalid_request", name);
      assert.match(e.message, cases.find(([n]) => n === name)[2], name);
      return true;
    });
  }
  assert.equal((await control.calls()).length, before, "nothing reached the provider");
  assert.equal(client.status().keys[0].totalRequests, 0, "nothing was booked on the key");
  // What fetch itself accepts is accepted: a null init, a polyfill's AbortSignal.
  assert.equal((await client.fetch(`${mock.url}/v1/models`, null)).status, 200);
  assert.equal((await client.get("/v1/models", null)).object, "list");
  const foreign = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
  assert.equal((await client.get("/v1/models", { signal: foreign })).object, "list");
});

test("unknown options are refused, naming them and the nearest known one", async () => {
  const base = { upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] };
  const refused = (options, field, suggestion) => {
    assert.throws(() => new PoolSwitchClient({ ...base, ...options }), (e) => {
      assert.equal(e.name, "PoolSwitchError");
      assert.equal(e.kind, "invalid_config");
      assert.equal(e.field, field);
      if (suggestion) assert.equal(e.message, `invalid config: ${field} is not a known field; did you mean \`${suggestion}\`?`);
      else assert.match(e.message, new RegExp(`^invalid config: ${field} is not a known field`));
      assert.ok(!e.message.includes("sk-node"), e.message);
      return true;
    });
  };
  refused({ retryAttemps: 2 }, "retryAttemps", "retryAttempts");
  refused({ maxRetries: 2 }, "maxRetries", "retryAttempts");
  refused({ timeout: 5 }, "timeout", "requestTimeoutMs");
  refused({ onEvnt: () => {} }, "onEvnt", "onEvent");
  refused({ fetc: fetch }, "fetc", "fetch");
  refused({ zzzzzzzz: 1 }, "zzzzzzzz");
  // Inside a key too.
  assert.throws(() => new PoolSwitchClient({ ...base, keys: [{ id: "a", value: "sk-node-a-secret", monthlyQuata: 5 }] }), (e) => e.kind === "invalid_config" && e.message === "invalid config: keys[0].monthlyQuata is not a known field; did you mean `monthlyQuota`?");

  const client = new PoolSwitchClient(base);
  for (const [name, suggestion] of [["timeout", "timeoutMs"], ["jsn", "json"], ["retryAttemps", "retryAttempts"], ["zzzzzzzz", undefined], ["params", "query"]]) {
    await assert.rejects(client.get("/v1/models", { [name]: 1 }), (e) => {
      assert.equal(e.kind, "invalid_request");
      assert.equal(e.field, name);
      assert.equal(e.message, `invalid request: ${name} is not a known option${suggestion ? `; did you mean \`${suggestion}\`?` : ""}`);
      return true;
    });
  }
});

test("with queryAuthParam, no Response handed back shows the key in its url", async () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], queryAuthParam: "key" });
  const viaFetch = await client.fetch(`${mock.url}/v1/echo?x=1`);
  assert.equal((await viaFetch.clone().json()).keyId, "node-a", "the key was sent");
  const streamed = await client.get("/v1/echo", { query: { x: "1" }, stream: true });
  const chat = await client.post("/v1/chat/completions", { json: { model: "m", messages: [], stream: true }, stream: true });
  for (const [name, r] of [["fetch", viaFetch], ["fetch clone", viaFetch.clone()], ["stream", streamed], ["stream clone", streamed.clone()], ["chunked stream", chat]]) {
    assert.ok(!r.url.includes("sk-node-a-secret"), `${name}: ${r.url}`);
    assert.equal(new URL(r.url).searchParams.get("x") ?? "1", "1", name);
    assert.equal(new URL(r.url).pathname.startsWith("/v1/"), true, name);
  }
  await chat.text();
});

test("importState refuses non-object snapshots with typed errors; BigInt counters are clamped; status keeps working", () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: [{ id: "a", value: "sk-node-a-secret" }] });
  for (const snapshot of [null, "snapshot", [], 42]) {
    for (const method of ["importState", "mergeState"]) {
      assert.throws(() => client[method](snapshot), (e) => e.name === "PoolSwitchError" && e.kind === "invalid_config" && e.field === "snapshot", `${method}(${JSON.stringify(snapshot)})`);
    }
  }
  assert.equal(client.status().keys[0].totalRequests, 0);
  client.importState({ keys: [{ id: "a", totalRequests: 5n }] });
  assert.equal(client.status().keys[0].totalRequests, 5);
  client.mergeState({ keys: [{ id: "a", successes: 2n ** 64n - 1n }] });
  assert.ok(Number.isSafeInteger(client.status().keys[0].successes), "a BigInt beyond 2^53 comes back as a safe number");
});

test("a network error keeps the host's error as its cause, with key values redacted", async () => {
  // A port nothing listens on: bound, then closed.
  const { createServer } = await import("node:net");
  const closed = createServer();
  await new Promise((r) => closed.listen(0, "127.0.0.1", r));
  const { port } = closed.address();
  await new Promise((r) => closed.close(r));
  const client = new PoolSwitchClient({ upstreamBaseUrl: `http://127.0.0.1:${port}`, keys: ["sk-node-a-secret"], retryAttempts: 0 });
  await assert.rejects(client.get("/v1/models"), (e) => {
    assert.ok(e instanceof Error);
    assert.equal(e.kind, "network");
    assert.ok(e.cause instanceof Error, "a cause");
    // fetch wraps the connect error in a TypeError; undici's dispatcher (Node's default) throws it as it is.
    const code = e.cause.code ?? e.cause.cause?.code;
    assert.equal(code, "ECONNREFUSED", `the connect error: ${e.cause} / ${e.cause.cause}`);
    return true;
  });
  // A custom fetch whose error quotes the URL, key included (queryAuthParam).
  const leaky = new PoolSwitchClient({
    upstreamBaseUrl: mock.url,
    keys: ["sk-node-a-secret"],
    queryAuthParam: "key",
    retryAttempts: 0,
    fetch: (url) => Promise.reject(Object.assign(new Error(`cannot reach ${url}`), { code: "EHOSTDOWN" })),
  });
  await assert.rejects(leaky.get("/v1/models"), (e) => {
    assert.equal(e.kind, "network");
    assert.equal(e.cause.code, "EHOSTDOWN");
    assert.match(e.cause.message, /cannot reach .*key=(<redacted>|%3Credacted%3E)/);
    assert.ok(!e.cause.message.includes("sk-node-a-secret") && !e.cause.stack.includes("sk-node-a-secret"), e.cause.message);
    return true;
  });
});

test("a custom fetch resolving to something that is not a Response fails that attempt, it does not hang", async () => {
  for (const [name, result] of [["undefined", undefined], ["a plain object", { status: 200 }], ["a used Response", (() => { const r = new Response("x"); r.text(); return r; })()]]) {
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"], retryAttempts: 0, fetch: async () => result });
    await assert.rejects(client.get("/v1/models"), (e) => e.kind === "network" && /Response/.test(e.cause.message), name);
    assert.equal(client.status().keys[0].inFlight, 0, name);
  }
});

// The core has no known panic left to provoke, so the test makes the live instance trap for
// real in the middle of a call: the report of the next request's answer (sent()) is replaced,
// once, by a call into the instance's own export with a pointer far outside its memory. The instance
// raises what any trap raises (a WebAssembly.RuntimeError; a Rust panic is `unreachable`),
// from inside the client's request, with the other clients' pools living in that instance.
test("a trap in the wasm fails that call only, as kind internal; the instance and every pool are rebuilt", async () => {
  const { glue, liveExports, PoolSwitchClient } = await import("./wasm-entry.js");
  const trapped = liveExports();
  const events = [];
  const a = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: [{ id: "a1", value: "sk-node-a-secret" }], onEvent: (e) => events.push(e.type) });
  const b = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: [{ id: "b1", value: "sk-node-b-secret" }] });
  a.addKey({ id: "a2", value: "sk-node-b-secret" });
  a.disableKey("a2");
  await a.get("/v1/models");
  await b.get("/v1/models");
  await b.get("/v1/models");

  // A call of b in flight when the instance is replaced: its task lived in the old instance.
  await control.setKeys({ "sk-node-b-secret": { id: "node-b", script: ["delay:300", "delay:300"] } });
  const inFlight = b.get("/v1/models").then(
    () => "served",
    (e) => e.kind,
  );
  // And one aborted by its caller after the reset: the abort must not throw from the signal.
  const controller = new AbortController();
  const aborted = b.get("/v1/models", { signal: controller.signal }).then(
    () => "served",
    (e) => e.name,
  );
  const sent = glue.WasmPool.prototype.sent;
  glue.WasmPool.prototype.sent = function () {
    glue.WasmPool.prototype.sent = sent;
    return trapped.wasmpool_sent(0xfffffff0, 0, 0, 0);
  };
  await assert.rejects(a.get("/v1/models"), (e) => {
    assert.equal(e.name, "PoolSwitchError");
    assert.equal(e.kind, "internal");
    assert.ok(e.cause instanceof WebAssembly.RuntimeError, `cause: ${e.cause}`);
    return true;
  });
  assert.equal(glue.WasmPool.prototype.sent, sent, "the trap was provoked once");
  assert.notEqual(liveExports(), trapped, "the trapped instance was replaced");

  controller.abort();
  assert.equal(await aborted, "AbortError");
  assert.equal(await inFlight, "internal", "a call caught in flight by the reset fails as internal, it does not hang");
  // Later calls on the same client work, on a pool rebuilt from its config, changes and state.
  events.length = 0;
  assert.equal((await a.get("/v1/models")).object, "list");
  assert.ok(events.includes("success"), "the listener survived the rebuild");
  const sa = a.status();
  assert.deepEqual(sa.keys.map((k) => [k.id, k.enabled]), [["a1", true], ["a2", false]], "added and disabled keys replayed");
  // One call before, one after, and the trapped call's attempt if the snapshot counts it (it
  // was in flight); rebuilt from the config alone it would be 1.
  assert.ok(sa.keys[0].totalRequests >= 2, `the counts from before the trap are kept (${sa.keys[0].totalRequests})`);
  // Other clients of the same instance too.
  assert.equal((await b.get("/v1/models")).object, "list");
  // b's in-flight attempt was not yet done when its state was saved (a snapshot leaves it out).
  assert.equal(b.status().keys[0].totalRequests, 3);
  const c = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-node-a-secret"] });
  assert.equal((await c.get("/v1/models")).object, "list");
});
