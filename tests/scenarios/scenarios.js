// One scenario suite for every host (Node, headless Chromium, workerd; the WASI component under jco
// and Wasmtime through tests/wasi/wit-api.js): each scenario drives the package against the mock
// provider over real HTTP and throws on failure. Only web-standard APIs are used here, so the same
// file runs everywhere.

export class ScenarioFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new ScenarioFailure(message);
}

function equal(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${message}: expected ${e}, got ${a}`);
}

async function rejects(promise, message) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new ScenarioFailure(`${message}: expected a rejection`);
}

function throws(f, message) {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new ScenarioFailure(`${message}: expected an exception`);
}

/** Control of the mock provider over HTTP, usable from any host. */
export function mockControl(url, fetchImpl = (u, i) => globalThis.fetch(u, i)) {
  // Tried once: the mock never closes an idle kept-alive connection (see its listen()).
  const call = (path, init) => fetchImpl(`${url}${path}`, init).then((r) => r.json());
  return {
    url,
    setKeys: (specs) => call("/__mock/keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(specs) }),
    calls: () => call("/__mock/calls"),
    releaseHeldEnds: () => call("/__mock/release", { method: "POST" }),
  };
}

let counter = 0;

// Fresh key values per scenario, so scenarios share one mock without sharing state.
async function keys(mock, specs) {
  const run = `${Date.now().toString(36)}${(counter++).toString(36)}`;
  const registered = {};
  const list = [];
  for (const [id, spec] of Object.entries(specs)) {
    const value = `sk-${run}-${id}-secret`;
    registered[value] = { ...spec, id: `${run}-${id}` };
    list.push({ id, value });
  }
  await mock.setKeys(registered);
  const calls = async () => (await mock.calls()).filter((c) => c.keyId && c.keyId.startsWith(`${run}-`)).map((c) => ({ ...c, keyId: c.keyId.slice(run.length + 1) }));
  return { list, values: list.map((k) => k.value), calls, run };
}

function refusesConfigs({ PoolSwitchClient, PoolSwitchError }, cases) {
  for (const [config, field] of cases) {
    const e = throws(() => new PoolSwitchClient(config), field);
    check(e instanceof PoolSwitchError, `${field}: PoolSwitchError`);
    equal([e.kind, e.field], ["invalid_config", field], field);
    check(!e.message.includes("sk-secret"), `${field}: no key in message: ${e.message}`);
  }
}

const chat = { json: { model: "mock-model", messages: [{ role: "user", content: "hi" }] } };

export const scenarios = {
  async "every key format gets an id and no value in status"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {}, b: {}, c: {} });
    const client = new PoolSwitchClient({
      upstreamBaseUrl: mock.url,
      keys: [k.values[0], { id: "free-2", value: k.values[1], monthlyQuota: 100 }, { id: "paid", value: k.values[2], metadata: { tier: "pro" } }],
    });
    const s = client.status();
    equal(s.keys.map((x) => x.id), ["key-1", "free-2", "paid"], "ids");
    equal(s.keys[1].estimatedRemainingQuota, 100, "monthly quota estimate");
    equal(s.keys[2].metadata, { tier: "pro" }, "metadata");
    const text = JSON.stringify(s);
    for (const v of k.values) check(!text.includes(v), "status leaks a key");
  },

  async "round_robin rotates keys in order"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {}, b: {}, c: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin" });
    for (let i = 0; i < 5; i++) await client.get("/v1/models");
    equal((await k.calls()).map((c) => c.keyId), ["a", "b", "c", "a", "b"], "order");
  },

  async "least_used, random, weighted and quota_failover all serve from the pool"({ PoolSwitchClient }, mock) {
    for (const strategy of ["least_used", "random", "weighted", "quota_failover"]) {
      const k = await keys(mock, { a: { quota: 50 }, b: { quota: 50 } });
      const list = strategy === "weighted" ? [{ ...k.list[0], weight: 1 }, { ...k.list[1], weight: 9 }] : k.list;
      const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: list, strategy });
      for (let i = 0; i < 40; i++) await client.post("/v1/chat/completions", chat);
      const used = (await k.calls()).map((c) => c.keyId);
      const a = used.filter((x) => x === "a").length;
      const b = used.filter((x) => x === "b").length;
      equal(a + b, 40, `${strategy}: every call used a pool key`);
      if (strategy === "weighted") check(b > a * 2, `weighted favours the heavy key (${a} vs ${b})`);
      else if (strategy === "random") check(a > 5 && b > 5, `random uses both keys (${a} vs ${b})`);
      else check(Math.abs(a - b) <= 2, `${strategy} balances equal keys (${a} vs ${b})`);
    }
  },

  async "quota_exhausted fails over at once and cools the key for cooldownSeconds"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["quota"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin", cooldownSeconds: 120 });
    const before = Date.now();
    const out = await client.post("/v1/chat/completions", chat);
    check(out.choices[0].message.content.endsWith("-b"), "served by b");
    const a = client.status().keys[0];
    equal([a.state, a.failoverCount, a.lastError], ["exhausted", 1, "quota_exhausted"], "key a");
    check(a.cooldownUntil >= before + 120_000 && a.cooldownUntil <= Date.now() + 120_000, "cooldown lasts cooldownSeconds");
    for (let i = 0; i < 3; i++) await client.get("/v1/models");
    equal((await k.calls()).map((c) => c.keyId), ["a", "b", "b", "b", "b"], "a is skipped while cooling");
  },

  async "a rate limit cools the key for the provider's retry-after"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["rate_limit:5000"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin" });
    const before = Date.now();
    await client.get("/v1/models");
    const a = client.status().keys[0];
    equal([a.state, a.rateLimitCount], ["cooling", 1], "key a");
    check(a.cooldownUntil >= before + 5000 && a.cooldownUntil <= Date.now() + 5000, "cooling for retry-after-ms");
  },

  async "with one key, Retry-After is waited out and the call succeeds"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["rate_limit:300"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const out = await client.get("/v1/models");
    equal(out.data[0].id, "mock-model", "answer");
    const calls = await k.calls();
    equal(calls.length, 2, "two calls");
    check(calls[1].at - calls[0].at >= 280, `waited for retry-after (${calls[1].at - calls[0].at} ms)`);
  },

  async "failovers and retries are reported as events"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["quota"] }, b: {}, c: { script: ["rate_limit:300"] } });
    const events = [];
    const failing = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list.slice(0, 2), strategy: "round_robin", onEvent: (e) => events.push(e) });
    await failing.post("/v1/chat/completions", chat);
    equal(events.filter((e) => e.type === "failover").map((e) => [e.fromKeyId, e.toKeyId, e.reason]), [["a", "b", "quota_exhausted"]], "failover event");
    const retries = [];
    const waiting = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: [k.list[2]], onEvent: (e) => e.type === "retry" && retries.push(e) });
    await waiting.get("/v1/models");
    // The delay is what is left of the 300 ms cooldown when the pool decides, so only its upper
    // bound is fixed (a loaded host takes longer between the answer and the decision); the
    // resend itself must not come before the cooldown ends.
    check(retries.length === 1 && retries[0].delayMs > 0 && retries[0].delayMs <= 300, `one retry for the key's cooldown (${JSON.stringify(retries)})`);
    const cCalls = (await k.calls()).filter((c) => c.keyId === "c");
    check(cCalls.length === 2 && cCalls[1].at - cCalls[0].at >= 300, "resent after the cooldown");
  },

  async "a rejected key (401) leaves rotation until enabled again"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["invalid"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin" });
    for (let i = 0; i < 4; i++) await client.get("/v1/models");
    equal((await k.calls()).map((c) => c.keyId), ["a", "b", "b", "b", "b"], "a never used again");
    equal(client.status().keys[0].state, "invalid", "a is invalid");
    client.enableKey("a");
    equal(client.status().keys[0].state, "healthy", "enabled again");
  },

  async "5xx is retried without blaming the key"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["server_error", "overloaded"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, backoffBaseMs: 10 });
    await client.get("/v1/models");
    const a = client.status().keys[0];
    equal([a.state, a.totalRequests, a.successes, a.errorCount, a.failoverCount], ["healthy", 3, 1, 2, 0], "key a");
  },

  async "other 4xx comes back at once as PoolSwitchError with the provider's data"({ PoolSwitchClient, PoolSwitchError }, mock) {
    const k = await keys(mock, { a: { script: ["bad_request"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const e = await rejects(client.post("/v1/chat/completions", chat), "400");
    check(e instanceof PoolSwitchError, "PoolSwitchError");
    equal([e.kind, e.status, e.reason, e.keyId, e.attempts], ["upstream", 400, "client_error", "a", 1], "fields");
    equal(e.data.error.message, "'messages' is a required property", "data");
    check(e.message.includes("'messages' is a required property"), "message carries the provider's words");
    equal((await k.calls()).length, 1, "no retry");
  },

  async "an attempt that exceeds timeoutMs fails with a timeout error"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["hang", "hang"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, retryAttempts: 1, backoffBaseMs: 10 });
    const e = await rejects(client.get("/v1/models", { timeoutMs: 150 }), "timeout");
    equal([e.kind, e.keyId, e.afterMs], ["timeout", "a", 150], "timeout error");
    const a = client.status().keys[0];
    equal([a.totalRequests, a.errorCount, a.inFlight, a.lastError], [2, 2, 0, "timeout"], "counted");
  },

  async "aborting the signal rejects with AbortError and books the attempt"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["hang"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const controller = new AbortController();
    const pending = client.get("/v1/models", { signal: controller.signal });
    // Abort once the provider holds the request, not after a guessed delay.
    for (let i = 0; i < 1000 && (await k.calls()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const e = await rejects(pending, "abort");
    equal(e.name, "AbortError", "AbortError");
    const a = client.status().keys[0];
    equal([a.totalRequests, a.errorCount, a.inFlight, a.lastError], [1, 1, 0, "cancelled"], "counted as cancelled");
    const again = await rejects(client.get("/v1/models", { signal: controller.signal }), "already aborted");
    equal(again.name, "AbortError", "an aborted signal rejects at once");
  },

  async "when every key is out the error says when the first returns"({ PoolSwitchClient, PoolSwitchError }, mock) {
    const k = await keys(mock, { a: { script: ["quota"] }, b: { script: ["quota"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, cooldownSeconds: 600 });
    const e1 = await rejects(client.post("/v1/chat/completions", chat), "all quota");
    equal([e1.kind, e1.status, e1.reason, e1.attempts], ["upstream", 429, "quota_exhausted", 2], "last rejection");
    check(e1.retryAt > Date.now() + 590_000, "retryAt is the earliest return");
    const e2 = await rejects(client.get("/v1/models"), "no keys");
    check(e2 instanceof PoolSwitchError && e2.kind === "no_healthy_keys", "no_healthy_keys");
    equal(e2.retryAt, e1.retryAt, "same retryAt");
    equal((await k.calls()).length, 2, "no calls while every key rests");
  },

  async "while every key rests, client.fetch answers 429 with retry-after"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["quota"] }, b: { script: ["quota"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, cooldownSeconds: 600 });
    await rejects(client.post("/v1/chat/completions", chat), "all quota");
    const r = await client.fetch(`${mock.url}/v1/models`);
    equal(r.status, 429, "fetch gets a 429");
    check(Number(r.headers.get("retry-after")) >= 590, "with retry-after");
    equal((await k.calls()).length, 2, "no calls while every key rests");
  },

  async "auth goes in the configured header, scheme or query parameter"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const raw = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, authHeaderName: "x-api-key", authScheme: null, defaultHeaders: { "anthropic-version": "2023-06-01" } });
    const echo = await raw.post("/v1/echo", { json: { hello: 1 }, headers: { "x-trace": "t1" }, query: { beta: "true", tags: ["x", "y"] } });
    equal([echo.keyId.endsWith("-a"), echo.headers["anthropic-version"], echo.headers["x-trace"], echo.headers["content-type"]], [true, "2023-06-01", "t1", "application/json"], "raw header");
    equal(echo.body, '{"hello":1}', "body");
    equal(echo.query, { beta: "true", tags: "y" }, "query");
    const query = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, queryAuthParam: "key" });
    const echo2 = await query.get("/v1/echo?key=callers-own");
    check(echo2.keyId.endsWith("-a") && echo2.headers.authorization === undefined, "query auth");
    const bearer = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const echo3 = await bearer.get("/v1/echo", { headers: { authorization: "Bearer callers-dummy" } });
    check(echo3.keyId.endsWith("-a"), "the caller's own auth header is replaced");
  },

  async "paths that leave the upstream origin are refused before any call"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const other = mock.url.replace("127.0.0.1", "localhost");
    for (const path of ["https://evil.example.net/v1/models", `${other}/v1/models`, "//evil.example.net/v1", "/v1/../../etc", "/v1/%2e%2e/x"]) {
      const e = await rejects(client.get(path), path);
      equal(e.kind, "invalid_request", path);
      for (const v of k.values) check(!JSON.stringify(e).includes(v) && !e.message.includes(v), "no key in error");
    }
    equal((await k.calls()).length, 0, "no call reached the provider");
    await client.get(`${mock.url}/v1/models`);
    equal((await k.calls()).length, 1, "the same origin is fine");
  },

  async "bad config is a typed error naming the field"(api, mock) {
    refusesConfigs(api, [
      [{ upstreamBaseUrl: mock.url, keys: [] }, "keys"],
      [{ upstreamBaseUrl: "ftp://x", keys: ["sk-secret-1"] }, "upstreamBaseUrl"],
      [{ upstreamBaseUrl: mock.url, keys: ["sk-secret-1"], retryAttempts: 1000 }, "retryAttempts"],
      [{ upstreamBaseUrl: mock.url, keys: ["sk-secret-1", "sk-secret-1"] }, "keys[1].value"],
      [{ upstreamBaseUrl: mock.url, keys: [{ id: "a", value: "sk-secret-1" }, { id: "a", value: "sk-secret-2" }] }, "keys[1].id"],
    ]);
  },

  async "config values of the wrong type are refused, naming the field"(api, mock) {
    refusesConfigs(api, [
      [{ upstreamBaseUrl: mock.url, keys: ["sk-secret-1"], strategy: "fastest" }, "strategy"],
      [{ upstreamBaseUrl: mock.url, keys: ["sk-secret-1"], retryAttempts: -1 }, "retryAttempts"],
      [{ upstreamBaseUrl: mock.url, keys: ["sk-secret-1"], fetch: 42 }, "fetch"],
      [{ upstreamBaseUrl: mock.url, keys: [{ value: "sk-secret-1", monthlyQuota: "sk-secret-2" }] }, "keys[0].monthlyQuota"],
    ]);
  },

  async "no key value in errors, status, events or snapshots"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["invalid"] }, b: { script: ["quota"] }, c: { script: ["bad_request"] } });
    const seen = [];
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin", onEvent: (e) => seen.push(e) });
    const e = await rejects(client.post("/v1/chat/completions", chat), "bad request");
    const text = [e.message, e.stack, JSON.stringify(e), JSON.stringify(client.status()), JSON.stringify(seen), JSON.stringify(client.exportState()), String(client), JSON.stringify(client)].join("\n");
    for (const v of k.values) check(!text.includes(v), "a key value leaked");
  },

  async "hundreds of concurrent requests keep the counters exact"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["rate_limit:50", "ok", "server_error"] }, b: { script: ["ok", "quota"] }, c: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "least_used", backoffBaseMs: 5, cooldownSeconds: 1 });
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => client.post("/v1/chat/completions", chat)));
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const s = client.status();
    const calls = await k.calls();
    equal(s.totalRequests, calls.length, "every upstream call is counted once");
    for (const key of s.keys) {
      equal(key.totalRequests, key.successes + key.errorCount, `key ${key.id}: requests = successes + errors`);
      equal(key.totalRequests, calls.filter((c) => c.keyId === key.id).length, `key ${key.id}: matches the provider's log`);
      equal(key.inFlight, 0, "nothing left in flight");
    }
    equal(s.successes, ok, "successes match fulfilled calls");
    equal(ok, 300, "every request is served while a key has quota");
  },

  async "client.fetch returns the upstream Response for any status"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["ok", "bad_request"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const f = client.fetch;
    const r1 = await f(`${mock.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify(chat.json), headers: { "content-type": "application/json" } });
    check(r1 instanceof Response && r1.status === 200, "a standard Response");
    equal((await r1.json()).object, "chat.completion", "body untouched");
    const r2 = await f(new Request(`${mock.url}/v1/chat/completions`, { method: "POST", body: "{}" }));
    equal(r2.status, 400, "4xx passed through, not thrown");
    equal((await r2.json()).error.message, "'messages' is a required property", "error body intact after classification");
  },

  async "text answers come back as strings, JSON as objects"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    equal(await client.get("/v1/text"), "plain text from " + k.run + "-a", "text");
    const r = await client.get("/v1/models", { stream: true });
    check(r instanceof Response, "stream: true gives the Response");
  },

  async "keys can be added, disabled and removed at run time"({ PoolSwitchClient, PoolSwitchError }, mock) {
    const k = await keys(mock, { a: {}, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: [k.list[0]], strategy: "round_robin" });
    equal(client.addKey(k.list[1]), "b", "added");
    const dup = throws(() => client.addKey({ id: "b", value: "sk-other-secret" }), "duplicate");
    check(dup instanceof PoolSwitchError && dup.kind === "invalid_config" && dup.message.includes("duplicate"), "duplicate id refused");
    client.disableKey("a");
    await client.get("/v1/models");
    await client.get("/v1/models");
    client.removeKey("a");
    equal(throws(() => client.removeKey("a"), "unknown").kind, "unknown_key", "unknown key");
    equal((await k.calls()).map((c) => c.keyId), ["b", "b"], "only b served");
    equal(client.status().keys.map((x) => x.id), ["b"], "a removed");
  },

  async "a streamed answer arrives chunk by chunk through client.fetch"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["rate_limit:5000"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin" });
    const r = await client.fetch(`${mock.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-hold-end": "1" },
      body: JSON.stringify({ ...chat.json, stream: true }),
    });
    equal([r.status, r.headers.get("content-type")], [200, "text/event-stream"], "a stream after failing over");
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let first = true;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (first) {
        // The provider holds its last event until released: a buffering client would not be here yet.
        first = false;
        check((await k.calls()).at(-1).lastChunkAt === undefined, "the first chunk arrived before the provider sent the last: not buffered");
        await mock.releaseHeldEnds();
      }
      text += decoder.decode(value, { stream: true });
    }
    check(text.includes("data: [DONE]") && text.includes(`"content":" ${k.run}-b"`), `the whole stream: ${text.slice(0, 200)}`);
    equal(client.status().keys[1].streamErrorCount, 0, "a clean end is no error");
  },

  async "a stream cut mid-way errors on the reader and counts against the key"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["cut"] } });
    const events = [];
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, onEvent: (e) => events.push(e.type) });
    const r = await client.fetch(`${mock.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ ...chat.json, stream: true }) });
    equal(r.status, 200, "the stream starts");
    const e = await rejects(r.text(), "a cut stream");
    check(e instanceof Error, "the reader sees an error, not a clean end");
    const a = client.status().keys[0];
    equal([a.streamErrorCount, a.lastError, a.successes], [1, "stream_interrupted", 1], "counted against the key");
    check(events.includes("streamError"), "a streamError event");
  },

  async "redirects are not followed, so keys never reach another origin"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const r = await client.fetch(`${mock.url}/v1/redirect`);
    check(r.status === 302 || r.type === "opaqueredirect", `redirect handed back (${r.status} ${r.type})`);
  },
};

/** Runs every scenario (or only the one named `only`) and reports each result. */
export async function runScenarios(api, mock, only) {
  const results = [];
  for (const [name, run] of Object.entries(scenarios)) {
    if (only && name !== only) continue;
    try {
      await run(api, mock);
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, error: `${e && e.message}\n${e && e.stack}` });
    }
  }
  return results;
}
