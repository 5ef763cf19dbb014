// What a store keeps per key, and the rules every store applies to it: the same rules the
// Redis Lua script and the Durable Object follow, so any adapter built on these agrees.
// A record holds ids and state only, never a key value.

/** Counters that add across instances (a delta carries differences). */
export const COUNTERS = ["totalRequests", "successes", "errors", "failovers", "rateLimits", "streamErrors"];

/** The UTC month of epoch ms `ms` as yyyymm (202611), as the core counts `monthlyQuota`. */
export function utcMonth(ms) {
  const d = new Date(ms);
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}

/** An empty record for key `id`. `v` counts the deltas applied to it. */
export function emptyRecord(id) {
  const r = { id, v: 0, month: null, monthSuccesses: 0, cooldownUntil: null, cooldownReason: null, invalid: false };
  for (const c of COUNTERS) r[c] = 0;
  Object.assign(r, { remainingRequests: null, requestsResetAt: null, remainingTokens: null, tokensResetAt: null, limitsObservedAt: null, lastUsedAt: null, lastError: null });
  return r;
}

/** The non-counter state of a record or snapshot key, as a message carries it. */
export function stateOf(r) {
  return {
    cooldownUntil: r.cooldownUntil,
    cooldownReason: r.cooldownReason,
    invalid: r.invalid,
    remainingRequests: r.remainingRequests,
    requestsResetAt: r.requestsResetAt,
    remainingTokens: r.remainingTokens,
    tokensResetAt: r.tokensResetAt,
    limitsObservedAt: r.limitsObservedAt,
    lastUsedAt: r.lastUsedAt,
    lastError: r.lastError,
  };
}

const n = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const t = (v) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : null);

/**
 * Applies one instance's delta to a stored record: counters add, the later rest wins, the
 * newest provider report wins, invalid sticks (until a reset), this month's use adds.
 * Returns what was applied, as subscribers receive it: `{ id, v, d, s }`.
 */
export function applyDelta(record, delta) {
  const d = {};
  if (delta.reset) {
    record.cooldownUntil = null;
    record.cooldownReason = null;
    record.invalid = false;
  }
  for (const c of COUNTERS) {
    d[c] = n(delta[c]);
    record[c] += d[c];
  }
  const month = t(delta.month);
  d.month = month;
  d.monthSuccesses = n(delta.monthSuccesses);
  if (month !== null && month === record.month) record.monthSuccesses += d.monthSuccesses;
  else if (month !== null && (record.month === null || month > record.month)) {
    record.month = month;
    record.monthSuccesses = d.monthSuccesses;
  }
  const cu = t(delta.cooldownUntil);
  if (cu !== null && (record.cooldownUntil === null || cu > record.cooldownUntil)) {
    record.cooldownUntil = cu;
    record.cooldownReason = typeof delta.cooldownReason === "string" ? delta.cooldownReason : null;
  }
  if (delta.invalid === true) record.invalid = true;
  const lo = t(delta.limitsObservedAt);
  if (lo !== null && (record.limitsObservedAt === null || lo > record.limitsObservedAt)) {
    record.limitsObservedAt = lo;
    for (const f of ["remainingRequests", "remainingTokens"]) record[f] = typeof delta[f] === "number" ? n(delta[f]) : null;
    for (const f of ["requestsResetAt", "tokensResetAt"]) record[f] = t(delta[f]);
  }
  const lu = t(delta.lastUsedAt);
  if (lu !== null && (record.lastUsedAt === null || lu >= record.lastUsedAt)) {
    record.lastUsedAt = lu;
    if (typeof delta.lastError === "string") record.lastError = delta.lastError;
  }
  record.v += 1;
  return { id: record.id, v: record.v, d, s: stateOf(record), reset: delta.reset === true || undefined };
}

const TIMES = ["cooldownUntil", "remainingRequests", "requestsResetAt", "remainingTokens", "tokensResetAt", "limitsObservedAt", "lastUsedAt"];
const whole = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : null);

/**
 * A snapshot key from what a store returned (outside input): whole non-negative numbers,
 * strings and booleans where the core expects them, anything else dropped, so one bad value
 * cannot make the pool refuse the whole merge.
 */
export function cleanKey(k) {
  const out = { id: String(k.id) };
  for (const c of COUNTERS) out[c] = whole(k[c]) ?? 0;
  for (const f of TIMES) out[f] = whole(k[f]);
  out.month = whole(k.month);
  out.monthSuccesses = whole(k.monthSuccesses) ?? 0;
  out.invalid = k.invalid === true;
  out.cooldownReason = typeof k.cooldownReason === "string" ? k.cooldownReason : null;
  out.lastError = typeof k.lastError === "string" ? k.lastError.slice(0, 500) : null;
  return out;
}
