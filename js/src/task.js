// Drives one request's call through the wasm pool. The pool's request machine answers every
// report with one step on the wire (src/js/wire.rs says the layout): JSON, `[task, record…]`,
// each record an array led by an op code. This carries the records out (send, peek at an
// error body, discard, the task's one timer, done/fail) and reports each result back, which
// yields the next step. Responses, request bodies and abort signals never enter wasm.

/** The wire version this driver speaks (src/js/wire.rs `VERSION`). */
const VERSION = 4;
let W; // the wire's constants, read once from the wasm

/** Reads the wire's constants from the loaded wasm; refuses a wasm of another wire version. */
export function useWire(WasmPool) {
  const w = JSON.parse(WasmPool.wire());
  if (w.version !== VERSION) throw new Error(`poolswitch-wasm: the wasm speaks wire version ${w.version}, this wrapper ${VERSION}`);
  W = { ...w.op, connect: w.failure.connect, ambiguous: w.failure.ambiguous, limitHeaders: w.limitHeaders, success: w.success, limitIndex: new Map(w.limitHeaders.map((name, i) => [name, i])) };
}

/** `[name, value, …]` pairs as the wire carries them: JSON, or undefined for none (no string crosses). */
export function wirePairs(pairs) {
  return pairs.length === 0 ? undefined : JSON.stringify(pairs);
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

/** `send` in the driver's form: `start(…, attempt)` calls `attempt.settle(error, reply)` once. */
export function callbackSender(send) {
  return (method, url, headers, body, signal, attempt) => {
    send(method, url, headers, body, signal).then(
      (reply) => attempt.settle(undefined, reply),
      (e) => attempt.settle(e),
    );
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

// Reports a reply's rate-limit headers to the pool for the `sent` that follows, one
// `limit(index, value)` each (index in the wire's limitHeaders): no string is built per
// response. A reply that can list its headers (undici's record) is walked once; otherwise each
// name is looked up (iterating a fetch Headers object allocates several KB per response in Node).
function reportLimits(pool, reply) {
  if (typeof reply.reportLimits === "function") return reply.reportLimits(pool, W.limitIndex);
  const names = W.limitHeaders;
  for (let i = 0; i < names.length; i++) {
    const value = reply.header(names[i]);
    if (value !== null && value !== undefined) pool.limit(i, String(value));
  }
}

const NO_ATTEMPTS = Object.freeze([]);

// One attempt the driver holds until it is discarded or is the answer. The transport reports
// on it through settle(): the attempt itself is what it calls back, not a closure per attempt.
class Attempt {
  constructor(task, n) {
    this.task = task;
    this.n = n;
    this.keyId = undefined; // the key it went out with (its SEND record's)
    this.abort = undefined; // its own AbortController, when the machine may end it
    this.reply = undefined;
    this.reader = undefined; // a peek's reader over a fetch Response clone
    this.sync = true; // the transport's start() has not returned yet
    this.settled = false;
  }

  /** The transport's report: the response head (`reply`) or the failure (`e`); the first counts. */
  settle(e, reply) {
    if (this.settled) return;
    this.settled = true;
    // A transport that answers at once (a custom dispatcher) is heard after the step that sent
    // this attempt is carried out: its later records (a timer) belong before the answer.
    if (this.sync) queueMicrotask(() => this.task.sent(this, e, reply));
    else this.task.sent(this, e, reply);
  }
}

function fireTimer(task) {
  task.timer = undefined;
  if (task.finished) return;
  let text;
  try {
    text = task.pool.fired(task.id);
  } catch (e) {
    return task.crash(e);
  }
  task.report(text);
}

// One request's call: its attempts, its one timer, the caller's signal. One object per request
// with its methods on the prototype: a closure per step and a promise per layer cost more than
// the pool's own work in Node.
class Task {
  constructor(pool, id, ctx, resolve, reject) {
    this.pool = pool;
    this.id = id;
    this.ctx = ctx;
    this.resolve = resolve;
    this.reject = reject;
    this.attempts = NO_ATTEMPTS; // arrays, not Maps: a call has one or two attempts
    this.timer = undefined;
    this.finished = false;
    this.onAbort = undefined;
  }

  find(n) {
    for (const a of this.attempts) if (a.n === n) return a;
    return undefined;
  }

  // Stops an attempt's peek and, unless it is the answer, frees its connection: an attempt
  // still in flight is aborted, a response's body cancelled (aborting a fetch whose
  // response has arrived errors its body under a peek, an unhandled rejection in undici).
  release(a, answer) {
    if (a.reader) a.reader.cancel().catch(() => {});
    a.reader = undefined;
    if (answer) return;
    if (a.reply) releaseReply(a.reply);
    else if (a.abort) a.abort.abort();
  }

  end(answer) {
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const attempts = this.attempts;
    for (let i = 0; i < attempts.length; i++) this.release(attempts[i], attempts[i] === answer);
    // Dropped, not emptied: setting an array's length is a slow path in V8. Nothing is added
    // after the end (records stop once the task has finished).
    this.attempts = NO_ATTEMPTS;
    if (this.onAbort) this.ctx.signal.removeEventListener("abort", this.onAbort);
  }

  // A report into the pool threw (a stale pool after a reset, a trap): the call ends with it.
  crash(e) {
    if (this.finished) return;
    this.end(undefined);
    this.pool.cancel(this.id);
    this.fail(e);
  }

  // Rejects the call with `e` as the caller's context words it.
  fail(e) {
    let error;
    try {
      error = this.ctx.error(e);
    } catch (x) {
      error = x;
    }
    this.reject(error);
  }

  // One crossing's answer: the next step. A listener run during the crossing may have ended
  // the task (an abort): then the step is not for us any more.
  report(text) {
    if (this.finished) return;
    const step = JSON.parse(text);
    if (step[0] !== this.id) return;
    for (let i = 1; i < step.length && !this.finished; i++) this.record(step[i]);
  }

  record(r) {
    switch (r[0]) {
      case W.send:
        return this.send(r);
      case W.peek: {
        const a = this.find(r[1]);
        if (a && a.reply) this.peek(a, r[2]);
        return;
      }
      case W.discard: {
        const i = this.attempts.findIndex((a) => a.n === r[1]);
        if (i >= 0) this.release(this.attempts.splice(i, 1)[0], false);
        return;
      }
      case W.timer:
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = r[1] < 0 ? undefined : setTimeout(fireTimer, r[1], this);
        return;
      case W.done:
        return this.done(this.find(r[1]), r[2], r[3], r[4], r[5] ?? undefined);
      case W.fail:
        this.end(undefined);
        this.fail({ kind: r[1], message: r[2], keyId: r[3] ?? undefined, retryAt: r[4] ?? undefined, afterMs: r[5] ?? undefined });
        return;
    }
  }

  done(a, keyId, attempts, outcome, retryAt) {
    this.end(a);
    const reply = { response: a && a.reply && a.reply.response, keyId, attempts, outcome, retryAt, pool: this.pool };
    if (this.ctx.started === undefined) return this.resolve(reply);
    try {
      this.ctx.answer(reply, this.resolve, this.reject);
    } catch (e) {
      this.reject(e);
    }
  }

  send(r) {
    const a = new Attempt(this, r[1]);
    a.keyId = r[6];
    const headers = r[5]; // a fresh record from JSON.parse: the transport may change it
    const ctx = this.ctx;
    let signal = ctx.signal;
    if (r[4] === 1) {
      // The machine may end this attempt (a timeout applies): it gets its own signal.
      a.abort = new AbortController();
      signal = signal ? AbortSignal.any([signal, a.abort.signal]) : a.abort.signal;
    }
    // A call has one attempt mostly: a one-element array, not an empty one grown on push. (No
    // attempt is sent after the end, where the list is NO_ATTEMPTS again: records stop.)
    if (this.attempts === NO_ATTEMPTS) this.attempts = [a];
    else this.attempts.push(a);
    try {
      ctx.transport.start(r[2], r[3], headers, ctx.body, signal, a);
    } catch (e) {
      a.settle(e);
    }
    a.sync = false;
  }

  // Attempt `a` got its response head (`reply`) or failed (`e`).
  sent(a, e, reply) {
    // The host's own error for an attempt that got no answer, kept as the call's `cause`.
    if (e) this.ctx.failure = e;
    if (this.finished || this.find(a.n) !== a) {
      if (!e) releaseReply(reply);
      return;
    }
    let text;
    if (e) {
      const code = causeCode(e);
      const kind = CONNECT_CODES.has(code) ? W.connect : W.ambiguous;
      try {
        text = this.pool.failed(this.id, a.n, kind, errorMessage(e, code));
      } catch (err) {
        return this.crash(err);
      }
    } else {
      a.reply = reply;
      let attempts;
      try {
        reportLimits(this.pool, reply);
        attempts = this.pool.sent(this.id, a.n, reply.status);
        // 0: a step to carry out; else the call ended as a plain success on this attempt.
        if (attempts === 0) text = this.pool.takeStep();
      } catch (err) {
        return this.crash(err);
      }
      if (attempts !== 0) {
        // A listener run during the crossing may have ended the task (an abort).
        if (!this.finished) this.done(a, a.keyId, attempts, W.success, undefined);
        return;
      }
    }
    this.report(text);
  }

  peeked(a, bytes) {
    if (this.finished || this.find(a.n) !== a) return;
    let text;
    try {
      text = this.pool.peeked(this.id, a.n, bytes);
    } catch (e) {
      return this.crash(e);
    }
    this.report(text);
  }

  // Reads the start of an error body from a clone, so the caller can still read it all. A
  // transport whose replies peek themselves (undici) keeps the bytes for the caller instead.
  peek(a, limit) {
    if (typeof a.reply.peek === "function") {
      a.reply.peek(limit).then((bytes) => this.peeked(a, bytes));
      return;
    }
    let reader;
    try {
      const body = a.reply.response.body;
      if (body) reader = a.reply.response.clone().body.getReader();
    } catch {}
    if (!reader) return this.peeked(a, EMPTY);
    a.reader = reader;
    readUpTo(reader, limit).then((bytes) => {
      if (a.reader !== reader) return; // released meanwhile
      a.reader = undefined;
      reader.cancel().catch(() => {});
      this.peeked(a, bytes);
    });
  }
}

/**
 * Runs a task to its end from its first step (`pool.start`'s answer). `ctx`: `{ transport,
 * body, signal, failure, error(e) }` (`transport.start(method, url, headers, body, signal,
 * attempt)` calls `attempt.settle(error, reply)` once; `failure` is set to the host's error of
 * an attempt that got no answer). Resolves to `{ response, keyId, attempts, outcome, retryAt,
 * pool }`, or when `ctx.started` is set, to what `ctx.answer(reply, resolve, reject)` settles
 * the call with; rejects with `ctx.error(e)` of the core's error object, or of the signal's
 * reason when the caller aborts.
 */
export function runTask(pool, first, ctx) {
  return new Promise((resolve, reject) => {
    const step = JSON.parse(first);
    const task = new Task(pool, step[0], ctx, resolve, reject);
    const signal = ctx.signal;
    if (signal) {
      if (signal.aborted) {
        // Aborted while the call started (by an event listener): nothing is sent.
        task.finished = true;
        pool.cancel(task.id);
        task.fail(signal.reason);
        return;
      }
      task.onAbort = () => {
        if (task.finished) return;
        task.end(undefined);
        pool.cancel(task.id);
        task.fail(signal.reason);
      };
      signal.addEventListener("abort", task.onAbort, { once: true });
    }
    for (let i = 1; i < step.length && !task.finished; i++) task.record(step[i]);
  });
}
