// PoolSwitchClient: the JS face of the wasm pool, shared by every runtime's entry point.
// The entry points only load the wasm their own way and call useWasm().

import { runTask, useWire, wirePairs } from "./task.js";
import { BodyStalled, fetchTransport, readText } from "./transport/fetch.js";
import { requestOptionsProblem, toAbortSignal, unknownFieldProblem } from "./options.js";
import { refuseBrowserUnlessAllowed } from "./browser-guard.js";
import { PoolEvents } from "./events.js";
import { resolveStore } from "./store/index.js";
import { SharedState } from "./store/sync.js";

let WasmPool;
let defaultTransport; // the entry's own upstream transport, when it has one (Node: undici)
// wasm-bindgen's `__wbg_reset_state`: replaces the wasm instance by a fresh one of the same
// module. A trap (a Rust panic is `unreachable`) leaves the instance's stack and borrows in
// whatever state the trap found them, so a trapped instance is never called again.
let resetWasm;
// Bumped on each reset. A pool built on an older instance is rebuilt before its next use.
let generation = 0;

/** Called by the Node entry: `factory(dispatcher?)` makes the transport used when no `fetch` is given. */
export function useTransport(factory) {
  defaultTransport = factory;
}

/** Called once by each entry point with the loaded wasm-bindgen exports. */
export function useWasm(exports) {
  useWire(exports.WasmPool);
  WasmPool = exports.WasmPool;
  resetWasm = exports.__wbg_reset_state;
}

/** Every failure the client reports. Never carries a key value. */
export class PoolSwitchError extends Error {
  constructor(message, fields = {}) {
    const { cause, ...rest } = fields;
    // The standard `cause` (non-enumerable, shown by util.inspect and consoles).
    super(message, cause === undefined ? undefined : { cause });
    this.name = "PoolSwitchError";
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) this[k] = v;
  }
}

// Key values in `text` replaced, where they stand as a whole token: a short key ("k") must
// not turn "known" into "<redacted>nown".
function scrub(text, secrets) {
  if (typeof text !== "string") return text;
  for (const s of secrets) {
    if (!s || !text.includes(s)) continue;
    const escaped = s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    text = text.replace(new RegExp(`(?<![A-Za-z0-9_-])${escaped}(?![A-Za-z0-9_-])`, "g"), "<redacted>");
  }
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

function invalidRequest(problem, field) {
  return new PoolSwitchError(`invalid request: ${field ? `${field} ` : ""}${problem}`, { kind: "invalid_request", field, problem });
}

function invalidConfig(field, problem) {
  return new PoolSwitchError(`invalid config: ${field} ${problem}`, { kind: "invalid_config", field, problem });
}

// A trap of the wasm instance: its state can no longer be trusted. V8 reports a wasm stack
// overflow as a RangeError.
function isTrap(e) {
  return (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError) || (e instanceof RangeError && /call stack/i.test(e.message));
}

// A host error kept as `cause`, unless something in it (a custom fetch's message with the URL,
// say) holds a key value: then a copy with the values redacted.
function safeCause(e, secrets, depth = 0) {
  if (!(e instanceof Error) || depth > 4) return e;
  const inner = safeCause(e.cause, secrets, depth + 1);
  const leaks = (t) => typeof t === "string" && t !== scrub(t, secrets);
  if (!leaks(e.message) && !leaks(e.stack) && inner === e.cause) return e;
  const copy = new Error(scrub(e.message, secrets), inner === undefined ? undefined : { cause: inner });
  copy.name = e.name;
  copy.stack = scrub(e.stack, secrets);
  if (e.code !== undefined) copy.code = e.code;
  return copy;
}

// The wasm side rejects with plain `{ kind, message, … }` objects.
function toError(e, secrets) {
  if (e instanceof PoolSwitchError) return e;
  if (e && typeof e === "object" && typeof e.kind === "string") {
    const { kind, message, ...rest } = e;
    if (kind === "invalid_config" && typeof rest.field === "string" && typeof rest.problem === "string") {
      const unknown = unknownFieldProblem(rest.field, rest.problem);
      if (unknown) return invalidConfig(unknown.field, unknown.problem);
    }
    return new PoolSwitchError(scrub(message, secrets), { kind, ...rest });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new PoolSwitchError(scrub(message, secrets), { kind: "invalid_request", cause: safeCause(e, secrets) });
}

function resolveFetch(fetchOption) {
  if (fetchOption === undefined) return (url, init) => globalThis.fetch(url, init);
  if (typeof fetchOption === "function") return (url, init) => fetchOption(url, init);
  // A Workers service binding or any object with a fetch method, called with itself as `this`.
  if (fetchOption && typeof fetchOption.fetch === "function") return (url, init) => fetchOption.fetch(url, init);
  throw invalidConfig("fetch", "must be a function or an object with a fetch method");
}

function flatQuery(query) {
  const out = [];
  if (query === undefined || query === null) return out;
  if (typeof query !== "object") throw invalidRequest("must be an object or URLSearchParams", "query");
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
  const entries = typeof init[Symbol.iterator] === "function" && typeof init !== "string" ? init : typeof init === "object" ? Object.entries(init) : null;
  if (!entries) throw invalidRequest("must be a Headers object, an array of pairs or a record", "headers");
  for (const pair of entries) {
    if (!pair || typeof pair === "string" || pair.length !== 2) throw invalidRequest("must be [name, value] pairs", "headers");
    out.push(String(pair[0]).toLowerCase(), String(pair[1]).trim());
  }
  return out;
}

// The caller's header pairs on the wire. A call with no headers of its own, and a JSON call
// with none, cross with constants.
const NO_HEADERS = Object.freeze([]);
const JSON_PAIRS = Object.freeze(["content-type", "application/json"]);
const JSON_HEADERS = wirePairs(JSON_PAIRS);
function wireHeaders(pairs) {
  return pairs === JSON_PAIRS ? JSON_HEADERS : wirePairs(pairs);
}

function wireQuery(query) {
  return query === undefined || query === null ? undefined : wirePairs(flatQuery(query));
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

// An error answer's body, as a standard Response (the caller gets its headers too).
async function readPayload(response, ms) {
  let text;
  try {
    text = await readText(response, ms);
  } catch (e) {
    // The status is what the caller is told; the body did not come.
    return { text: "", data: undefined, bodyProblem: e instanceof BodyStalled ? e.message : `its body broke off (${e && e.message})` };
  }
  return { text, data: parseJson(text, response.headers.get("content-type")) };
}

// The body as JSON when the response says it is JSON and it parses; undefined otherwise.
function parseJson(text, contentType) {
  const type = contentType || "";
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
  Object.defineProperty(wrapped, "url", { value: response.url, configurable: true });
  return wrapped;
}

// `url` without the query parameter that carried the key ("" when it cannot be parsed).
function withoutParam(url, param) {
  if (!url || !url.includes(`${param}=`)) return url;
  try {
    const u = new URL(url);
    u.searchParams.delete(param);
    return u.href;
  } catch {
    return "";
  }
}

// A Response's `url` (and its clones') as the caller may see it: with `queryAuthParam` the
// provider's URL carries the key.
function hideUrl(response, param) {
  const url = withoutParam(response.url, param);
  if (url === response.url) return response;
  const clone = response.clone;
  Object.defineProperty(response, "url", { value: url, configurable: true });
  Object.defineProperty(response, "clone", { value: () => hideUrl(clone.call(response), param), configurable: true });
  return response;
}

function providerMessage(data) {
  const err = data && (data.error ?? data);
  const msg = err && (typeof err === "string" ? err : err.message);
  return typeof msg === "string" ? msg : undefined;
}

const NUMBER_OPTIONS = ["timeoutMs", "deadlineMs", "retryAttempts"];

// One request's options, checked: an object of known names, a usable signal, and no body on a
// method that cannot carry one (the host's fetch would throw, and the pool book it on a key).
function checkedOptions(method, opts) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts)) throw invalidRequest("must be an object", "options");
  const unknown = requestOptionsProblem(opts);
  if (unknown) throw invalidRequest(unknown.problem, unknown.field);
  if (opts.json !== undefined && opts.body !== undefined && opts.body !== null) throw invalidRequest("json and body cannot both be given");
  const hasBody = opts.json !== undefined || (opts.body !== undefined && opts.body !== null);
  if (hasBody && (method === "GET" || method === "HEAD")) throw invalidRequest(`a ${method} request cannot have a body`, opts.json !== undefined ? "json" : "body");
  for (const name of NUMBER_OPTIONS) {
    if (opts[name] !== undefined && (typeof opts[name] !== "number" || !Number.isFinite(opts[name]))) throw invalidRequest("must be a finite number", name);
  }
  return opts;
}

// Core options the wrapper reads too.
function configValue(config, camel, snake) {
  return config[camel] !== undefined ? config[camel] : config[snake];
}

let dispatchRaw; // set by PoolSwitchClient's static block
let streamBrokeRaw;
let callError; // likewise: a call's rejection as its caller sees it
let callAnswer; // and request()'s reading of an answer

// What the request driver (task.js) holds of one call besides the pool: how to send, the body,
// the signal, the host's error of a failed attempt, and how its rejection is worded. A class,
// not a closure: the driver calls `error` only when the call fails.
class CallContext {
  constructor(client, transport, body, signal, builtOn, method, opts, started) {
    this.client = client;
    this.transport = transport;
    this.body = body;
    this.signal = signal;
    this.builtOn = builtOn;
    this.failure = undefined;
    // request() with no stream: the call's answer is read and settled here (see #answer),
    // with no promise layer of request()'s own; `started` is its start time, else undefined.
    this.method = method;
    this.opts = opts;
    this.started = started;
  }

  error(e) {
    return callError(this.client, e, this);
  }

  answer(reply, resolve, reject) {
    callAnswer(this.client, reply, this, resolve, reject);
  }
}

/**
 * For proxy mode (gateway/forward.js): sends through the pool and resolves to the transport's
 * own response, with no standard Response built: `{ response, keyId, attempts, outcome }`.
 * Rejects like `request`.
 */
export function sendThrough(client, method, url, opts) {
  return dispatchRaw(client, method, url, opts);
}

/** For proxy mode: counts against its key a `sendThrough` reply whose body broke mid-way. */
export function streamBroke(client, reply) {
  streamBrokeRaw(client, reply);
}

/** An API-key pool over one upstream provider. */
export class PoolSwitchClient {
  // Every client, so a reset of the shared wasm instance can save each one's state first.
  static #clients = new Set();

  static {
    callError = (client, e, ctx) => client.#callError(e, ctx);
    callAnswer = (client, reply, ctx, resolve, reject) => client.#answer(reply, ctx, resolve, reject);
    // #dispatch throws a request refused before anything is sent: a rejection here, as from request().
    dispatchRaw = (client, method, url, opts) => {
      try {
        return client.#dispatch(method, url, opts);
      } catch (e) {
        return Promise.reject(e);
      }
    };
    streamBrokeRaw = (client, reply) => client.#streamBroke(reply.keyId, reply.pool);
  }
  static #pruneAt = 64;

  #pool;
  #generation;
  #transport;
  #secrets;
  #config; // what the core was built from, to rebuild it after a trap
  #changes = []; // addKey/removeKey/enable/disable since, replayed on a rebuild
  #saved; // state exported just before a reset, imported into the rebuilt pool
  #events;
  #listening = false;
  #shared = null;
  #authParam;
  #maxWaitMs;
  #requestTimeoutMs;
  #deadlineMs;

  constructor(options) {
    if (!WasmPool) throw new Error("poolswitch-wasm: the wasm module is not loaded (import the package entry point)");
    if (!options || typeof options !== "object" || Array.isArray(options)) throw invalidConfig("config", "must be an object");
    // `store_options`: the spelling of a proxy config file.
    const { fetch, dispatcher, onEvent, logger, logLevel, dangerouslyAllowBrowser, store, namespace, storeOptions: camel, store_options: snake, ...config } = options;
    const storeOptions = camel ?? snake;
    const makeError = (message, fields) => new PoolSwitchError(message, fields);
    refuseBrowserUnlessAllowed(dangerouslyAllowBrowser, makeError);
    if (dispatcher !== undefined && (fetch !== undefined || !defaultTransport || !dispatcher || typeof dispatcher.request !== "function")) {
      throw invalidConfig("dispatcher", fetch !== undefined ? "cannot be given with fetch" : !defaultTransport ? "is for Node only" : "must be an undici Dispatcher");
    }
    // The caller's fetch when given; else the entry's transport (Node: undici), else the host's fetch.
    this.#transport = fetch === undefined && defaultTransport ? defaultTransport(dispatcher) : fetchTransport(resolveFetch(fetch));
    this.#events = new PoolEvents({ onEvent, logger, logLevel }, makeError);
    this.#secrets = keyValues(config.keys);
    this.#authParam = configValue(config, "queryAuthParam", "query_auth_param");
    // The core's default, for the advice client.fetch gives when no key is free.
    this.#maxWaitMs = configValue(config, "maxWaitMs", "max_wait_ms") ?? 30_000;
    this.#requestTimeoutMs = configValue(config, "requestTimeoutMs", "request_timeout_ms");
    this.#deadlineMs = configValue(config, "deadlineMs", "deadline_ms");
    try {
      this.#config = structuredClone(config);
    } catch {
      this.#config = config; // not cloneable: the core will say what it refuses
    }
    this.#pool = this.#build();
    this.#generation = generation;
    let adapter;
    try {
      adapter = resolveStore(store, namespace, storeOptions);
    } catch (e) {
      if (!e || typeof e.field !== "string") throw e;
      throw invalidConfig(e.field, e.problem);
    }
    if (adapter) {
      // The pool as the store's exchange sees it: always the live one (rebuilt after a trap).
      const pool = {
        exportState: () => this.#live().exportState(),
        importState: (s) => this.#live().importState(s),
        mergeState: (s) => this.#live().mergeState(s),
      };
      this.#shared = new SharedState(pool, adapter, namespace ?? "default", storeOptions, storeWarning, (e) => this.#events.emit(e));
      this.#shared.start();
    }
    // Events cross from wasm only once someone listens (they cost an object per event); a
    // shared store listens for the rests it must send at once.
    if (adapter || onEvent || logLevel === "debug") this.#listen();
    // Without WeakRef (some embedders), a reset rebuilds other clients from their config alone.
    if (typeof WeakRef === "function") PoolSwitchClient.#register(this);
    // `fetch` is bound so it can be handed over as it is: new OpenAI({ fetch: client.fetch }).
    this.fetch = this.fetch.bind(this);
  }

  #build() {
    let pool;
    try {
      pool = new WasmPool(this.#config);
    } catch (e) {
      throw this.#error(e, generation);
    }
    for (const [change, arg, flag] of this.#changes) {
      try {
        if (change === "add") pool.addKey(arg);
        else if (change === "remove") pool.removeKey(arg);
        else pool.setKeyEnabled(arg, flag);
      } catch {} // it failed the first time too
    }
    if (this.#saved !== undefined) {
      try {
        pool.importState(this.#saved);
      } catch {}
      this.#saved = undefined;
    }
    if (this.#listening) pool.setListener(this.#onPoolEvent);
    return pool;
  }

  // The pool, rebuilt first if the wasm instance was reset since it was built.
  #live() {
    if (this.#generation !== generation) {
      this.#pool = this.#build();
      this.#generation = generation;
    }
    return this.#pool;
  }

  static #register(client) {
    const clients = PoolSwitchClient.#clients;
    // Clients made and dropped one per request must not pile up: collected ones are pruned
    // whenever the set has doubled since the last pruning.
    if (clients.size >= PoolSwitchClient.#pruneAt) {
      for (const ref of clients) if (!ref.deref()) clients.delete(ref);
      PoolSwitchClient.#pruneAt = 2 * clients.size + 64;
    }
    clients.add(new WeakRef(client));
  }

  // After a trap: saves what every client's pool can still export, then replaces the instance.
  static #recover() {
    for (const ref of PoolSwitchClient.#clients) {
      const client = ref.deref();
      if (!client) PoolSwitchClient.#clients.delete(ref);
      else if (client.#generation === generation) {
        const old = client.#pool;
        try {
          client.#saved = old.exportState();
        } catch {} // the trapped pool itself may not answer: it restarts from its config
        // Calls in flight on the old pool end at their next report to it (a stale-object error,
        // reported as internal); an abort meanwhile cancels a task that is gone already, and
        // must not throw from the signal's listener.
        old.cancel = () => {};
      }
    }
    try {
      resetWasm();
    } catch {
      // Could not instantiate again (a host that forbids synchronous instantiation, say): the
      // pools are rebuilt in the old instance, which is still better than a stuck pool.
    }
    generation++;
  }

  // Any failure of a call into the pool, as a PoolSwitchError. A trap resets the instance; a
  // call caught in flight by a reset (its pool is gone) is an internal error too.
  #error(e, builtOn = this.#generation) {
    if (isTrap(e)) {
      if (resetWasm && builtOn === generation) PoolSwitchClient.#recover();
      return new PoolSwitchError(`internal error in the pool (${e.message}); the wasm module was restarted for later calls`, { kind: "internal", cause: e });
    }
    if (builtOn !== generation && !(e && typeof e === "object" && typeof e.kind === "string")) {
      return new PoolSwitchError("internal error: the pool's wasm module was restarted after a fault in another call while this one was in flight", { kind: "internal", cause: e });
    }
    return toError(e, this.#secrets);
  }

  // Sends through the pool; the reply's `response` is the transport's own (undici's reply in
  // Node), `pool` the request's pool view. See #respond for a standard Response. Throws (not
  // rejects) for a request refused before anything is sent; callers are async.
  #dispatch(method, path, opts, started) {
    if (typeof method !== "string") throw invalidRequest("must be a string", "method");
    if (typeof path !== "string") throw invalidRequest("must be a string", "path");
    const upper = method.toUpperCase();
    opts = checkedOptions(upper, opts);
    let headers;
    let body = opts.body;
    let signal;
    try {
      signal = toAbortSignal(opts.signal);
      headers = opts.headers === undefined || opts.headers === null ? NO_HEADERS : headerPairs(opts.headers);
      if (opts.json !== undefined) {
        body = JSON.stringify(opts.json);
        if (headers === NO_HEADERS) headers = JSON_PAIRS;
        else if (!hasHeader(headers, "content-type")) headers.push("content-type", "application/json");
      }
      if (isOneShot(body)) {
        headers = [...headers]; // replayableBody may add the form's content type
        return replayableBody(body, headers).then(
          (bytes) => this.#run(method, path, opts, headers, bytes, signal, started),
          (e) => {
            throw this.#refused(e);
          },
        );
      }
    } catch (e) {
      throw this.#refused(e);
    }
    return this.#run(method, path, opts, headers, body, signal, started);
  }

  // A request's options that could not be read (headers, signal, body) as the error it is refused with.
  #refused(e) {
    return e instanceof PoolSwitchError ? e : invalidRequest(scrub(e.message, this.#secrets));
  }

  #run(method, path, opts, headers, body, signal, started) {
    if (signal) signal.throwIfAborted();
    let first;
    let pool;
    try {
      pool = this.#events.forRequest(this.#live(), path);
      const hasBody = body !== undefined && body !== null;
      first = pool.start(method, path, wireHeaders(headers), wireQuery(opts.query), opts.timeoutMs, opts.deadlineMs, opts.retryAttempts, hasBody);
    } catch (e) {
      throw this.#error(e);
    }
    return runTask(pool, first, new CallContext(this, this.#transport, body, signal, this.#generation, method, opts, started));
  }

  // A call's rejection as the caller sees it: the signal's own reason for an abort, else a
  // PoolSwitchError with the host's error of a failed attempt as its `cause`.
  #callError(e, ctx) {
    const signal = ctx.signal;
    if (signal && signal.aborted && e === signal.reason) return e;
    const error = this.#error(e, ctx.builtOn);
    if ((error.kind === "network" || error.kind === "timeout") && ctx.failure !== undefined) {
      Object.defineProperty(error, "cause", { value: safeCause(ctx.failure, this.#secrets), writable: true, configurable: true });
    }
    return error;
  }

  // The reply's answer as a standard Response: a break in a streamed body counted against the
  // key when `monitor`, and no key in its URL.
  #respond(reply, monitor, signal) {
    let response = this.#transport.toResponse(reply.response);
    if (monitor) response = monitored(response, () => this.#streamBroke(reply.keyId, reply.pool), signal);
    if (this.#authParam) hideUrl(response, this.#authParam);
    return response;
  }

  #streamBroke(keyId, pool = this.#live()) {
    try {
      pool.recordStreamError(keyId);
    } catch {} // the key may have been removed since
  }

  /**
   * Sends a request through the pool. A 2xx answer resolves to parsed JSON (text otherwise,
   * or the `Response` itself with `stream: true`); anything else rejects with PoolSwitchError.
   */
  request(method, path, opts) {
    // Parsed answers are read here, so only a handed-over stream needs the monitor.
    const stream = Boolean(opts && opts.stream);
    const started = Date.now();
    if (stream) return this.#requestStream(method, path, opts, started);
    // Not async: the task's own promise settles with the answer (#answer), no layer of ours.
    try {
      return this.#dispatch(method, path, opts, started);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #requestStream(method, path, opts, started) {
    const reply = await this.#dispatch(method, path, opts);
    if (reply.response.status >= 200 && reply.response.status < 300) return this.#respond(reply, true, opts.signal);
    throw await this.#upstreamError(reply, opts, started);
  }

  // request()'s answer to a reply, settling the call: a 2xx body read and parsed, else the
  // upstream's error.
  #answer(reply, { method, opts, started }, resolve, reject) {
    const transport = this.#transport;
    const raw = reply.response;
    if (!(raw.status >= 200 && raw.status < 300)) {
      this.#upstreamError(reply, opts, started).then(reject, reject);
      return;
    }
    if (raw.status === 204 || method.toUpperCase() === "HEAD") {
      transport.discard(raw);
      resolve(null);
      return;
    }
    // A 2xx body the pool reads itself: through the transport, no Response built.
    const bodyMs = this.#bodyTimeout(opts, started);
    let read;
    try {
      read = transport.text(raw, bodyMs);
    } catch (e) {
      read = Promise.reject(e);
    }
    read.then(
      (text) => {
        const data = parseJson(text, transport.header(raw, "content-type"));
        resolve(data !== undefined ? data : text);
      },
      (e) => reject(this.#bodyBroke(e, reply, opts, bodyMs)),
    );
  }

  // A 2xx body that could not be read: the abort's reason, else a stall or a break.
  #bodyBroke(e, reply, opts, bodyMs) {
    if (opts && opts.signal?.aborted) return opts.signal.reason;
    this.#streamBroke(reply.keyId, reply.pool);
    const stalled = e instanceof BodyStalled;
    const what = stalled ? `did not arrive within ${bodyMs} ms` : `broke off: ${e && e.message}`;
    return new PoolSwitchError(`the response body from key ${reply.keyId} ${what}`, {
      kind: stalled ? "timeout" : "stream",
      keyId: reply.keyId,
      status: reply.response.status,
      afterMs: stalled ? bodyMs : undefined,
      cause: stalled ? undefined : safeCause(e, this.#secrets),
    });
  }

  // The upstream's error answer as the PoolSwitchError request() rejects with.
  async #upstreamError(reply, opts, started) {
    const response = this.#respond(reply, false);
    const { text, data, bodyProblem } = await readPayload(response, this.#bodyTimeout(opts, started));
    const detail = bodyProblem ?? providerMessage(data);
    const message = `upstream answered ${response.status} (${reply.outcome}) on key ${reply.keyId} after ${reply.attempts} attempt${reply.attempts === 1 ? "" : "s"}${detail ? `: ${detail}` : ""}`;
    return new PoolSwitchError(scrub(message, this.#secrets), {
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

  // How long request() waits for a body it reads itself: the request's timeout, and no later
  // than its deadline (counted from `started`).
  #bodyTimeout(opts, started) {
    const timeout = opts?.timeoutMs ?? this.#requestTimeoutMs;
    const deadline = opts?.deadlineMs ?? this.#deadlineMs;
    if (deadline === undefined) return timeout;
    const left = Math.max(1, started + deadline - Date.now());
    return timeout === undefined ? left : Math.min(timeout, left);
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
   * resolves to a synthesized 429 (or 503); see retryAdvice for the headers SDKs read.
   */
  async fetch(input, init) {
    if (init === undefined || init === null) init = {};
    else if (typeof init !== "object") throw invalidRequest("must be an object", "init");
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const url = isRequest ? input.url : input instanceof URL ? input.href : String(input);
    const method = init.method ?? (isRequest ? input.method : "GET");
    const headers = init.headers ?? (isRequest ? input.headers : undefined);
    let body = init.body;
    if (body === undefined && isRequest && input.body) body = await input.arrayBuffer();
    const signal = init.signal ?? (isRequest ? input.signal : undefined);
    try {
      const reply = await this.#dispatch(method, url, { headers, body, signal, timeoutMs: init.timeoutMs, deadlineMs: init.deadlineMs, retryAttempts: init.retryAttempts });
      let response = this.#respond(reply, true, signal);
      // The pool gave up waiting for a key: tell the SDK when one returns, and whether to wait.
      if (reply.retryAt !== undefined && response.status >= 400) response = this.#withRetryAdvice(response, reply.retryAt);
      // Which key served it, for logs: a non-enumerable extra on the standard Response.
      Object.defineProperty(response, "poolswitch", { value: { keyId: reply.keyId, attempts: reply.attempts, outcome: reply.outcome } });
      return response;
    } catch (e) {
      if (e instanceof PoolSwitchError && e.kind === "no_healthy_keys") return this.#noKeysResponse(e);
      throw e;
    }
  }

  // The SDKs (openai, @anthropic-ai/sdk) sleep for whatever `retry-after` says, an hour
  // included, unless `x-should-retry: false`. So: a wait they can honour when the earliest key
  // returns within what this pool itself would wait (maxWaitMs), and no retry otherwise.
  #retryAdvice(retryAt) {
    if (retryAt === undefined) return { "x-should-retry": "false" };
    const wait = Math.max(1, Math.ceil(retryAt - Date.now()));
    const advice = { "retry-after": String(Math.ceil(wait / 1000)) };
    if (wait > this.#maxWaitMs) advice["x-should-retry"] = "false";
    else Object.assign(advice, { "retry-after-ms": String(wait), "x-should-retry": "true" });
    return advice;
  }

  // The upstream's own answer (a 429, say), with the pool's advice in place of its own.
  #withRetryAdvice(response, retryAt) {
    const headers = new Headers(response.headers);
    for (const name of ["retry-after", "retry-after-ms", "x-should-retry"]) headers.delete(name);
    for (const [name, value] of Object.entries(this.#retryAdvice(retryAt))) headers.set(name, value);
    const advised = new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    Object.defineProperty(advised, "url", { value: response.url, configurable: true });
    return advised;
  }

  #noKeysResponse(e) {
    const headers = { "content-type": "application/json", "x-poolswitch-error": "no_healthy_keys", ...this.#retryAdvice(e.retryAt) };
    const body = JSON.stringify({ error: { message: e.message, type: "no_healthy_keys", retry_at: e.retryAt ?? null } });
    return new Response(body, { status: e.retryAt !== undefined ? 429 : 503, headers });
  }

  #onPoolEvent = (event) => {
    if (this.#shared) this.#shared.onPoolEvent(event);
    this.#events.emit(event);
  };

  #listen() {
    if (this.#listening) return;
    this.#listening = true;
    this.#live().setListener(this.#onPoolEvent);
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

  /** Per-key and pool status, and the store's (`store`). Never includes key values. */
  status() {
    const status = this.#call((pool) => pool.status());
    status.store = this.#shared ? this.#shared.status() : { kind: "memory", healthy: true, lastSyncAt: null };
    return status;
  }

  /** Sends this instance's work to the shared store now (a Worker hands this to `waitUntil`). */
  async flush() {
    if (this.#shared) await this.#shared.flush();
  }

  /** Sends what is left to the store (bounded wait) and releases its connections. */
  async close() {
    if (this.#shared) await this.#shared.close();
  }

  async [Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose")]() {
    await this.close();
  }

  /** Adds a key (string or `{ id, value, monthlyQuota?, weight?, metadata? }`); returns its id. */
  addKey(key) {
    const secrets = [...this.#secrets, ...keyValues([key])];
    try {
      const id = this.#live().addKey(key);
      this.#secrets = secrets;
      this.#changes.push(["add", key]);
      return id;
    } catch (e) {
      throw isTrap(e) ? this.#error(e) : toError(e, secrets);
    }
  }

  /** Removes a key; requests in flight on it finish normally. */
  removeKey(id) {
    this.#call((pool) => pool.removeKey(String(id)));
    this.#changes.push(["remove", String(id)]);
  }

  /** Puts a key back in rotation (also clears an invalid verdict or cooldown). */
  enableKey(id) {
    this.#call((pool) => pool.setKeyEnabled(String(id), true));
    this.#changes.push(["enable", String(id), true]);
    if (this.#shared) this.#shared.noteReset(String(id));
  }

  /** Takes a key out of rotation. */
  disableKey(id) {
    this.#call((pool) => pool.setKeyEnabled(String(id), false));
    this.#changes.push(["enable", String(id), false]);
  }

  /** Shareable per-key state (counters, cooldowns, limits), for a store shared by instances. */
  exportState() {
    return this.#call((pool) => pool.exportState());
  }

  /** Replaces per-key state from a snapshot. */
  importState(snapshot) {
    refuseArray(snapshot);
    this.#call((pool) => pool.importState(snapshot));
  }

  /** Merges another instance's snapshot: counters add, cooldowns take the later time. */
  mergeState(snapshot) {
    refuseArray(snapshot);
    this.#call((pool) => pool.mergeState(snapshot));
  }

  #call(f) {
    try {
      return f(this.#live());
    } catch (e) {
      throw this.#error(e);
    }
  }
}

// The core would read an array as an empty snapshot.
function refuseArray(snapshot) {
  if (Array.isArray(snapshot)) throw invalidConfig("snapshot", "expected an object, got an array");
}

// Once per outage, through the host's warning channel.
function storeWarning(message) {
  const p = globalThis.process;
  if (p && typeof p.emitWarning === "function") p.emitWarning(message, "PoolSwitchStoreWarning");
  else console.warn(message);
}
