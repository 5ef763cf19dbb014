// Keeps one pool's local state in step with a shared store. The pool itself is the local
// copy every request reads; this only exchanges deltas in the background:
// - after work, the counters since the last exchange and the current rests and limits go to
//   the store in one batch (at once after a key is put to rest, else every `flushIntervalMs`);
// - every batch any instance applies comes back by subscription and is merged in;
// - after a start or an outage the whole state is loaded again (resync).
// A batch is retried with the same sequence number until the store acknowledges it, and the
// store skips a number it has seen, so a lost reply never counts work twice.

import { COUNTERS, cleanKey, utcMonth, stateOf } from "./record.js";

const DEFAULTS = { flushIntervalMs: 250, timeoutMs: 2000, retryMs: 250, closeTimeoutMs: 2000 };
const MAX_SEEN = 4096;

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`store ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** This month's successes of a snapshot key at `month` (0 when it counts another month). */
function monthUse(k, month) {
  return k && k.month === month ? k.monthSuccesses || 0 : 0;
}

/** Per key: the versions of the stored record already reflected locally. */
class Seen {
  #floor = new Map();
  #above = new Map();

  has(id, v) {
    return v <= (this.#floor.get(id) ?? 0) || Boolean(this.#above.get(id)?.has(v));
  }
  add(id, v) {
    let floor = this.#floor.get(id) ?? 0;
    if (v <= floor) return;
    let above = this.#above.get(id);
    if (!above) this.#above.set(id, (above = new Set()));
    above.add(v);
    while (above.has(floor + 1)) above.delete(++floor);
    this.#floor.set(id, floor);
  }
  reset(id, v) {
    this.#floor.set(id, v);
    this.#above.delete(id);
  }
  /** True when versions pile up above a gap, i.e. messages were lost. */
  get gapped() {
    for (const s of this.#above.values()) if (s.size > MAX_SEEN) return true;
    return false;
  }
}

export class SharedState {
  #pool;
  #adapter;
  #namespace;
  #opts;
  #instance = randomId();
  #seq = 0;
  #base = new Map(); // id → the key's exported state minus this instance's unsent work
  #pending = null; // the batch sent and not yet acknowledged
  #seen = new Seen();
  #queue = Promise.resolve();
  #timer = null;
  #urgent = false;
  #loading = false;
  #held = []; // messages that arrived while loading
  #healthy = false;
  #warned = false;
  #needsResync = true;
  #closed = false;
  #lastSyncAt = null;
  #lastError = null;
  #counts = { batches: 0, messages: 0, resyncs: 0, failures: 0 };
  #warn;
  #notify;

  #resets = new Set(); // keys re-enabled here, whose rests the next batch clears everywhere
  #waiting = null; // a flush queued and not started yet (later calls join it)

  /**
   * `pool`: the WasmPool. `adapter`: a store (the StoreAdapter interface of index.d.ts).
   * `warn(message)`: called once per outage. `notify(event)`: store events for `onEvent`.
   */
  constructor(pool, adapter, namespace, opts = {}, warn = () => {}, notify = () => {}) {
    this.#pool = pool;
    this.#adapter = adapter;
    this.#namespace = namespace;
    this.#opts = { ...DEFAULTS, ...opts };
    this.#warn = warn;
    this.#notify = notify;
  }

  get #subscribes() {
    return typeof this.#adapter.subscribe === "function";
  }

  /** Subscribes and loads the shared state, in the background. */
  start() {
    const subscribed = this.#subscribes
      ? Promise.resolve()
          .then(() => this.#adapter.subscribe(this.#namespace, (m) => this.#onMessage(m), (up) => this.#onConnection(up)))
          .catch((e) => this.#fail(e))
      : Promise.resolve();
    return this.#enqueue(async () => {
      await subscribed;
      await this.#resync();
    });
  }

  /** A pool event: a rest or quarantine goes at once, other work within `flushIntervalMs`. */
  onPoolEvent(event) {
    if (event.type === "cooldown") this.noteUrgent();
    else this.noteWork();
  }

  /** Some work was done: send it within `flushIntervalMs`. */
  noteWork() {
    if (this.#timer === null && !this.#closed) this.#timer = setTimeout(() => this.#tick(), this.#opts.flushIntervalMs);
  }

  /** A key changed standing (rest, quarantine): send at once. */
  noteUrgent() {
    if (this.#closed || this.#urgent) return;
    this.#urgent = true;
    queueMicrotask(() => {
      this.#urgent = false;
      this.flush();
    });
  }

  /** A key was re-enabled here: clear its rest and invalid verdict in the store too. */
  noteReset(id) {
    this.#resets.add(id);
    this.noteUrgent();
  }

  #tick() {
    this.#timer = null;
    this.flush();
  }

  /** Sends the work done since the last exchange (and a resync if one is due). */
  flush() {
    // One queued flush at most: it sends everything done up to when it starts.
    if (this.#waiting) return this.#waiting;
    const run = this.#enqueue(async () => {
      this.#waiting = null;
      // Without a subscription, every exchange also loads the others' work.
      if (this.#needsResync || !this.#subscribes) await this.#resync();
      else await this.#send();
    });
    this.#waiting = run;
    return run;
  }

  #enqueue(step) {
    const run = this.#queue.then(step).catch((e) => this.#fail(e));
    this.#queue = run;
    return run;
  }

  async #send() {
    if (!this.#pending) this.#pending = this.#nextBatch();
    if (!this.#pending) return;
    const batch = this.#pending;
    const applied = await withTimeout(this.#adapter.apply(this.#namespace, batch), this.#opts.timeoutMs, "write");
    if (this.#pending === batch) this.#pending = null;
    this.#counts.batches++;
    this.#ok();
    // The acknowledgement carries the records as stored now: take their rests and limits
    // (others' counters arrive by subscription, or by a load when there is none).
    this.#absorb(applied, true);
  }

  /** The work since the last exchange as one batch, or null when there is none. */
  #nextBatch() {
    const month = utcMonth(Date.now());
    const keys = [];
    for (const k of this.#pool.exportState().keys) {
      const b = this.#base.get(k.id);
      const delta = { id: k.id, ...stateOf(k), month: k.month ?? null };
      let changed = !b || this.#resets.has(k.id);
      for (const c of COUNTERS) {
        delta[c] = Math.max(0, k[c] - (b ? b[c] : 0));
        if (delta[c] > 0) changed = true;
      }
      delta.monthSuccesses = b && b.month === k.month ? Math.max(0, (k.monthSuccesses || 0) - (b.monthSuccesses || 0)) : k.monthSuccesses || 0;
      if (this.#resets.delete(k.id)) delta.reset = true;
      if (!changed && b) changed = Object.entries(stateOf(k)).some(([f, v]) => b[f] !== v);
      this.#base.set(k.id, k);
      if (changed) keys.push(delta);
    }
    if (keys.length === 0) return null;
    return { from: this.#instance, seq: ++this.#seq, month, keys };
  }

  /** A batch some instance applied (possibly this one). */
  #onMessage(message) {
    if (this.#closed || !message || !Array.isArray(message.keys)) return;
    if (this.#loading) {
      this.#held.push(message);
      return;
    }
    this.#counts.messages++;
    if (message.from === this.#instance) {
      for (const e of message.keys) if (e && typeof e.v === "number") this.#seen.add(e.id, e.v);
      return;
    }
    this.#absorb(message.keys, false);
    if (this.#seen.gapped) this.#needsResync = true;
  }

  /**
   * Merges entries `{ id, v, d, s }` into the pool. With `own` (this instance's write) only the
   * state is taken; otherwise the counter delta `d` is added too, once per version.
   */
  #absorb(entries, own) {
    if (!Array.isArray(entries)) return;
    const keys = [];
    const resets = [];
    for (const e of entries) {
      if (!e || typeof e.id !== "string" || typeof e.v !== "number") continue;
      const known = this.#base.get(e.id);
      if (!known) continue; // not a key of this pool
      const fresh = !this.#seen.has(e.id, e.v);
      this.#seen.add(e.id, e.v);
      if (own || !fresh) {
        keys.push(cleanKey({ id: e.id, ...e.s }));
        continue;
      }
      if (e.reset) resets.push(e.id);
      const d = e.d && typeof e.d === "object" ? e.d : {};
      const key = cleanKey({ ...d, ...e.s, id: e.id, month: d.month, monthSuccesses: d.monthSuccesses });
      keys.push(key);
      // Others' work is not this instance's to send: it joins the base as well.
      const base = { ...known };
      for (const c of COUNTERS) base[c] = (base[c] || 0) + key[c];
      if (key.month !== null && key.month === base.month) base.monthSuccesses = (base.monthSuccesses || 0) + key.monthSuccesses;
      else if (key.month !== null && (base.month == null || key.month > base.month)) {
        base.month = key.month;
        base.monthSuccesses = key.monthSuccesses;
      }
      this.#base.set(e.id, base);
    }
    if (resets.length) this.#clearRests(resets);
    if (keys.length) this.#pool.mergeState({ keys });
    this.#lastSyncAt = Date.now();
  }

  /** Another instance re-enabled these keys: drop their rests here too. */
  #clearRests(ids) {
    const keys = this.#pool.exportState().keys.filter((k) => ids.includes(k.id));
    for (const k of keys) Object.assign(k, { cooldownUntil: null, cooldownReason: null, invalid: false });
    this.#pool.importState({ keys });
  }

  /** Loads every key's stored record; local state becomes stored state plus unsent work. */
  async #resync() {
    this.#needsResync = true;
    if (this.#pending) await this.#send(); // the store must hold this instance's sent work first
    this.#loading = true;
    try {
      const ids = this.#pool.exportState().keys.map((k) => k.id);
      const month = utcMonth(Date.now());
      const records = await withTimeout(this.#adapter.load(this.#namespace, ids, month), this.#opts.timeoutMs, "load");
      const stored = new Map((Array.isArray(records) ? records : []).map((r) => [r.id, r]));
      const keys = [];
      for (const k of this.#pool.exportState().keys) {
        const r = stored.has(k.id) ? cleanKey(stored.get(k.id)) : null;
        if (!r) {
          // Not stored (new, expired or a wiped store): its versions start again from 1.
          this.#seen.reset(k.id, 0);
          continue;
        }
        r.v = Number.isSafeInteger(stored.get(k.id).v) ? stored.get(k.id).v : 0;
        const b = this.#base.get(k.id);
        const key = { ...k };
        for (const c of COUNTERS) key[c] = (r[c] || 0) + Math.max(0, k[c] - (b ? b[c] : 0));
        const unsentMonth = b && b.month === k.month ? Math.max(0, (k.monthSuccesses || 0) - (b.monthSuccesses || 0)) : k.monthSuccesses || 0;
        key.month = month;
        key.monthSuccesses = (r.month === month ? r.monthSuccesses || 0 : 0) + (k.month === month ? unsentMonth : 0);
        // Rests, limits and times: whichever is later or newer, as a merge would.
        if ((r.cooldownUntil ?? 0) > (k.cooldownUntil ?? 0)) Object.assign(key, { cooldownUntil: r.cooldownUntil, cooldownReason: r.cooldownReason });
        key.invalid = Boolean(k.invalid || r.invalid);
        if ((r.limitsObservedAt ?? 0) > (k.limitsObservedAt ?? 0)) {
          for (const f of ["remainingRequests", "requestsResetAt", "remainingTokens", "tokensResetAt", "limitsObservedAt"]) key[f] = r[f];
        }
        if ((r.lastUsedAt ?? 0) > (k.lastUsedAt ?? 0)) Object.assign(key, { lastUsedAt: r.lastUsedAt, lastError: r.lastError ?? k.lastError });
        keys.push(key);
        const base = { ...key };
        for (const c of COUNTERS) base[c] = r[c] || 0;
        base.monthSuccesses = r.month === month ? r.monthSuccesses || 0 : 0;
        this.#base.set(k.id, base);
        this.#seen.reset(k.id, r.v || 0);
      }
      for (const k of this.#pool.exportState().keys) if (!this.#base.has(k.id)) this.#base.set(k.id, { ...k, ...zeroCounters(), monthSuccesses: 0 });
      if (keys.length) this.#pool.importState({ keys });
      this.#needsResync = false;
      this.#counts.resyncs++;
      this.#lastSyncAt = Date.now();
      this.#ok();
    } finally {
      this.#loading = false;
      const held = this.#held;
      this.#held = [];
      for (const m of held) this.#onMessage(m);
    }
    await this.#send(); // work done before the load, or during an outage
  }

  #onConnection(up) {
    if (up) {
      // (Re)subscribed: messages may have been missed while away.
      this.#needsResync = true;
      this.flush();
    } else this.#fail(new Error("store connection lost"));
  }

  #ok() {
    if (!this.#healthy) {
      this.#healthy = true;
      this.#warned = false;
      this.#lastError = null;
      this.#notify({ type: "storeHealthy", kind: this.#adapter.kind });
    }
  }

  #fail(e) {
    if (this.#closed) return;
    this.#counts.failures++;
    this.#lastError = e && e.message ? String(e.message) : String(e);
    this.#needsResync = true;
    const was = this.#healthy;
    this.#healthy = false;
    if (!this.#warned) {
      this.#warned = true;
      this.#warn(`poolswitch: the ${this.#adapter.kind} store is unreachable (${this.#lastError}); serving on local state until it returns`);
      if (was) this.#notify({ type: "storeUnhealthy", kind: this.#adapter.kind, error: this.#lastError });
    }
    // Try again later: the work stays local until then.
    if (!this.#closed && this.#timer === null) this.#timer = setTimeout(() => this.#tick(), this.#opts.retryMs);
  }

  status() {
    return {
      kind: this.#adapter.kind,
      namespace: this.#namespace,
      healthy: this.#healthy,
      lastSyncAt: this.#lastSyncAt,
      lastError: this.#lastError,
      unsent: this.#pending !== null,
      batches: this.#counts.batches,
      messages: this.#counts.messages,
      resyncs: this.#counts.resyncs,
      failures: this.#counts.failures,
    };
  }

  /** Sends what is left (bounded wait) and releases the adapter. */
  async close() {
    if (this.#closed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const last = this.#healthy ? this.flush() : Promise.resolve();
    this.#closed = true;
    await withTimeout(last, this.#opts.closeTimeoutMs, "close").catch(() => {});
    if (typeof this.#adapter.close === "function") await this.#adapter.close();
  }
}

function zeroCounters() {
  const z = {};
  for (const c of COUNTERS) z[c] = 0;
  return z;
}
