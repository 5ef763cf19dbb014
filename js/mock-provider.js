#!/usr/bin/env node
// A small OpenAI-shaped provider on 127.0.0.1 for demos, tests and benchmarks: no real keys.
//
// Keys are registered with a behaviour; every call is logged with the key id it used.
//   quota: N          successes before 429 insufficient_quota (advertised in x-ratelimit-* headers)
//   script: [...]     answers for the next calls, one each: ok | rate_limit[:ms] | quota | invalid |
//                     server_error | overloaded | bad_request | too_large | drop | hang | delay:ms | empty
//                     | stall_error[:s] (a 429 with retry-after: s whose body starts and never ends)
//   latencyMs: N      delay before every answer
//   chaos: { seed, weights? }  answers drawn at random, reproducibly by seed (see CHAOS below)
// Control (no auth): POST /__mock/keys {value: spec}, POST /__mock/reset, GET /__mock/calls,
// GET /__mock/counts (calls per key id, for runs too long to keep the call log), POST /__mock/release
// (ends the streams held by `x-mock-hold-end: 1`, which wait before their last event; at most HOLD_END_MS).
// CLI: node mock-provider.js [--port N] [--keys JSON]  → prints "READY http://127.0.0.1:PORT".
import http from "node:http";
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";

const json = (res, status, body, headers = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
};

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD",
  "access-control-allow-headers": "*",
  "access-control-expose-headers": "*",
};

function keyOf(req, url) {
  const auth = req.headers["authorization"];
  if (auth && auth.startsWith("Bearer ")) return auth.slice(7);
  return req.headers["x-api-key"] || req.headers["x-goog-api-key"] || url.searchParams.get("key") || auth || null;
}

const ERRORS = {
  rate_limit: [429, { error: { message: "Rate limit reached for requests per min (RPM). Please try again in 1s.", type: "requests", param: null, code: "rate_limit_exceeded" } }],
  quota: [429, { error: { message: "You exceeded your current quota, please check your plan and billing details.", type: "insufficient_quota", param: null, code: "insufficient_quota" } }],
  invalid: [401, { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } }],
  server_error: [500, { error: { message: "The server had an error while processing your request.", type: "server_error" } }],
  overloaded: [529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }],
  bad_request: [400, { error: { message: "'messages' is a required property", type: "invalid_request_error", param: null, code: null } }],
  too_large: [429, { error: { message: "Request too large for gpt-4o-mini on tokens per min (TPM): Limit 10000, Requested 20000.", type: "tokens", code: "rate_limit_exceeded" } }],
};

// Chaos mode: what a key answers, drawn per call with these weights (a key's `chaos.weights`
// replaces them). The stalls never end on their own: the client's timeouts must end them.
export const CHAOS = {
  ok: 50, // 200 (streamed when the request asks for a stream)
  rate_limit: 10, // 429 with a short retry-after-ms
  invalid: 1, // 401: the key is dead for the pool from then on
  server_error: 6, // 500
  overloaded: 4, // 529
  reset: 6, // connection closed before any answer
  stall_headers: 4, // no answer at all
  stall_error_body: 4, // 500 headers, then the body stops mid-way
  cut: 5, // 200 whose body breaks off mid-way
};

// mulberry32: small, seedable, good enough to pick answers.
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function chaosPicker({ seed = 1, weights = CHAOS }, id) {
  let h = seed >>> 0;
  for (const c of id) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const random = seededRandom(h);
  const entries = Object.entries(weights).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  return () => {
    let r = random() * total;
    for (const [kind, w] of entries) if ((r -= w) < 0) return kind === "rate_limit" ? `rate_limit:${20 + Math.floor(random() * 180)}` : kind;
    return "ok";
  };
}

/** Creates the provider; `await provider.listen()` resolves to its base URL. */
export function createMockProvider({ keys = {}, latencyMs = 0 } = {}) {
  let registry = new Map();
  let calls = [];
  let counts = new Map();
  const setKeys = (specs) => {
    for (const [value, spec] of Object.entries(specs)) {
      const id = spec.id ?? value.slice(0, 8);
      registry.set(value, { id, quota: spec.quota, used: 0, script: [...(spec.script ?? [])], latencyMs: spec.latencyMs ?? 0, chaos: spec.chaos ? chaosPicker(spec.chaos, id) : undefined });
    }
  };
  setKeys(keys);

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
    // `*` does not cover Authorization in a preflight: name what the browser asks for.
    if (req.headers["access-control-request-headers"]) res.setHeader("access-control-allow-headers", req.headers["access-control-request-headers"]);
    if (req.method === "OPTIONS") return res.writeHead(204).end();
    // A call is logged as soon as its headers are in, so the log counts every request that
    // reached the provider, even one whose client goes away before its body is read.
    const value = url.pathname.startsWith("/__mock/") ? undefined : keyOf(req, url);
    const key = value && registry.get(value);
    const call = value === undefined ? undefined : { keyId: key ? key.id : null, method: req.method, path: url.pathname, at: Date.now(), outcome: "" };
    if (call) {
      calls.push(call);
      counts.set(call.keyId, (counts.get(call.keyId) ?? 0) + 1);
    }
    const chunks = [];
    try {
      for await (const c of req) chunks.push(c);
    } catch {
      if (call) call.outcome = "client_gone";
      return; // the client went away mid-body: nobody to answer
    }
    const body = Buffer.concat(chunks).toString("utf8");

    if (!call) {
      if (url.pathname === "/__mock/keys" && req.method === "POST") {
        setKeys(JSON.parse(body || "{}"));
        return json(res, 200, { keys: registry.size });
      }
      if (url.pathname === "/__mock/reset" && req.method === "POST") {
        registry = new Map();
        calls = [];
        counts = new Map();
        return json(res, 200, { reset: true });
      }
      if (url.pathname === "/__mock/calls") return json(res, 200, calls);
      if (url.pathname === "/__mock/counts") return json(res, 200, Object.fromEntries(counts));
      if (url.pathname === "/__mock/release" && req.method === "POST") {
        const released = heldEnds.size;
        for (const release of [...heldEnds]) release();
        return json(res, 200, { released });
      }
      return json(res, 404, { error: "unknown control path" });
    }

    if (!key) {
      call.outcome = "invalid";
      return json(res, ...ERRORS.invalid);
    }
    const wait = (key.latencyMs || latencyMs);
    if (wait) await new Promise((r) => setTimeout(r, wait));

    let step = key.script.length ? key.script.shift() : key.chaos ? key.chaos() : "ok";
    const [kind, arg] = step.split(":");
    call.outcome = kind;
    if (kind === "delay") await new Promise((r) => setTimeout(r, Number(arg)));
    if (kind === "hang" || kind === "stall_headers") {
      req.socket.on("close", () => (call.closed = true));
      return;
    }
    if (kind === "drop" || kind === "reset") return req.socket.destroy();
    if (kind === "stall_error_body") {
      res.writeHead(500, { "content-type": "application/json" });
      res.write('{"error": {"message": "The server had an err');
      req.socket.on("close", () => (call.closed = true));
      return;
    }
    if (kind === "stall_error") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": String(arg ?? 1) });
      res.write('{"error":{"message":"Rate limit reached');
      req.socket.on("close", () => (call.closed = true));
      return;
    }
    if (kind === "anthropic_rate_limit") return json(res, 429, { type: "error", error: { type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit" } }, { "retry-after": String(arg ?? 1) });
    if (kind === "rate_limit") return json(res, ...ERRORS.rate_limit, { "retry-after-ms": String(arg ?? 1000) });
    if (ERRORS[kind]) return json(res, ...ERRORS[kind]);

    if (key.quota !== undefined && key.used >= key.quota) {
      call.outcome = "quota";
      return json(res, ...ERRORS.quota);
    }
    key.used += 1;
    const headers = {};
    if (key.quota !== undefined) {
      headers["x-ratelimit-limit-requests"] = String(key.quota);
      headers["x-ratelimit-remaining-requests"] = String(key.quota - key.used);
      headers["x-ratelimit-reset-requests"] = "1h0m0s";
    }
    if (kind === "empty") {
      headers["x-ratelimit-remaining-requests"] = "0";
      headers["x-ratelimit-reset-requests"] = "30s";
    }
    call.outcome = "ok";
    if (kind === "cut" && !isStreamRequest(body)) return cutAnswer(res, call);
    return answer(req, res, url, body, key, headers, call, kind);
  });

  return {
    server,
    setKeys,
    calls: () => calls,
    async listen(port = 0) {
      await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
      // Idle kept-alive connections are never closed from this side: when a server closes one
      // just as the client reuses it, the client's request fails (a race on every host's
      // fetch). The client's own idle timeout closes them instead.
      server.keepAliveTimeout = 0;
      return `http://127.0.0.1:${server.address().port}`;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

function isStreamRequest(body) {
  try {
    return JSON.parse(body).stream === true;
  } catch {
    return false;
  }
}

// A 200 of declared length whose connection closes half-way through the body.
function cutAnswer(res, call) {
  const text = JSON.stringify({ object: "list", data: [{ id: "mock-model", object: "model" }] });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.write(text.slice(0, 10));
  call.cut = true;
  setImmediate(() => res.socket?.destroy());
}

// Streams asked to hold their end (`x-mock-hold-end: 1`) wait here until POST /__mock/release, so a
// test can check that the first event reached it while the provider had not sent the last, without
// comparing clocks. The bound keeps a client that buffers the whole stream from hanging its test.
const HOLD_END_MS = 20_000;
const heldEnds = new Set();

// Starts a server-sent-event answer. `x-mock-chunk-delay-ms` spaces the events; the call log
// records whether the client went away before the end.
function openEventStream(req, res, key, headers, call) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers });
  res.flushHeaders();
  const stream = { delay: Number(req.headers["x-mock-chunk-delay-ms"] ?? 0), words: `served by ${key.id}`.split(" "), closed: false };
  res.on("close", () => {
    stream.closed = call.closed = true;
    call.aborted = !res.writableFinished;
  });
  stream.pause = () => (stream.delay ? new Promise((r) => setTimeout(r, stream.delay)) : undefined);
  stream.holdEnd = () => {
    if (req.headers["x-mock-hold-end"] !== "1" || stream.closed) return undefined;
    return new Promise((resolve) => {
      const release = () => {
        heldEnds.delete(release);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(release, HOLD_END_MS);
      heldEnds.add(release);
      res.on("close", release);
    });
  };
  return stream;
}

// OpenAI's chat-completion chunk format; a `cut` script step ends the connection after two
// chunks, without [DONE].
async function streamChat(req, res, model, key, headers, call, cut) {
  const stream = openEventStream(req, res, key, headers, call);
  const words = stream.words;
  const id = `chatcmpl-${Date.now()}`;
  for (let i = 0; i < words.length; i++) {
    if (i > 0) await stream.pause();
    if (stream.closed) return;
    if (cut && i === 2) return res.socket.destroy();
    const chunk = { id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content: words[i] } : { content: ` ${words[i]}` }, finish_reason: null }] };
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    call.chunksSent = i + 1;
  }
  await stream.pause();
  await stream.holdEnd();
  if (stream.closed) return;
  res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
  call.lastChunkAt = Date.now();
  res.end("data: [DONE]\n\n");
}

// Anthropic's Messages event format (message_start … message_stop).
async function streamMessages(req, res, model, key, headers, call, cut) {
  const stream = openEventStream(req, res, key, headers, call);
  const words = stream.words;
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  const id = `msg_${Date.now()}`;
  send("message_start", { message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } });
  send("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  for (let i = 0; i < words.length; i++) {
    await stream.pause();
    if (stream.closed) return;
    if (cut && i === 2) return res.socket.destroy();
    send("content_block_delta", { index: 0, delta: { type: "text_delta", text: i === 0 ? words[i] : ` ${words[i]}` } });
    call.chunksSent = i + 1;
  }
  await stream.holdEnd();
  if (stream.closed) return;
  send("content_block_stop", { index: 0 });
  send("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: words.length } });
  call.lastChunkAt = Date.now();
  send("message_stop", {});
  res.end();
}

function answer(req, res, url, body, key, headers, call, step) {
  if (url.pathname === "/v1/messages" && req.method === "POST") {
    let parsed = {};
    try {
      parsed = JSON.parse(body);
    } catch {}
    const model = parsed.model ?? "mock-model";
    if (parsed.stream) return streamMessages(req, res, model, key, headers, call, step === "cut");
    return json(res, 200, {
      id: `msg_${Date.now()}`,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text: `served by ${key.id}` }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 5, output_tokens: 3 },
    }, headers);
  }
  if (url.pathname === "/v1/chat/completions" && req.method === "POST") {
    let model = "mock-model";
    let parsed = {};
    try {
      parsed = JSON.parse(body);
      model = parsed.model ?? model;
    } catch {}
    if (parsed.stream) return streamChat(req, res, model, key, headers, call, step === "cut");
    return json(res, 200, {
      id: `chatcmpl-${Date.now()}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: "assistant", content: `served by ${key.id}` }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    }, headers);
  }
  if (url.pathname === "/v1/models") return json(res, 200, { object: "list", data: [{ id: "mock-model", object: "model" }] }, headers);
  if (url.pathname === "/v1/echo") {
    // The echo never repeats the key it was called with.
    const { authorization, "x-api-key": xk, ...rest } = req.headers;
    const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== "key"));
    return json(res, 200, { keyId: key.id, method: req.method, path: url.pathname, query, headers: rest, body }, headers);
  }
  if (url.pathname === "/v1/text") {
    res.writeHead(200, { "content-type": "text/plain", ...headers });
    return res.end(`plain text from ${key.id}`);
  }
  if (url.pathname === "/v1/redirect") {
    res.writeHead(302, { location: "http://127.0.0.2:9/stolen", ...headers });
    return res.end();
  }
  return json(res, 404, { error: { message: `no route ${url.pathname}`, type: "invalid_request_error" } }, headers);
}

// CLI. npx and npm bins call it through a symlink, hence realpath. (No top-level await: the
// package also ships this file bundled as CommonJS.)
function isMain() {
  try {
    return Boolean(import.meta.url) && import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? "")).href;
  } catch {
    return false;
  }
}
if (isMain()) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const provider = createMockProvider({ keys: JSON.parse(arg("--keys") ?? "{}"), latencyMs: Number(arg("--latency-ms") ?? 0) });
  provider.listen(Number(arg("--port") ?? 0)).then((url) => console.log(`READY ${url}`));
  const stop = () => provider.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
