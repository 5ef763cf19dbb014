// Drives one request through the wasm pool. The core asks for host operations in steps
// (src/js/ops.rs says why): fetches (S), timers (T), body peeks (K) and cancellations (C).
// This starts them and reports each result back, which yields the next step. Responses,
// request bodies and abort signals never enter wasm.

const RS = "\x1e";
const US = "\x1f";
let limitHeaders; // the core's list (src/core/limits.rs), read once

/** `[name, value, …]` pairs as the flat text the core reads. */
export function flatText(pairs) {
  for (const s of pairs) if (s.includes(RS) || s.includes(US)) throw new TypeError("header and query values cannot contain the control characters \\x1e or \\x1f");
  return pairs.join(US);
}

function errorMessage(e) {
  return (e && typeof e.message === "string" && e.message) || (typeof e === "string" ? e : "fetch failed");
}

// Reads the start of an error body for classification; the caller still gets the whole body.
async function peek(response, limit) {
  if (!response || !response.body) return new Uint8Array(0);
  const reader = response.clone().body.getReader();
  const chunks = [];
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // A body that breaks while peeked classifies on what was read.
  } finally {
    reader.cancel().catch(() => {});
  }
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

/**
 * Runs task `task` of `pool` to its end. `ctx`: `{ fetch, body, signal }`. Resolves to
 * `{ response, keyId, attempts, outcome, retryAt }`; rejects with the core's error object, or
 * with the signal's reason when the caller aborts.
 */
export function runTask(pool, task, ctx) {
  return new Promise((resolve, reject) => {
    // Arrays, not Maps: a request has one or two operations, and every object held while it
    // is in flight costs garbage-collector time in proportion.
    const live = []; // { id, abort?, timer? } while the core waits for it
    const responses = []; // [fetch op id, Response]
    let finished = false;
    const responseOf = (op) => responses.find(([id]) => id === op)?.[1];
    const settle = (id) => {
      const i = live.findIndex((op) => op.id === id);
      return i >= 0 && live.splice(i, 1)[0];
    };

    // Frees the connections of responses the caller will not get (failed-over attempts).
    const end = (keep) => {
      finished = true;
      for (const op of live.splice(0)) cancelOp(op);
      for (const [, r] of responses) if (r !== keep && r.body && !r.bodyUsed) r.body.cancel().catch(() => {});
      if (ctx.signal) ctx.signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      if (finished) return;
      pool.cancel(task);
      end(null);
      reject(ctx.signal.reason);
    };
    const advance = (next) => {
      if (finished) return;
      let text;
      try {
        text = next();
      } catch (e) {
        end(null);
        reject(e);
        return;
      }
      const records = text.split(RS);
      for (let i = 1; i < records.length; i++) startOp(records[i].split(US));
      if (records[0] === "P") return;
      const [, op, keyId, attempts, outcome, retryAt] = records[0].split(US);
      const response = responseOf(Number(op));
      end(response);
      resolve({ response, keyId, attempts: Number(attempts), outcome, retryAt: retryAt ? Number(retryAt) : undefined });
    };

    function startOp(f) {
      const id = Number(f[1]);
      switch (f[0]) {
        case "C": {
          const op = settle(id);
          if (op) cancelOp(op);
          return;
        }
        case "T":
          live.push({ id, timer: setTimeout(() => settle(id) && advance(() => pool.slept(task, id)), Number(f[2])) });
          return;
        case "K": {
          live.push({ id });
          peek(responseOf(Number(f[2])), Number(f[3])).then((bytes) => settle(id) && advance(() => pool.peeked(task, id, bytes)));
          return;
        }
        case "S":
          return startFetch(id, f);
      }
    }

    function startFetch(id, f) {
      const op = { id };
      // A plain record is cheaper for fetch than a Headers object; repeated names are joined.
      const headers = {};
      for (let i = 5; i + 1 < f.length; i += 2) headers[f[i]] = Object.hasOwn(headers, f[i]) ? `${headers[f[i]]}, ${f[i + 1]}` : f[i + 1];
      let signal = ctx.signal;
      if (f[2] === "1") {
        // The core may drop this attempt (a timeout applies): it gets its own signal.
        op.abort = new AbortController();
        signal = signal ? AbortSignal.any([signal, op.abort.signal]) : op.abort.signal;
      }
      live.push(op);
      // Redirects are not followed: a redirect to another origin would carry the key there.
      const init = { method: f[3], headers, signal, redirect: "manual" };
      if (ctx.body !== undefined && ctx.body !== null) init.body = ctx.body;
      let pending;
      try {
        pending = Promise.resolve(ctx.fetch(f[4], init));
      } catch (e) {
        pending = Promise.reject(e);
      }
      pending.then(
        (response) => {
          if (!settle(id)) {
            if (response && response.body) response.body.cancel().catch(() => {});
            return;
          }
          responses.push([id, response]);
          // Only the headers the core reads, by name: iterating a fetch Headers object allocates
          // several KB per response in Node.
          limitHeaders ??= pool.constructor.limitHeaders().split(US);
          let limits = "";
          for (const name of limitHeaders) {
            const value = response.headers.get(name);
            if (value !== null) limits += (limits ? US : "") + name + US + value;
          }
          advance(() => pool.sent(task, id, response.status, limits));
        },
        (e) => settle(id) && advance(() => pool.failed(task, id, errorMessage(e))),
      );
    }

    if (ctx.signal) {
      if (ctx.signal.aborted) {
        pool.cancel(task);
        reject(ctx.signal.reason);
        return;
      }
      ctx.signal.addEventListener("abort", onAbort, { once: true });
    }
    advance(() => pool.step(task));
  });
}

function cancelOp(op) {
  if (op.timer !== undefined) clearTimeout(op.timer);
  if (op.abort) op.abort.abort();
}
