// PoolSwitchClient's JS surface over the WASI component (transpiled by jco), so the shared
// scenarios can drive the component too. Calls are synchronous under jco (its wasi:http blocks
// the thread); only the parts of the surface the WIT interface has are provided.

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
        const detail = data && data.error && data.error.message;
        return new PoolSwitchError(`upstream answered ${val.status} (${snake(val.outcome)})${detail ? `: ${detail}` : ""}`, {
          kind: "upstream", status: val.status, reason: snake(val.outcome), keyId: val.keyId, attempts: val.attempts, retryAt: toNum(val.retryAtMs), data, text,
        });
      }
      default:
        return new PoolSwitchError(String(val), { kind: snake(tag) });
    }
  }

  function witConfig(o) {
    const keys = (o.keys ?? []).map((k) =>
      typeof k === "string"
        ? { value: k }
        : { id: k.id, value: k.value, monthlyQuota: toBig(k.monthlyQuota), weight: k.weight, metadataJson: k.metadata ? JSON.stringify(k.metadata) : undefined },
    );
    return {
      upstreamBaseUrl: o.upstreamBaseUrl,
      keys,
      strategy: o.strategy ? kebab(o.strategy) : undefined,
      retryAttempts: o.retryAttempts,
      cooldownSeconds: toBig(o.cooldownSeconds),
      authHeaderName: o.authHeaderName,
      authScheme: o.authScheme === null ? "" : o.authScheme,
      queryAuthParam: o.queryAuthParam,
      requestTimeoutMs: toBig(o.requestTimeoutMs),
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
      if (options.fetch !== undefined && typeof options.fetch !== "function" && typeof options.fetch?.fetch !== "function") {
        throw new PoolSwitchError("invalid config: fetch", { kind: "invalid_config", field: "fetch" });
      }
      if (typeof options.retryAttempts === "number" && options.retryAttempts < 0) {
        // WIT's u32 cannot carry it: the same verdict the JS binding gives.
        throw new PoolSwitchError("invalid config: retryAttempts must not be negative", { kind: "invalid_config", field: "retryAttempts" });
      }
      const strategies = ["round_robin", "least_used", "random", "quota_failover", "weighted"];
      if (options.strategy !== undefined && !strategies.includes(options.strategy)) {
        throw new PoolSwitchError(`invalid config: strategy unknown variant \`${options.strategy}\``, { kind: "invalid_config", field: "strategy" });
      }
      for (const [i, k] of (options.keys ?? []).entries()) {
        if (k && typeof k === "object" && k.monthlyQuota !== undefined && typeof k.monthlyQuota !== "number") {
          throw new PoolSwitchError("invalid config: monthlyQuota must be a number", { kind: "invalid_config", field: `keys[${i}].monthlyQuota` });
        }
      }
      try {
        this.#pool = client.Pool.create(witConfig(options));
      } catch (e) {
        throw fromWit(e);
      }
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
      let r;
      try {
        r = this.#pool.request({ method, path, query, headers, body: body === undefined ? undefined : new TextEncoder().encode(body), timeoutMs: toBig(opts.timeoutMs) });
      } catch (e) {
        throw fromWit(e);
      }
      const text = new TextDecoder().decode(r.body);
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

    addKey(key) {
      try {
        return this.#pool.addKey(typeof key === "string" ? { value: key } : { id: key.id, value: key.value });
      } catch (e) {
        throw fromWit(e);
      }
    }
    removeKey(id) { this.#call(() => this.#pool.removeKey(id)); }
    enableKey(id) { this.#call(() => this.#pool.setKeyEnabled(id, true)); }
    disableKey(id) { this.#call(() => this.#pool.setKeyEnabled(id, false)); }
    exportState() { return JSON.parse(this.#pool.exportState()); }
    #call(f) {
      try {
        return f();
      } catch (e) {
        throw fromWit(e);
      }
    }
  }

  return { PoolSwitchClient, PoolSwitchError };
}
