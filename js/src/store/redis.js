// A store on Redis or Valkey (node-redis' `@redis/client`, loaded only when a redis:// URL is
// configured). Per namespace `ns`:
//   ps:{ns}:key:<id>         hash: counters (HINCRBY), rests, limits, times, `v` (batches applied)
//   ps:{ns}:month:<yyyymm>   hash: <id> → successes that month (monthlyQuota survives restarts)
//   ps:{ns}:applied:<inst>   the last batch number applied from one instance (a resent batch is skipped)
//   ps:{ns}:events           channel: every applied batch, for the other instances
// `{ns}` is a hash tag, so a namespace lives in one Redis Cluster slot. Everything expires
// after `ttlSeconds` without writes; month hashes live about two months.

import { COUNTERS } from "./record.js";

// One key's fields in a batch, in the order the script reads them.
const FIELDS = ["id", "month", ...COUNTERS, "monthSuccesses", "cooldownUntil", "cooldownReason", "invalid", "remainingRequests", "requestsResetAt", "remainingTokens", "tokensResetAt", "limitsObservedAt", "lastUsedAt", "lastError", "reset"];
const STATE = ["cooldownUntil", "cooldownReason", "invalid", "remainingRequests", "requestsResetAt", "remainingTokens", "tokensResetAt", "limitsObservedAt", "lastUsedAt", "lastError"];
const NUMERIC = new Set(["v", "month", "monthSuccesses", ...COUNTERS, "cooldownUntil", "remainingRequests", "requestsResetAt", "remainingTokens", "tokensResetAt", "limitsObservedAt", "lastUsedAt"]);
const MONTH_TTL_SECONDS = 62 * 86_400;
const REDIS_CLIENT = ["@redis", "client"];

// Applies one batch atomically: KEYS = the sender's applied number, then (key hash, month hash) per key;
// ARGV = from, seq, ttl, channel, month ttl, then FIELDS per key. Publishes and returns
// the applied entries as JSON ({ from, keys: [{ id, v, d, s, reset }] }).
const APPLY = `
local from, seq, ttl, channel, mttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local N = ${FIELDS.length}
local counters = {${COUNTERS.map((c) => `'${c}'`).join(",")}}
local state = {${STATE.map((c) => `'${c}'`).join(",")}}
local function num(s) if s == nil or s == false or s == '' then return nil end return tonumber(s) end
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq <= last then return cjson.encode({from = from, dup = true}) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
local out = {}
for i = 0, (#ARGV - 5) / N - 1 do
  local a = 5 + i * N
  local function arg(j) return ARGV[a + j] end
  local h, mh = KEYS[2 + i * 2], KEYS[3 + i * 2]
  local id = arg(1)
  if arg(${FIELDS.indexOf("reset") + 1}) == '1' then redis.call('HDEL', h, 'cooldownUntil', 'cooldownReason', 'invalid') end
  local d = {}
  for j, c in ipairs(counters) do
    local x = arg(2 + j)
    d[c] = x
    if x ~= '0' then redis.call('HINCRBY', h, c, x) end
  end
  local ms = arg(${FIELDS.indexOf("monthSuccesses") + 1})
  d.month = arg(2)
  d.monthSuccesses = ms
  if ms ~= '0' then
    redis.call('HINCRBY', mh, id, ms)
    redis.call('EXPIRE', mh, mttl)
  end
  local cu = num(arg(${FIELDS.indexOf("cooldownUntil") + 1}))
  if cu and cu > (num(redis.call('HGET', h, 'cooldownUntil')) or 0) then
    redis.call('HSET', h, 'cooldownUntil', arg(${FIELDS.indexOf("cooldownUntil") + 1}))
    local r = arg(${FIELDS.indexOf("cooldownReason") + 1})
    if r == '' then redis.call('HDEL', h, 'cooldownReason') else redis.call('HSET', h, 'cooldownReason', r) end
  end
  if arg(${FIELDS.indexOf("invalid") + 1}) == '1' then redis.call('HSET', h, 'invalid', '1') end
  local lo = num(arg(${FIELDS.indexOf("limitsObservedAt") + 1}))
  if lo and lo > (num(redis.call('HGET', h, 'limitsObservedAt')) or 0) then
    for _, f in ipairs({'remainingRequests', 'requestsResetAt', 'remainingTokens', 'tokensResetAt', 'limitsObservedAt'}) do
      local x = ARGV[a + ({${FIELDS.map((f, i) => `${f}=${i + 1}`).join(",")}})[f]]
      if x == '' then redis.call('HDEL', h, f) else redis.call('HSET', h, f, x) end
    end
  end
  local lu = num(arg(${FIELDS.indexOf("lastUsedAt") + 1}))
  if lu and lu >= (num(redis.call('HGET', h, 'lastUsedAt')) or 0) then
    redis.call('HSET', h, 'lastUsedAt', arg(${FIELDS.indexOf("lastUsedAt") + 1}))
    local le = arg(${FIELDS.indexOf("lastError") + 1})
    if le ~= '' then redis.call('HSET', h, 'lastError', le) end
  end
  local v = redis.call('HINCRBY', h, 'v', 1)
  redis.call('EXPIRE', h, ttl)
  local now = redis.call('HMGET', h, unpack(state))
  local s = {}
  for j, f in ipairs(state) do if now[j] then s[f] = now[j] end end
  local entry = {id = id, v = v, d = d, s = s}
  if arg(${FIELDS.indexOf("reset") + 1}) == '1' then entry.reset = true end
  out[#out + 1] = entry
end
local message = cjson.encode({from = from, keys = out})
redis.call('PUBLISH', channel, message)
return message
`;

// Reads the records of the given ids: KEYS = (key hash, month hash) per id, ARGV = ids.
const LOAD = `
local out = {}
for i, id in ipairs(ARGV) do
  local flat = redis.call('HGETALL', KEYS[i * 2 - 1])
  if #flat > 0 then
    local r = {id = id}
    for j = 1, #flat, 2 do r[flat[j]] = flat[j + 1] end
    r.monthSuccesses = redis.call('HGET', KEYS[i * 2], id) or '0'
    out[#out + 1] = r
  end
end
return cjson.encode(out)
`;

const arg = (v) => (v === null || v === undefined ? "" : typeof v === "boolean" ? (v ? "1" : "0") : String(v));

/** Stored strings back to the snapshot's types. */
function typed(fields) {
  const out = {};
  for (const [k, v] of Object.entries(fields || {})) {
    if (k === "invalid") out[k] = v === "1" || v === true;
    else if (NUMERIC.has(k)) out[k] = Number(v);
    else out[k] = v;
  }
  for (const f of STATE) if (!(f in out)) out[f] = f === "invalid" ? false : null;
  return out;
}

function entries(json) {
  const m = JSON.parse(json);
  if (!m || !Array.isArray(m.keys)) return { from: m && m.from, keys: [] };
  return { from: m.from, keys: m.keys.map((e) => ({ id: String(e.id), v: Number(e.v), d: typed(e.d), s: typed(e.s), reset: e.reset === true || undefined })) };
}

/** Creates a Redis store for `url` (redis:// or rediss://). Connects in the background. */
export function createRedisStore(url, { ttlSeconds = 35 * 86_400, connectTimeoutMs = 2000 } = {}) {
  return new RedisStore(url, ttlSeconds, connectTimeoutMs);
}

class RedisStore {
  kind = "redis";
  #url;
  #ttl;
  #connectTimeoutMs;
  #clients = null;
  #sha = new Map();
  #closed = false;
  #subConnecting = null;

  constructor(url, ttlSeconds, connectTimeoutMs) {
    this.#url = url;
    this.#ttl = Math.max(60, Math.floor(ttlSeconds));
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  // Two connections: one for commands, one held by the subscription. Failed commands are not
  // queued while disconnected (the caller keeps its work and resends), and reconnection is
  // retried forever with a capped backoff.
  #open() {
    if (this.#closed) return Promise.reject(new Error("the store is closed"));
    if (!this.#clients) {
      // Not a literal specifier: a bundler building an app that does not use Redis must not try
      // to resolve it. An app that does keeps @redis/client in node_modules, loaded at run time.
      this.#clients = import(REDIS_CLIENT.join("/")).then(({ createClient }) => {
        const options = {
          url: this.#url,
          disableOfflineQueue: true,
          socket: { connectTimeout: this.#connectTimeoutMs, reconnectStrategy: (retries) => Math.min(50 * (retries + 1), 1000) },
        };
        const command = createClient(options);
        const sub = command.duplicate({ disableOfflineQueue: false });
        // Errors are reported through the calls that fail; an unheard 'error' event would end the process.
        command.on("error", () => {});
        // Calls made before the first connection wait for it (each caller bounds its wait).
        const first = command.connect().then(
          () => true,
          () => false,
        );
        return { command, sub, first };
      });
    }
    return this.#clients;
  }

  async #eval(script, keys, args) {
    const { command, first } = await this.#open();
    if (!command.isReady && !(await first && command.isReady)) throw new Error("not connected");
    let sha = this.#sha.get(script);
    if (sha) {
      try {
        return await command.sendCommand(["EVALSHA", sha, String(keys.length), ...keys, ...args]);
      } catch (e) {
        if (!String(e && e.message).startsWith("NOSCRIPT")) throw e;
      }
    }
    sha = await command.sendCommand(["SCRIPT", "LOAD", script]);
    this.#sha.set(script, sha);
    return command.sendCommand(["EVALSHA", sha, String(keys.length), ...keys, ...args]);
  }

  async apply(ns, batch) {
    const keys = [`ps:{${ns}}:applied:${batch.from}`];
    const args = [batch.from, String(batch.seq), String(this.#ttl), `ps:{${ns}}:events`, String(MONTH_TTL_SECONDS)];
    for (const k of batch.keys) {
      keys.push(`ps:{${ns}}:key:${k.id}`, `ps:{${ns}}:month:${k.month ?? batch.month}`);
      for (const f of FIELDS) args.push(f === "month" ? arg(k.month ?? batch.month) : arg(k[f]));
    }
    return entries(await this.#eval(APPLY, keys, args)).keys;
  }

  async load(ns, ids, month) {
    const keys = ids.flatMap((id) => [`ps:{${ns}}:key:${id}`, `ps:{${ns}}:month:${month}`]);
    const records = JSON.parse(await this.#eval(LOAD, keys, ids));
    return (Array.isArray(records) ? records : []).map((r) => ({ ...typed(r), id: String(r.id), month }));
  }

  async subscribe(ns, onMessage, onConnection) {
    const { sub } = await this.#open();
    let subscribed = false;
    sub.on("error", () => !this.#closed && onConnection(false));
    // After a reconnect the client has re-subscribed before it is 'ready'.
    sub.on("ready", () => subscribed && !this.#closed && onConnection(true));
    if (this.#closed) return;
    this.#subConnecting = sub.connect();
    await this.#subConnecting;
    await sub.subscribe(`ps:{${ns}}:events`, (json) => {
      try {
        onMessage(entries(json));
      } catch {} // a message that does not parse is skipped; the next resync repairs it
    });
    subscribed = true;
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#clients) return;
    const { command, sub, first } = await this.#clients;
    // A connection being set up is let finish (bounded), then closed: destroying one mid-setup
    // can leave its socket open and the process running.
    let timer;
    const bound = new Promise((r) => (timer = setTimeout(r, this.#connectTimeoutMs)));
    await Promise.race([Promise.all([first, this.#subConnecting?.catch(() => {})]), bound]);
    clearTimeout(timer);
    for (const c of [sub, command]) {
      try {
        if (c.isReady) await c.close();
        else if (c.isOpen) c.destroy();
      } catch {
        if (c.isOpen) c.destroy();
      }
    }
  }
}
