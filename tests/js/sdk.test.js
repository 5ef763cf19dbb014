// The official SDKs, unmodified, on the pool through `fetch: client.fetch`: plain and streamed
// calls, failover before the stream, a cut stream, and abort reaching the upstream connection.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { PoolSwitchClient } from "../../pkg/esm/node.js";
import { mockControl } from "../scenarios/scenarios.js";
import { startMock } from "./mock.js";

let mock;
let control;
let n = 0;
before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
});
after(() => mock.stop());

// Fresh keys a and b: returns the pool client, the key prefix and the provider's log for them.
async function pool(specs, options = {}) {
  const run = `sdk${n++}-`;
  await control.setKeys(Object.fromEntries(Object.entries(specs).map(([id, s]) => [`sk-${run}${id}`, { ...s, id: `${run}${id}` }])));
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: Object.keys(specs).map((id) => ({ id, value: `sk-${run}${id}` })), strategy: "round_robin", ...options });
  const calls = async () => (await control.calls()).filter((c) => c.keyId?.startsWith(run));
  return { client, run, calls };
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
  const stream = await openai(client, { "x-mock-chunk-delay-ms": "150" }).chat.completions.create({ model: "m", messages: [], stream: true });
  let firstAt;
  let text = "";
  for await (const chunk of stream) {
    firstAt ??= Date.now();
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, `served by ${run}a`);
  const [call] = await calls();
  assert.ok(firstAt < call.lastChunkAt, `first chunk at ${firstAt}, last sent at ${call.lastChunkAt}`);
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
  const stream = await openai(client, { "x-mock-chunk-delay-ms": "200" }).chat.completions.create({ model: "m", messages: [], stream: true }, { signal: controller.signal });
  // The SDK ends its loop quietly on the caller's own abort; what matters is the upstream.
  try {
    for await (const _ of stream) controller.abort();
  } catch (e) {
    assert.equal(e.name, "AbortError");
  }
  await new Promise((r) => setTimeout(r, 300));
  const [call] = await calls();
  assert.equal(call.aborted, true, "the provider saw the connection closed before the end");
  assert.ok(call.chunksSent < 3, `the provider stopped after ${call.chunksSent} chunks`);
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
  const stream = anthropic(client, { "x-mock-chunk-delay-ms": "150" }).messages.stream({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
  let firstAt;
  stream.on("text", () => (firstAt ??= Date.now()));
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, `served by ${run}a`);
  const [call] = await calls();
  assert.ok(firstAt < call.lastChunkAt, `first text at ${firstAt}, last sent at ${call.lastChunkAt}`);
});

test("anthropic: a cut stream rejects and counts against the key", async () => {
  const { client } = await pool({ a: { script: ["cut"] } }, { authHeaderName: "x-api-key", authScheme: null });
  const stream = anthropic(client).messages.stream({ model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
  await assert.rejects(stream.finalMessage());
  assert.equal(client.status().keys[0].streamErrorCount, 1);
});
