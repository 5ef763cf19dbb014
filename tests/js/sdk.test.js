// The official SDKs, unmodified, on the pool through `fetch: client.fetch`: plain and streamed
// calls, failover before the stream, a cut stream, and abort reaching the upstream connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { PoolSwitchClient } from "../../pkg/esm/node.js";
import { useMockProvider, freshKeys } from "../support/provider.js";

const mock = useMockProvider();

// Fresh keys a and b: returns the pool client, the key prefix and the provider's log for them.
async function pool(specs, options = {}) {
  const { tag, keys, calls } = await freshKeys(mock.control, "sdk", specs);
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys, strategy: "round_robin", ...options });
  return { client, run: `${tag}-`, calls };
}

// The SDKs' own retries are off, so what happens is the pool's doing.
const openai = (client, headers = {}) => new OpenAI({ apiKey: "pool-replaces-this", baseURL: `${mock.url}/v1`, fetch: client.fetch, maxRetries: 0, defaultHeaders: headers });
const anthropic = (client, headers = {}) => new Anthropic({ apiKey: "pool-replaces-this", baseURL: mock.url, fetch: client.fetch, maxRetries: 0, defaultHeaders: headers });

test("openai: a plain completion fails over on a 429 and comes back parsed", async () => {
  const { client, run, calls } = await pool({ a: { script: ["rate_limit:5000"] }, b: {} });
  const out = await openai(client).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  assert.equal(out.choices[0].message.content, `served by ${run}b`);
  assert.deepEqual((await calls()).map((c) => c.outcome), ["rate_limit", "ok"]);
  assert.equal(client.status().keys[0].state, "cooling");
});

test("openai: a streamed completion arrives chunk by chunk, before the provider sends the last", async () => {
  const { client, run, calls } = await pool({ a: {} });
  // The provider holds its last event until released: a buffering client would not see the first.
  const stream = await openai(client, { "x-mock-hold-end": "1" }).chat.completions.create({ model: "m", messages: [], stream: true });
  let text = "";
  for await (const chunk of stream) {
    if (text === "") {
      const [call] = await calls();
      assert.equal(call.lastChunkAt, undefined, "the first chunk arrived before the provider sent the last");
      await mock.control.releaseHeldEnds();
    }
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, `served by ${run}a`);
});

test("openai: a stream cut mid-way raises in the loop and counts against the key", async () => {
  const { client } = await pool({ a: { script: ["cut"] } });
  const stream = await openai(client).chat.completions.create({ model: "m", messages: [], stream: true });
  await assert.rejects(async () => {
    for await (const _ of stream);
  });
  assert.equal(client.status().keys[0].streamErrorCount, 1);
});

test("openai: aborting mid-stream cancels the upstream request", async () => {
  const { client, calls } = await pool({ a: {} });
  const controller = new AbortController();
  // The provider holds its last event (bounded) until released: only the abort can end this stream early.
  const stream = await openai(client, { "x-mock-hold-end": "1" }).chat.completions.create({ model: "m", messages: [], stream: true }, { signal: controller.signal });
  // The SDK ends its loop quietly on the caller's own abort; what matters is the upstream.
  try {
    for await (const _ of stream) controller.abort();
  } catch (e) {
    assert.equal(e.name, "AbortError");
  }
  // Wait (bounded) for the provider to see its connection end, however loaded the host.
  let call;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    [call] = await calls();
    if (call.closed) break;
  }
  assert.equal(call.aborted, true, "the provider saw the connection closed before the end");
  assert.equal(call.lastChunkAt, undefined, "the provider never sent the last event");
  assert.equal(client.status().keys[0].streamErrorCount, 0, "the caller's abort is not the key's fault");
});

test("anthropic: a plain message fails over on rate_limit_error, the SDK's x-api-key replaced", async () => {
  const { client, run, calls } = await pool({ a: { script: ["anthropic_rate_limit:7"] }, b: {} }, { authHeaderName: "x-api-key", authScheme: null, defaultHeaders: { "anthropic-version": "2023-06-01" } });
  const msg = await anthropic(client).messages.create({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
  assert.equal(msg.content[0].text, `served by ${run}b`);
  assert.deepEqual((await calls()).map((c) => c.outcome), ["anthropic_rate_limit", "ok"]);
  const a = client.status().keys[0];
  assert.equal(a.state, "cooling");
  assert.ok(a.cooldownUntil > Date.now() + 5000);
});

test("anthropic: a streamed message arrives event by event", async () => {
  const { client, run, calls } = await pool({ a: {} }, { authHeaderName: "x-api-key", authScheme: null });
  // The provider holds its last events until released: a buffering client would not see the first text.
  const stream = anthropic(client, { "x-mock-hold-end": "1" }).messages.stream({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
  let sentLastBeforeFirstText;
  stream.once("text", () => {
    calls().then(([call]) => {
      sentLastBeforeFirstText = call.lastChunkAt !== undefined;
      return mock.control.releaseHeldEnds();
    });
  });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, `served by ${run}a`);
  assert.equal(sentLastBeforeFirstText, false, "the first text arrived before the provider sent the last event");
});

test("anthropic: a cut stream rejects and counts against the key", async () => {
  const { client } = await pool({ a: { script: ["cut"] } }, { authHeaderName: "x-api-key", authScheme: null });
  const stream = anthropic(client).messages.stream({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
  await assert.rejects(stream.finalMessage());
  assert.equal(client.status().keys[0].streamErrorCount, 1);
});

// With their own retries on (the default), the SDKs sleep for whatever retry-after says. When
// the only key rests for an hour, the call must fail now; when it returns soon, the SDK's retry
// must get it. (The test timeout is a safety net only: openai's sleep ignores abort signals.)
const withRetries = { openai: (client) => new OpenAI({ apiKey: "x", baseURL: `${mock.url}/v1`, fetch: client.fetch, maxRetries: 2 }), anthropic: (client) => new Anthropic({ apiKey: "x", baseURL: mock.url, fetch: client.fetch, maxRetries: 2 }) };
const ask = {
  openai: (sdk) => sdk.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  anthropic: (sdk) => sdk.messages.create({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
};
const text = { openai: (out) => out.choices[0].message.content, anthropic: (out) => out.content[0].text };

for (const name of ["openai", "anthropic"]) {
  const auth = name === "anthropic" ? { authHeaderName: "x-api-key", authScheme: null } : {};

  test(`${name}: when every key rests longer than the pool waits, the call fails at once instead of sleeping`, { timeout: 60_000 }, async () => {
    const { client, calls } = await pool({ a: { script: [name === "openai" ? "rate_limit:3600000" : "anthropic_rate_limit:3600"] } }, auth);
    const sdk = withRetries[name](client);
    // The upstream's own 429, handed back with the pool's advice.
    await assert.rejects(ask[name](sdk), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.headers.get?.("x-should-retry") ?? e.headers["x-should-retry"], "false");
      return true;
    });
    // The pool's own answer: no key can serve.
    await assert.rejects(ask[name](sdk), (e) => e.status === 429);
    assert.equal((await calls()).length, 1, "the provider was asked once: no SDK retry");
    assert.equal(client.status().keys[0].state, "cooling");
  });

  test(`${name}: when a key returns soon, the SDK waits for it and retries`, { timeout: 60_000 }, async () => {
    const { client, run, calls } = await pool({ a: { script: ["rate_limit:300"] } }, { ...auth, retryAttempts: 0 });
    // The upstream's 429 (the pool does not wait: retryAttempts 0), advised as retryable.
    await assert.rejects(ask[name]((name === "openai" ? openai : anthropic)(client)), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.headers.get?.("x-should-retry") ?? e.headers["x-should-retry"], "true");
      return true;
    });
    // While the key rests, the pool's own answer: the SDK waits as told and its retry is served.
    const out = await ask[name](withRetries[name](client));
    assert.equal(text[name](out), `served by ${run}a`);
    assert.deepEqual((await calls()).map((c) => c.outcome), ["rate_limit", "ok"]);
  });
}
