// PoolSwitchClient: the JS face of the wasm pool, shared by every runtime's entry point.
// The entry points only load the wasm their own way and call useWasm().

import { fetchSender, runTask, useWire, wirePairs } from "./task.js";
import { refuseBrowserUnlessAllowed } from "./browser-guard.js";
import { PoolEvents } from "./events.js";

let WasmPool;

/** Called once by each entry point with the loaded wasm-bindgen exports. */
export function useWasm(exports) {
  useWire(exports.WasmPool);
  WasmPool = exports.WasmPool;
}

/** Every failure the client reports. Never carries a key value. */
export class PoolSwitchError extends Error {
  constructor(message, fields = {}) {
    super(message);
    this.name = "PoolSwitchError";
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) this[k] = v;
  }
}

function scrub(text, secrets) {
  if (typeof text !== "string") return text;
  for (const s of secrets) if (s && text.includes(s)) text = text.split(s).join("<redacted>");
  return text;
}

// Parsed JSON with every key value scrubbed; undefined when it cannot be written back (a body
// nested too deep for JSON.stringify, which recurses): `text` still carries it.
function scrubData(data, secrets) {
  if (data === undefined) return undefined;
  try {
    return JSON.parse(scrub(JSON.stringify(data), secrets));
  } catch {
    return undefined;
  }
}

function keyValues(keys) {
  if (!Array.isArray(keys)) return [];
  return keys.map((k) => (typeof k === "string" ? k : k && typeof k.value === "string" ? k.value : "")).filter(Boolean);
}

// The wasm side rejects with plain `{ kind, message, … }` objects.
function toError(e, secrets) {
  if (e instanceof PoolSwitchError) return e;
  if (e && typeof e === "object" && typeof e.kind === "string") {
    const { kind, message, ...rest } = e;
    return new PoolSwitchError(scrub(message, secrets), { kind, ...rest });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new PoolSwitchError(scrub(message, secrets), { kind: "invalid_request", cause: e instanceof Error ? e : undefined });
}

function resolveFetch(fetchOption) {
  if (fetchOption === undefined) return (url, init) => globalThis.fetch(url, init);
  if (typeof fetchOption === "function") return (url, init) => fetchOption(url, init);
  // A Workers service binding or any object with a fetch method, called with itself as `this`.
  if (fetchOption && typeof fetchOption.fetch === "function") return (url, init) => fetchOption.fetch(url, init);
  throw new PoolSwitchError("invalid config: fetch must be a function or an object with a fetch method", {
    kind: "invalid_config",
    field: "fetch",
    problem: "must be a function or an object with a fetch method",
  });
}

function flatQuery(query) {
  const out = [];
  if (query === undefined || query === null) return out;
  const entries = query instanceof URLSearchParams ? query.entries() : Object.entries(query);
  for (const [k, v] of entries) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) out.push(String(k), String(item));
  }
  return out;
}

function isOneShot(body) {
  return isStream(body) || (typeof FormData !== "undefined" && body instanceof FormData);
}

function isStream(body) {
  return body && typeof body === "object" && typeof body.getReader === "function";
}

// A request's headers as flat `[name, value, …]` pairs, names lower-cased: from undefined, a
// Headers object, an array of pairs or a plain record. The core validates names and values.
// (A Headers object per request costs more than the whole wrapper in Node.)
function headerPairs(init) {
  const out = [];
  if (init === undefined || init === null) return out;
  const entries = typeof init[Symbol.iterator] === "function" ? init : typeof init === "object" ? Object.entries(init) : null;
  if (!entries) throw new TypeError("headers must be a Headers object, an array of pairs or a record");
  for (const pair of entries) {
    if (!pair || pair.length !== 2) throw new TypeError("each header must be a [name, value] pair");
    out.push(String(pair[0]).toLowerCase(), String(pair[1]).trim());
  }
  return out;
}

function hasHeader(pairs, name) {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return true;
  return false;
}

// Bodies are resent on failover, so one-shot bodies (streams, form data) are read once here.
async function replayableBody(body, headers) {
  if (typeof FormData !== "undefined" && body instanceof FormData) {
    const encoded = new Request("http://localhost/", { method: "POST", body });
    if (!hasHeader(headers, "content-type")) headers.push("content-type", encoded.headers.get("content-type"));
    return new Uint8Array(await encoded.arrayBuffer());
  }
  if (isStream(body)) return new Uint8Array(await new Response(body).arrayBuffer());
  return body;
}

async function readPayload(response) {
  const text = await response.text();
  return { text, data: parseJson(text, response) };
}

// The body as JSON when the response says it is JSON and it parses; undefined otherwise.
function parseJson(text, response) {
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json") || text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Passes a successful streamed body through chunk by chunk, unbuffered, and reports a break
// mid-way (the caller sees the error on its reader; the pool counts it against the key).
// Bodies of declared length (a plain JSON answer) are handed over as they are: the wrapper
// stream costs about as much CPU as the whole pool in Node, and breaks mid-way are what
// streamed (SSE, chunked) answers suffer.
function monitored(response, onBreak, signal) {
  const s = response.status;
  if (!response.body || s < 200 || s > 299 || s === 204 || s === 205) return response;
  if (response.headers.has("content-length")) return response;
  const reader = response.body.getReader();
  const body = new ReadableStream(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (e) {
          if (!(signal && signal.aborted)) onBreak();
          controller.error(e);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  const wrapped = new Response(body, { status: s, statusText: response.statusText, headers: response.headers });
  Object.defineProperty(wrapped, "url", { value: response.url });
  return wrapped;
}

function providerMessage(data) {
  const err = data && (data.error ?? data);
  const msg = err && (typeof err === "string" ? err : err.message);
  return typeof msg === "string" ? msg : undefined;
}

/** An API-key pool over one upstream provider. */
export class PoolSwitchClient {
  #pool;
  #send;
  #secrets;
  #events;
  #listening = false;

  constructor(options) {
    if (!WasmPool) throw new Error("poolswitch-wasm: the wasm module is not loaded (import the package entry point)");
    if (!options || typeof options !== "object" || Array.isArray(options)) {
      throw new PoolSwitchError("invalid config: options must be an object", { kind: "invalid_config", field: "config", problem: "must be an object" });
    }
    const { fetch, onEvent, logger, logLevel, dangerouslyAllowBrowser, ...config } = options;
    const makeError = (message, fields) => new PoolSwitchError(message, fields);
    refuseBrowserUnlessAllowed(dangerouslyAllowBrowser, makeError);
    this.#send = fetchSender(resolveFetch(fetch));
    this.#events = new PoolEvents({ onEvent, logger, logLevel }, makeError);
    this.#secrets = keyValues(config.keys);
    try {
      this.#pool = new WasmPool(config);
    } catch (e) {
      throw toError(e, this.#secrets);
    }
    // Events cross from wasm only once someone listens (they cost an object per event).
    if (onEvent || logLevel === "debug") this.#listen();
    // `fetch` is bound so it can be handed over as it is: new OpenAI({ fetch: client.fetch }).
    this.fetch = this.fetch.bind(this);
  }

  async #dispatch(method, path, opts = {}, monitor = true) {
    if (typeof path !== "string") throw new PoolSwitchError("invalid request: path must be a string", { kind: "invalid_request" });
    let headers;
    let body = opts.body;
    try {
      headers = headerPairs(opts.headers);
      if (opts.json !== undefined) {
        if (body !== undefined) throw new TypeError("json and body cannot both be given");
        body = JSON.stringify(opts.json);
        if (!hasHeader(headers, "content-type")) headers.push("content-type", "application/json");
      }
      if (isOneShot(body)) body = await replayableBody(body, headers);
    } catch (e) {
      throw toError(e, this.#secrets);
    }
    const signal = opts.signal;
    if (signal) signal.throwIfAborted();
    let first;
    const pool = this.#events.forRequest(this.#pool, path);
    try {
      const hasBody = body !== undefined && body !== null;
      first = pool.start(String(method), path, wirePairs(headers), wirePairs(flatQuery(opts.query)), opts.timeoutMs, opts.deadlineMs, hasBody);
    } catch (e) {
      throw toError(e, this.#secrets);
    }
    try {
      const reply = await runTask(pool, first, { send: this.#send, body, signal });
      if (monitor) reply.response = monitored(reply.response, () => this.#streamBroke(reply.keyId, pool), signal);
      return reply;
    } catch (e) {
      if (signal && signal.aborted && e === signal.reason) throw e;
      throw toError(e, this.#secrets);
    }
  }

  #streamBroke(keyId, pool = this.#pool) {
    try {
      pool.recordStreamError(keyId);
    } catch {} // the key may have been removed since
  }

  /**
   * Sends a request through the pool. A 2xx answer resolves to parsed JSON (text otherwise,
   * or the `Response` itself with `stream: true`); anything else rejects with PoolSwitchError.
   */
  async request(method, path, opts = {}) {
    // Parsed answers are read here, so only a handed-over stream needs the monitor.
    const reply = await this.#dispatch(method, path, opts, Boolean(opts.stream));
    const { response } = reply;
    if (response.status >= 200 && response.status < 300) {
      if (opts.stream) return response;
      if (response.status === 204 || method.toUpperCase() === "HEAD") return null;
      let text;
      try {
        text = await response.text();
      } catch (e) {
        if (opts.signal && opts.signal.aborted) throw opts.signal.reason;
        this.#streamBroke(reply.keyId);
        throw new PoolSwitchError(`the response body from key ${reply.keyId} broke off: ${e && e.message}`, { kind: "stream", keyId: reply.keyId, status: response.status, cause: e });
      }
      const data = parseJson(text, response);
      return data !== undefined ? data : text;
    }
    const { text, data } = await readPayload(response);
    const detail = providerMessage(data);
    const message = `upstream answered ${response.status} (${reply.outcome}) on key ${reply.keyId} after ${reply.attempts} attempt${reply.attempts === 1 ? "" : "s"}${detail ? `: ${detail}` : ""}`;
    throw new PoolSwitchError(scrub(message, this.#secrets), {
      kind: "upstream",
      status: response.status,
      reason: reply.outcome,
      keyId: reply.keyId,
      attempts: reply.attempts,
      retryAt: reply.retryAt,
      data: scrubData(data, this.#secrets),
      text: scrub(text, this.#secrets),
      headers: response.headers,
    });
  }

  get(path, opts) {
    return this.request("GET", path, opts);
  }
  post(path, opts) {
    return this.request("POST", path, opts);
  }
  put(path, opts) {
    return this.request("PUT", path, opts);
  }
  patch(path, opts) {
    return this.request("PATCH", path, opts);
  }
  delete(path, opts) {
    return this.request("DELETE", path, opts);
  }

  /**
   * fetch-compatible: resolves to the upstream's own Response (any status, body untouched and
   * streaming), so SDKs that accept a custom fetch run on the pool. When no key can serve, it
   * resolves to a synthesized 429 (or 503) with `retry-after`, which SDKs already handle.
   */
  async fetch(input, init = {}) {
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const url = isRequest ? input.url : input instanceof URL ? input.href : String(input);
    const method = init.method ?? (isRequest ? input.method : "GET");
    const headers = init.headers ?? (isRequest ? input.headers : undefined);
    let body = init.body;
    if (body === undefined && isRequest && input.body) body = await input.arrayBuffer();
    const signal = init.signal ?? (isRequest ? input.signal : undefined);
    try {
      const reply = await this.#dispatch(method, url, { headers, body, signal, timeoutMs: init.timeoutMs, deadlineMs: init.deadlineMs });
      // Which key served it, for logs: a non-enumerable extra on the standard Response.
      Object.defineProperty(reply.response, "poolswitch", { value: { keyId: reply.keyId, attempts: reply.attempts, outcome: reply.outcome } });
      return reply.response;
    } catch (e) {
      if (e instanceof PoolSwitchError && e.kind === "no_healthy_keys") return noKeysResponse(e);
      throw e;
    }
  }

  #listen() {
    if (this.#listening) return;
    this.#listening = true;
    this.#pool.setListener((event) => this.#events.emit(event));
  }

  /** Listens to one event type (`"*"` for all, `"error"` for listener failures). */
  on(type, listener) {
    this.#events.on(type, listener);
    this.#listen();
    return this;
  }
  off(type, listener) {
    this.#events.off(type, listener);
    return this;
  }
  addEventListener(type, listener) {
    this.on(type, listener);
  }
  removeEventListener(type, listener) {
    this.#events.off(type, listener);
  }

  /** Per-key and pool status. Never includes key values. */
  status() {
    return this.#pool.status();
  }

  /** Adds a key (string or `{ id, value, monthlyQuota?, weight?, metadata? }`); returns its id. */
  addKey(key) {
    try {
      const id = this.#pool.addKey(key);
      this.#secrets.push(...keyValues([key]));
      return id;
    } catch (e) {
      throw toError(e, [...this.#secrets, ...keyValues([key])]);
    }
  }

  /** Removes a key; requests in flight on it finish normally. */
  removeKey(id) {
    this.#call(() => this.#pool.removeKey(String(id)));
  }

  /** Puts a key back in rotation (also clears an invalid verdict or cooldown). */
  enableKey(id) {
    this.#call(() => this.#pool.setKeyEnabled(String(id), true));
  }

  /** Takes a key out of rotation. */
  disableKey(id) {
    this.#call(() => this.#pool.setKeyEnabled(String(id), false));
  }

  /** Shareable per-key state (counters, cooldowns, limits), for a store shared by instances. */
  exportState() {
    return this.#pool.exportState();
  }

  /** Replaces per-key state from a snapshot. */
  importState(snapshot) {
    this.#call(() => this.#pool.importState(snapshot));
  }

  /** Merges another instance's snapshot: counters add, cooldowns take the later time. */
  mergeState(snapshot) {
    this.#call(() => this.#pool.mergeState(snapshot));
  }

  #call(f) {
    try {
      return f();
    } catch (e) {
      throw toError(e, this.#secrets);
    }
  }
}

function noKeysResponse(e) {
  const headers = { "content-type": "application/json", "x-poolswitch-error": "no_healthy_keys" };
  if (e.retryAt !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil((e.retryAt - Date.now()) / 1000)));
  const body = JSON.stringify({ error: { message: e.message, type: "no_healthy_keys", retry_at: e.retryAt ?? null } });
  return new Response(body, { status: e.retryAt !== undefined ? 429 : 503, headers });
}
