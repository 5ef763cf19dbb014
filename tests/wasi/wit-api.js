// The scenarios' calling conventions (PoolSwitchClient's) mapped onto the poolswitch:client WIT
// interface, so every WASI host runs the one scenario list (tests/scenarios/scenarios.json) on the
// component: jco in-process, and Wasmtime through wit-host.js. A mapping only: options become WIT
// records, WIT errors become PoolSwitchError fields, response bytes are decoded as JSON or text. No
// rule of the pool is checked, decided or worded here: what the WIT interface cannot express is
// skipped with its reason in the list (`skip.wasi`).

const toBig = (n) => (n === undefined || n === null ? undefined : BigInt(n));
const toNum = (v) => (typeof v === "bigint" ? Number(v) : v);
const snake = (s) => s.replace(/-/g, "_");
const kebab = (s) => s.replace(/_/g, "-");
const camel = (s) => s.replace(/[_-]([a-z])/g, (_, c) => c.toUpperCase());

function plain(value) {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value ?? null;
}

/** `client` is the host's binding of the interface: jco's, or wit-host.js's of the same shape. */
export function componentApi(client) {
  class PoolSwitchError extends Error {
    constructor(message, fields = {}) {
      super(message);
      this.name = "PoolSwitchError";
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) this[k] = v;
    }
  }

  function fromWit(e) {
    const err = e && e.payload !== undefined ? e.payload : e;
    if (!err || typeof err.tag !== "string") return e;
    const { tag, val } = err;
    switch (tag) {
      case "invalid-config":
        return new PoolSwitchError(`invalid config: ${camel(val.field)} ${val.problem}`, { kind: "invalid_config", field: camel(val.field), problem: val.problem });
      case "no-healthy-keys":
        return new PoolSwitchError("no healthy keys", { kind: "no_healthy_keys", retryAt: toNum(val) });
      case "timeout":
        return new PoolSwitchError(`timed out after ${val.afterMs} ms on key ${val.keyId}`, { kind: "timeout", keyId: val.keyId, afterMs: toNum(val.afterMs) });
      case "network":
        return new PoolSwitchError(`network error on key ${val.keyId}: ${val.message}`, { kind: "network", keyId: val.keyId });
      case "upstream": {
        const text = new TextDecoder().decode(val.body);
        let data;
        try {
          data = JSON.parse(text);
        } catch {}
        return new PoolSwitchError(`upstream answered ${val.status} (${snake(val.outcome)})`, {
          kind: "upstream", status: val.status, reason: snake(val.outcome), keyId: val.keyId, attempts: val.attempts, retryAt: toNum(val.retryAtMs), data, text,
        });
      }
      default:
        return new PoolSwitchError(String(val), { kind: snake(tag) });
    }
  }

  function call(f) {
    try {
      return f();
    } catch (e) {
      throw fromWit(e);
    }
  }

  const witKey = (k) =>
    typeof k === "string"
      ? { value: k }
      : { id: k.id, value: k.value, monthlyQuota: toBig(k.monthlyQuota), weight: k.weight, metadataJson: k.metadata === undefined ? undefined : JSON.stringify(k.metadata) };

  // `onEvent` has no counterpart and is not passed on (scenarios that assert events are skipped on WASI).
  function witConfig(o) {
    return {
      upstreamBaseUrl: o.upstreamBaseUrl,
      keys: (o.keys ?? []).map(witKey),
      strategy: o.strategy === undefined ? undefined : kebab(o.strategy),
      retryAttempts: o.retryAttempts,
      cooldownSeconds: toBig(o.cooldownSeconds),
      authHeaderName: o.authHeaderName,
      authScheme: o.authScheme === null ? "" : o.authScheme,
      queryAuthParam: o.queryAuthParam,
      requestTimeoutMs: toBig(o.requestTimeoutMs),
      deadlineMs: toBig(o.deadlineMs),
      rateLimitPerSecond: o.rateLimitPerSecond,
      retryableMethods: o.retryableMethods,
      defaultHeaders: Object.entries(o.defaultHeaders ?? {}),
      backoffBaseMs: toBig(o.backoffBaseMs),
      backoffMaxMs: toBig(o.backoffMaxMs),
      maxWaitMs: toBig(o.maxWaitMs),
    };
  }

  class PoolSwitchClient {
    #pool;
    constructor(options) {
      this.#pool = call(() => client.Pool.create(witConfig(options)));
    }

    async request(method, path, opts = {}) {
      const headers = [...new Headers(opts.headers)];
      let body = opts.body;
      if (opts.json !== undefined) {
        body = JSON.stringify(opts.json);
        if (!headers.some(([k]) => k === "content-type")) headers.push(["content-type", "application/json"]);
      }
      const query = [];
      for (const [k, v] of Object.entries(opts.query ?? {})) for (const item of Array.isArray(v) ? v : [v]) query.push([k, String(item)]);
      const request = { method, path, query, headers, body: body === undefined ? undefined : new TextEncoder().encode(body), timeoutMs: toBig(opts.timeoutMs), deadlineMs: toBig(opts.deadlineMs), retryAttempts: opts.retryAttempts };
      const text = new TextDecoder().decode(call(() => this.#pool.request(request)).body);
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }

    get(path, opts) { return this.request("GET", path, opts); }
    post(path, opts) { return this.request("POST", path, opts); }

    status() {
      const s = plain(this.#pool.status());
      s.strategy = snake(s.strategy);
      for (const k of s.keys) {
        k.metadata = k.metadataJson ? JSON.parse(k.metadataJson) : null;
        delete k.metadataJson;
      }
      return s;
    }

    addKey(key) { return call(() => this.#pool.addKey(witKey(key))); }
    removeKey(id) { call(() => this.#pool.removeKey(id)); }
    enableKey(id) { call(() => this.#pool.setKeyEnabled(id, true)); }
    disableKey(id) { call(() => this.#pool.setKeyEnabled(id, false)); }
    exportState() { return JSON.parse(this.#pool.exportState()); }
  }

  // WIT errors are typed records: the scenarios check their fields, not a message in words.
  return { PoolSwitchClient, PoolSwitchError, messages: false };
}
