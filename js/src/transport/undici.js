// The upstream transport for Node: undici's dispatcher API, without the fetch layer (web
// streams, Headers, Request and Response objects per call), which costs several times the
// request itself in Node. Same shape as transport/fetch.js. Only the Node entry imports this
// module, so browser and Worker bundles never contain undici.
//
// `response` is a Reply: status, the raw header record, undici's body stream. The pool reads
// 2xx bodies with text(); a standard Response is built only when the caller asks for one
// (client.fetch, stream: true) or an error answer is handed over.
import { BodyStalled, fetchTransport } from "./fetch.js";

// Node's built-in modules, reached without a top-level require or import: an app's ESM bundle
// of the CommonJS build (esbuild --format=esm) cannot require them.
const builtin = (name) => globalThis.process?.getBuiltinModule?.(name);

// One dispatcher for every client in the process, so pools to the same provider share warm
// connections. Pipelining stays at 1: API calls are mostly POSTs (never pipelined safely) and
// last seconds, so a second request queued behind one would wait for it. Redirects are never
// followed: undici's Agent follows none unless a redirect interceptor is added.
//
// undici is loaded on the first request, not at import: loading it takes 100+ ms on a busy
// 2-core machine, several times the rest of the package's cold start. The literal
// require("undici") is the CJS build's (cjs/node.cjs), where a bundler of an app sees it and
// bundles undici too (evaluated lazily all the same); ESM (this file in tests) makes a require.
//
// Where undici cannot be used — a bundle that left it out or cannot require it, Bun's stand-in
// module (its Agent has no request()), Deno (undici reads the environment, which needs
// --allow-env; Deno's own fetch is native), no process.getBuiltinModule — the host's fetch serves.
let shared; // an undici Agent, or null: use fetch
export function sharedDispatcher() {
  if (shared === undefined) {
    shared = null;
    try {
      if (!globalThis.process?.versions?.bun && !globalThis.Deno && builtin("node:stream")) {
        const undici = typeof require === "function" ? require("undici") : builtin("node:module").createRequire(import.meta.url)("undici");
        const agent = new undici.Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000, pipelining: 1 });
        if (typeof agent.request === "function") shared = agent;
      }
    } catch {} // fetch serves
  }
  return shared;
}

const viaFetch = fetchTransport((url, init) => globalThis.fetch(url, init));

// Headers undici refuses or computes itself; fetch drops or recomputes them too.
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "host", "expect"];

const NULL_BODY = new Set([101, 204, 205, 304]);

// A header record's value as one string: a repeated header's values joined as fetch joins them.
const headerText = (v) => (Array.isArray(v) ? v.join(", ") : String(v));

class Reply {
  constructor(data, url) {
    this.url = url; // what fetch's Response.url would be (the client hides a query key in it)
    this.status = data.statusCode;
    this.headers = data.headers; // lower-case names; a repeated header is an array
    this.body = data.body;
    this.prefix = null; // bytes a peek took from the body
    this.ended = false; // the peek read the body to its end
  }

  get response() {
    return this;
  }

  header(name) {
    const v = this.headers[name];
    return v === undefined ? null : headerText(v);
  }

  /** Reports its rate-limit headers to `pool` (task.js reportLimits), `index` naming them: one walk of the record. */
  reportLimits(pool, index) {
    for (const name in this.headers) {
      const i = index.get(name);
      if (i === undefined) continue;
      pool.limit(i, headerText(this.headers[name]));
    }
  }

  /** The first `limit` bytes of the body; all of it stays readable for the caller. */
  peek(limit) {
    return new Promise((resolve) => {
      const body = this.body;
      const chunks = [];
      let total = 0;
      const done = (ended) => {
        body.pause();
        body.off("data", onData);
        body.off("end", onEnd);
        body.off("error", onEnd);
        this.prefix = Buffer.concat(chunks);
        this.ended = ended;
        resolve(new Uint8Array(this.prefix.buffer, this.prefix.byteOffset, Math.min(total, limit)));
      };
      const onData = (c) => {
        chunks.push(c);
        total += c.length;
        if (total >= limit) done(false);
      };
      // A body that breaks while peeked classifies on what was read.
      const onEnd = () => done(true);
      body.on("data", onData);
      body.once("end", onEnd);
      body.once("error", onEnd);
    });
  }

  /** Frees the connection: a small rest is read so it can be reused, a large one closes it. */
  discard() {
    if (!this.ended) this.body.dump().catch(() => {});
  }
}

// fetch's body rules for the kinds of body a caller may give: default content types, views.
function requestBody(body, headers) {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") {
    headers["content-type"] ??= "text/plain;charset=UTF-8";
    return body;
  }
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof URLSearchParams) {
    headers["content-type"] ??= "application/x-www-form-urlencoded;charset=UTF-8";
    return body.toString();
  }
  if (typeof Blob !== "undefined" && body instanceof Blob) {
    if (body.type) headers["content-type"] ??= body.type;
    return body;
  }
  return body; // a Node stream or async iterable: undici sends it as it is
}

function cleanHeaders(headers) {
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
}

// Reads the whole body into memory, what a peek took included.
function collect(reply) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const source = decoded(reply);
    source.on("data", (c) => chunks.push(c));
    source.once("end", () => resolve(Buffer.concat(chunks)));
    source.once("error", reject);
  });
}

/** The body as the server sent it (still encoded), what a peek took first: for proxying. */
export function rawBody(reply) {
  if (!reply.prefix) return reply.body;
  const { prefix, ended, body } = reply;
  return builtin("node:stream").Readable.from(
    (async function* () {
      yield prefix;
      if (!ended) for await (const chunk of body) yield chunk;
    })(),
    { objectMode: false },
  );
}

// The body as bytes the caller reads, decompressed as fetch would (the pool never asks for an
// encoding; a caller who does gets what fetch gives).
function decoded(reply) {
  const source = rawBody(reply);
  const decoder = decoderFor(reply.header("content-encoding"));
  if (!decoder) return source;
  return builtin("node:stream").pipeline(source, decoder, () => {});
}

function decoderFor(encoding) {
  if (!encoding) return null;
  const zlib = builtin("node:zlib");
  const e = encoding.trim().toLowerCase();
  if (e === "gzip" || e === "x-gzip") return zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (e === "deflate") return zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (e === "br") return zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
  return null;
}

// A Response built here has no URL of its own (fetch sets it from the request): give it the
// request's, and to its clones too.
function withUrl(response, url) {
  const clone = response.clone;
  Object.defineProperty(response, "url", { value: url, configurable: true });
  Object.defineProperty(response, "clone", { value: () => withUrl(clone.call(response), url), configurable: true });
  return response;
}

// A provider can send headers and then stall: after `ms` the body is destroyed, which ends the
// read and frees the connection.
async function readWithin(reply, read, ms) {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    reply.body.destroy(new BodyStalled(`its body did not arrive within ${ms} ms`));
  }, ms);
  try {
    return await read;
  } catch (e) {
    throw expired ? new BodyStalled(`its body did not arrive within ${ms} ms`) : e;
  } finally {
    clearTimeout(timer);
  }
}

/** A transport over undici's dispatcher API (`dispatcher`: an undici Dispatcher; the shared Agent by default). */
export function undiciTransport(dispatcher) {
  const transport = {
    send(method, url, headers, body, signal) {
      return new Promise((resolve, reject) => transport.start(method, url, headers, body, signal, { settle: (err, reply) => (err ? reject(err) : resolve(reply)) }));
    },

    // What task.js drives: undici's callback API, with no promise of its own.
    start(method, url, headers, body, signal, attempt) {
      dispatcher ??= sharedDispatcher();
      if (!dispatcher) return viaFetch.start(method, url, headers, body, signal, attempt);
      dispatcher.request(transport.options(method, url, headers, body, signal), (err, data) => (err ? attempt.settle(err) : attempt.settle(undefined, new Reply(data, url))));
    },

    // dispatcher.request's options for one attempt.
    options(method, url, headers, body, signal) {
      // The core hands over absolute URLs it has checked: split at the first slash of the path.
      const start = url.indexOf("//") + 2;
      const slash = url.indexOf("/", start);
      const query = url.indexOf("?", start);
      const cut = slash < 0 ? query : query < 0 ? slash : Math.min(slash, query);
      const origin = cut < 0 ? url : url.slice(0, cut);
      const path = cut < 0 ? "/" : url[cut] === "?" ? `/${url.slice(cut)}` : url.slice(cut);
      cleanHeaders(headers);
      const opts = { origin, path, method, headers, body: requestBody(body, headers) };
      if (signal) opts.signal = signal;
      return opts;
    },

    // Replies are undici's, or Responses when fetch served (see sharedDispatcher).
    discard: (reply) => (reply instanceof Reply ? reply.discard() : viaFetch.discard(reply)),

    // Not async: a call with no timeout reads with no promise of its own.
    text(reply, ms) {
      if (!(reply instanceof Reply)) return viaFetch.text(reply, ms);
      const read = !reply.prefix && !reply.headers["content-encoding"] ? reply.body.text() : collect(reply).then((b) => b.toString("utf8"));
      return ms === undefined ? read : readWithin(reply, read, ms);
    },

    header: (reply, name) => (reply instanceof Reply ? reply.header(name) : viaFetch.header(reply, name)),

    toResponse(reply) {
      if (!(reply instanceof Reply)) return reply;
      const headers = new Headers();
      for (const [name, value] of Object.entries(reply.headers)) {
        if (Array.isArray(value)) for (const v of value) headers.append(name, v);
        else headers.append(name, value);
      }
      const status = reply.status;
      let response;
      if (NULL_BODY.has(status)) {
        reply.body.dump().catch(() => {});
        response = new Response(null, { status, headers });
      } else response = new Response(builtin("node:stream").Readable.toWeb(decoded(reply)), { status, headers });
      return withUrl(response, reply.url);
    },
  };
  return transport;
}
