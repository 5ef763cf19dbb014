// PoolSwitchClient: the JS face of the wasm pool, shared by every runtime's entry point.
// The entry points only load the wasm their own way and call useWasm().

import { runTask, useWire, wirePairs } from "./task.js";
import { fetchTransport } from "./transport/fetch.js";
import { refuseBrowserUnlessAllowed } from "./browser-guard.js";
import { PoolEvents } from "./events.js";

let WasmPool;
let defaultTransport; // the entry's own upstream transport, when it has one (Node: undici)

/** Called once by each entry point with the loaded wasm-bindgen exports. */
export function useWasm(exports) {
  useWire(exports.WasmPool);
  WasmPool = exports.WasmPool;
}

/** Called by the Node entry: `factory(dispatcher?)` makes the transport used when no `fetch` is given. */
export function useTransport(factory) {
  defaultTransport = factory;
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

const JSON_HEADERS = wirePairs(["content-type", "application/json"]);

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
  return { text, data: parseJson(text, response.headers.get("content-type")) };
}

// The body as JSON when the response says it is JSON and it parses; undefined otherwise.
function parseJson(text, contentType) {
  if (!contentType || !contentType.includes("json") || text.length === 0) return undefined;
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

let dispatchRaw; // set by PoolSwitchClient's static block

/**
 * For proxy mode (gateway/forward.js): sends through the pool and resolves to the transport's
 * own response, with no standard Response built: `{ response, keyId, attempts, outcome,
 * broke() }` (`broke` counts a body that broke mid-way against the key). Rejects like `request`.
 */
export function sendThrough(client, method, url, opts) {
  return dispatchRaw(client, method, url, opts);
}

/** An API-key pool over one upstream provider. */
export class PoolSwitchClient {
  #pool;
  #transport;
  #secrets;
  #events;
  #listening = false;

  static {
    dispatchRaw = (client, method, url, opts) =>
      client.#sent(method, url, opts).then((reply) => {
        reply.broke = () => client.#streamBroke(reply.keyId, reply.pool);
        return reply;
      });
  }

  constructor(options) {
    if (!WasmPool) throw new Error("poolswitch-wasm: the wasm module is not loaded (import the package entry point)");
    if (!options || typeof options !== "object" || Array.isArray(options)) {
      throw new PoolSwitchError("invalid config: options must be an object", { kind: "invalid_config", field: "config", problem: "must be an object" });
    }
    const { fetch, dispatcher, onEvent, logger, logLevel, dangerouslyAllowBrowser, ...config } = options;
    const makeError = (message, fields) => new PoolSwitchError(message, fields);
    refuseBrowserUnlessAllowed(dangerouslyAllowBrowser, makeError);
    if (dispatcher !== undefined && (fetch !== undefined || !defaultTransport || !dispatcher || typeof dispatcher.request !== "function")) {
      const problem = fetch !== undefined ? "cannot be given with fetch" : !defaultTransport ? "is for Node only" : "must be an undici Dispatcher";
      throw new PoolSwitchError(`invalid config: dispatcher ${problem}`, { kind: "invalid_config", field: "dispatcher", problem });
    }
    // The caller's fetch when given; else the entry's transport (Node), else the host's fetch.
    this.#transport = fetch === undefined && defaultTransport ? defaultTransport(dispatcher) : fetchTransport(resolveFetch(fetch));
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

  // Sends a request through the pool and calls `done(reply)` with the task's reply (the
  // transport's own response, not yet a Response; `reply.pool` the request's pool view) or
  // `fail(error)`. Nothing here is async unless a one-shot body must be read first: each
  // promise layer costs CPU and garbage per request in Node.
  #send(method, path, opts, done, fail) {
    try {
      if (typeof path !== "string") throw new PoolSwitchError("invalid request: path must be a string", { kind: "invalid_request" });
      const headers = headerPairs(opts.headers);
      let body = opts.body;
      if (opts.json !== undefined) {
        if (body !== undefined) throw new TypeError("json and body cannot both be given");
        body = JSON.stringify(opts.json);
        if (!hasHeader(headers, "content-type")) headers.push("content-type", "application/json");
      }
      if (isOneShot(body)) replayableBody(body, headers).then((replayable) => this.#start(method, path, headers, replayable, opts, done, fail), fail);
      else this.#start(method, path, headers, body, opts, done, fail);
    } catch (e) {
      fail(e);
    }
  }

  #start(method, path, headers, body, opts, done, fail) {
    let first;
    let pool;
    const signal = opts.signal;
    try {
      if (signal) signal.throwIfAborted();
      pool = this.#events.forRequest(this.#pool, path);
      const hasBody = body !== undefined && body !== null;
      // The common call (no caller headers, a JSON body) reuses its header text.
      const headerText = headers.length === 2 && headers[0] === "content-type" && headers[1] === "application/json" ? JSON_HEADERS : wirePairs(headers);
      const queryText = opts.query === undefined || opts.query === null ? "" : wirePairs(flatQuery(opts.query));
      first = pool.start(String(method), path, headerText, queryText, opts.timeoutMs, opts.deadlineMs, hasBody);
    } catch (e) {
      fail(e);
      return;
    }
    runTask(pool, first, { send: this.#transport.send, body, signal }).then((reply) => {
      reply.pool = pool;
      done(reply);
    }, fail);
  }

  #sent(method, path, opts) {
    return new Promise((resolve, reject) => this.#send(method, path, opts, resolve, (e) => reject(this.#failure(e, opts.signal))));
  }

  // What a failed send rejects with: the caller's abort reason as it is, else a PoolSwitchError.
  #failure(e, signal) {
    return signal && signal.aborted && e === signal.reason ? e : toError(e, this.#secrets);
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
  request(method, path, opts = {}) {
    return new Promise((resolve, reject) =>
      this.#send(
        method,
        path,
        opts,
        (reply) => {
          try {
            this.#answer(method, opts, reply, resolve, reject);
          } catch (e) {
            reject(this.#failure(e, opts.signal));
          }
        },
        (e) => reject(this.#failure(e, opts.signal)),
      ),
    );
  }

  #answer(method, opts, reply, resolve, reject) {
    const transport = this.#transport;
    const raw = reply.response;
    const status = raw.status;
    if (status < 200 || status > 299) return this.#upstreamError(reply).then(resolve, reject);
    // Parsed answers are read here, so only a handed-over stream needs the monitor.
    if (opts.stream) return resolve(monitored(transport.toResponse(raw), () => this.#streamBroke(reply.keyId, reply.pool), opts.signal));
    if (status === 204 || (method.length === 4 && method.toUpperCase() === "HEAD")) {
      transport.discard(raw);
      return resolve(null);
    }
    transport.text(raw).then(
      (text) => {
        const data = parseJson(text, transport.header(raw, "content-type"));
        resolve(data !== undefined ? data : text);
      },
      (e) => {
        if (opts.signal && opts.signal.aborted) return reject(opts.signal.reason);
        this.#streamBroke(reply.keyId, reply.pool);
        reject(new PoolSwitchError(`the response body from key ${reply.keyId} broke off: ${e && e.message}`, { kind: "stream", keyId: reply.keyId, status, cause: e }));
      },
    );
  }

  async #upstreamError(reply) {
    const response = this.#transport.toResponse(reply.response);
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
      const reply = await this.#sent(method, url, { headers, body, signal, timeoutMs: init.timeoutMs, deadlineMs: init.deadlineMs });
      reply.response = monitored(this.#transport.toResponse(reply.response), () => this.#streamBroke(reply.keyId, reply.pool), signal);
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

/** The answer `fetch` gives when no key can serve: 429 with retry-after, or 503. */
export function noKeysResponse(e) {
  const headers = { "content-type": "application/json", "x-poolswitch-error": "no_healthy_keys" };
  if (e.retryAt !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil((e.retryAt - Date.now()) / 1000)));
  const body = JSON.stringify({ error: { message: e.message, type: "no_healthy_keys", retry_at: e.retryAt ?? null } });
  return new Response(body, { status: e.retryAt !== undefined ? 429 : 503, headers });
}
