// Drives one request's call through the wasm pool. The pool's request machine answers every
// report with one step on the wire (src/js/wire.rs says the layout): JSON, `[task, record…]`,
// each record an array led by an op code. This carries the records out (send, peek at an
// error body, discard, the task's one timer, done/fail) and reports each result back, which
// yields the next step. Responses, request bodies and abort signals never enter wasm.

/** The wire version this driver speaks (src/js/wire.rs `VERSION`). */
const VERSION = 1;
let W; // the wire's constants, read once from the wasm

/** Reads the wire's constants from the loaded wasm; refuses a wasm of another wire version. */
export function useWire(WasmPool) {
  const w = JSON.parse(WasmPool.wire());
  if (w.version !== VERSION) throw new Error(`poolswitch-wasm: the wasm speaks wire version ${w.version}, this wrapper ${VERSION}`);
  W = { ...w.op, connect: w.failure.connect, ambiguous: w.failure.ambiguous, limitHeaders: w.limitHeaders };
}

/** `[name, value, …]` pairs as the wire carries them: JSON, or "" for none. */
export function wirePairs(pairs) {
  return pairs.length === 0 ? "" : JSON.stringify(pairs);
}

// What `send` resolves to over fetch: the status, a header lookup, and the Response itself.
class FetchReply {
  constructor(response) {
    this.response = response;
    this.status = response.status;
  }
  header(name) {
    return this.response.headers.get(name);
  }
}

function fetchReply(r) {
  if (r === null || typeof r !== "object" || typeof r.status !== "number" || !r.headers || typeof r.headers.get !== "function") {
    throw new TypeError("the fetch function did not resolve to a Response");
  }
  if (r.bodyUsed) throw new TypeError("the fetch function resolved to a Response whose body was already read");
  return new FetchReply(r);
}

/**
 * The upstream send over a fetch function: `send(method, url, headers, body, signal)` →
 * `{ status, header(name), response }`. Redirects are not followed: a redirect to another
 * origin would carry the key there. Another transport (undici's dispatcher, transport/undici.js)
 * stands in for it with the same shape; its replies may also have `peek(limit)` (the start of
 * the body, kept for the caller) and `discard()` (free the connection).
 */
export function fetchSender(fetchFn) {
  return (method, url, headers, body, signal) => {
    const init = { method, headers, signal, redirect: "manual" };
    if (body !== undefined && body !== null) init.body = body;
    return Promise.resolve(fetchFn(url, init)).then(fetchReply);
  };
}

// Error codes (Node/undici) for a request that never left: safe to resend on any key.
const CONNECT_CODES = new Set([
  "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function codeOf(e) {
  try {
    return e && typeof e === "object" && typeof e.code === "string" ? e.code : undefined;
  } catch {
    return undefined;
  }
}

// The code of the first cause that has one (fetch's TypeError wraps the socket's error).
function causeCode(e) {
  for (let c = e, depth = 0; c && typeof c === "object" && depth < 5; depth++) {
    const code = codeOf(c);
    if (code) return code;
    let errors;
    try {
      errors = c.errors;
      c = c.cause;
    } catch {
      return undefined;
    }
    // Happy eyeballs: an AggregateError of one failure per address.
    if (Array.isArray(errors) && errors.length > 0 && errors.every((x) => CONNECT_CODES.has(codeOf(x)))) return codeOf(errors[0]);
  }
  return undefined;
}

function errorMessage(e, code) {
  let m;
  try {
    m = (e && typeof e.message === "string" && e.message) || (typeof e === "string" ? e : "fetch failed");
  } catch {
    m = "fetch failed";
  }
  return code && !m.includes(code) ? `${m} (${code})` : m;
}

const EMPTY = new Uint8Array(0);

// Reads up to `limit` bytes from `reader`; a body that breaks is classified on what was read.
async function readUpTo(reader, limit) {
  const chunks = [];
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {}
  const out = new Uint8Array(Math.min(total, limit));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at >= out.length) break;
  }
  return out;
}

function cancelBody(response) {
  try {
    if (response && response.body && !response.bodyUsed) response.body.cancel().catch(() => {});
  } catch {}
}

// Frees a reply's connection: its own way when the transport gives one (undici's replies are
// not Responses), else by cancelling the Response body.
function releaseReply(reply) {
  if (reply && typeof reply.discard === "function") reply.discard();
  else cancelBody(reply && reply.response);
}

/**
 * Runs a task to its end from its first step (`pool.start`'s answer). `ctx`: `{ send, body,
 * signal }`. Resolves to `{ response, keyId, attempts, outcome, retryAt }`; rejects with the
 * core's error object, or with the signal's reason when the caller aborts.
 */
export function runTask(pool, first, ctx) {
  return new Promise((resolve, reject) => {
    const firstStep = JSON.parse(first);
    const task = firstStep[0];
    // Arrays, not Maps: a call has one or two attempts, and every object held while it is in
    // flight costs garbage-collector time in proportion.
    const attempts = []; // { n, abort?, reply?, reader? } until discarded
    let timer; // the task's one timer
    let finished = false;
    const find = (n) => attempts.find((a) => a.n === n);

    // Stops an attempt's peek and, unless it is the answer, frees its connection: an attempt
    // still in flight is aborted, a response's body cancelled (aborting a fetch whose
    // response has arrived errors its body under a peek, an unhandled rejection in undici).
    const release = (a, answer) => {
      if (a.reader) a.reader.cancel().catch(() => {});
      a.reader = undefined;
      if (answer) return;
      if (a.reply) releaseReply(a.reply);
      else if (a.abort) a.abort.abort();
    };
    const end = (answer) => {
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const a of attempts.splice(0)) release(a, a === answer);
      if (ctx.signal) ctx.signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      if (finished) return;
      end(undefined);
      pool.cancel(task);
      reject(ctx.signal.reason);
    };
    // One crossing: a report in, the next step out. A listener run during it may have ended
    // the task (an abort): then the step is not for us any more.
    const report = (call) => {
      if (finished) return;
      let text;
      try {
        text = call();
      } catch (e) {
        if (finished) return;
        end(undefined);
        pool.cancel(task);
        reject(e);
        return;
      }
      apply(text);
    };
    const apply = (text) => {
      if (finished) return;
      const step = typeof text === "string" ? JSON.parse(text) : text;
      if (step[0] !== task) return;
      for (let i = 1; i < step.length && !finished; i++) record(step[i]);
    };
    const onTimer = () => {
      timer = undefined;
      report(() => pool.fired(task));
    };

    function record(r) {
      switch (r[0]) {
        case W.send:
          return send(r);
        case W.peek: {
          const a = find(r[1]);
          if (a && a.reply) peek(a, r[2]);
          return;
        }
        case W.discard: {
          const i = attempts.findIndex((a) => a.n === r[1]);
          if (i >= 0) release(attempts.splice(i, 1)[0], false);
          return;
        }
        case W.timer:
          if (timer !== undefined) clearTimeout(timer);
          timer = r[1] < 0 ? undefined : setTimeout(onTimer, r[1]);
          return;
        case W.done: {
          const a = find(r[1]);
          end(a);
          resolve({ response: a && a.reply && a.reply.response, keyId: r[2], attempts: r[3], outcome: r[4], retryAt: r[5] ?? undefined });
          return;
        }
        case W.fail:
          end(undefined);
          reject({ kind: r[1], message: r[2], keyId: r[3] ?? undefined, retryAt: r[4] ?? undefined, afterMs: r[5] ?? undefined });
          return;
      }
    }

    function send(r) {
      const a = { n: r[1], abort: undefined, reply: undefined, reader: undefined };
      // A plain record is cheaper for fetch than a Headers object; repeated names are joined.
      const h = r[5];
      const headers = {};
      for (let i = 0; i + 1 < h.length; i += 2) {
        const name = h[i];
        const value = Object.hasOwn(headers, name) ? `${headers[name]}, ${h[i + 1]}` : h[i + 1];
        if (name === "__proto__") Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
        else headers[name] = value;
      }
      let signal = ctx.signal;
      if (r[4] === 1) {
        // The machine may end this attempt (a timeout applies): it gets its own signal.
        a.abort = new AbortController();
        signal = signal ? AbortSignal.any([signal, a.abort.signal]) : a.abort.signal;
      }
      attempts.push(a);
      let pending;
      try {
        pending = Promise.resolve(ctx.send(r[2], r[3], headers, ctx.body, signal));
      } catch (e) {
        pending = Promise.reject(e);
      }
      pending.then(
        (reply) => {
          if (finished || find(a.n) !== a) return releaseReply(reply);
          a.reply = reply;
          // Only the headers the core reads, by name: iterating a fetch Headers object
          // allocates several KB per response in Node.
          let found;
          for (const name of W.limitHeaders) {
            const value = reply.header(name);
            if (value !== null && value !== undefined) (found ??= []).push(name, String(value));
          }
          report(() => pool.sent(task, a.n, reply.status, found ? JSON.stringify(found) : ""));
        },
        (e) => {
          if (finished || find(a.n) !== a) return;
          const code = causeCode(e);
          const kind = CONNECT_CODES.has(code) ? W.connect : W.ambiguous;
          report(() => pool.failed(task, a.n, kind, errorMessage(e, code)));
        },
      );
    }

    // Reads the start of an error body from a clone, so the caller can still read it all. A
    // transport whose replies peek themselves (undici) keeps the bytes for the caller instead.
    function peek(a, limit) {
      if (typeof a.reply.peek === "function") {
        a.reply.peek(limit).then((bytes) => {
          if (finished || find(a.n) !== a) return;
          report(() => pool.peeked(task, a.n, bytes));
        });
        return;
      }
      let reader;
      try {
        const body = a.reply.response.body;
        if (body) reader = a.reply.response.clone().body.getReader();
      } catch {}
      if (!reader) return report(() => pool.peeked(task, a.n, EMPTY));
      a.reader = reader;
      readUpTo(reader, limit).then((bytes) => {
        if (a.reader !== reader) return; // released meanwhile
        a.reader = undefined;
        reader.cancel().catch(() => {});
        if (finished || find(a.n) !== a) return;
        report(() => pool.peeked(task, a.n, bytes));
      });
    }

    if (ctx.signal) {
      if (ctx.signal.aborted) {
        // Aborted while the call started (by an event listener): nothing is sent.
        finished = true;
        pool.cancel(task);
        reject(ctx.signal.reason);
        return;
      }
      ctx.signal.addEventListener("abort", onAbort, { once: true });
    }
    apply(firstStep);
  });
}
