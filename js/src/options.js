// Checks of what a caller hands the client, before anything reaches the pool: option names
// (a misspelt one is refused with the nearest known name), signals and snapshots.

/** Options of request(), get(), post(), … */
export const REQUEST_OPTIONS = ["json", "body", "headers", "query", "signal", "timeoutMs", "deadlineMs", "retryAttempts", "stream"];

/** Constructor options the JS wrapper handles itself; the core checks all the others. */
export const WRAPPER_OPTIONS = ["fetch", "dispatcher", "onEvent", "logger", "logLevel", "dangerouslyAllowBrowser"];

// What other HTTP clients call the same thing.
const REQUEST_SYNONYMS = { timeout: "timeoutMs", deadline: "deadlineMs", data: "json", params: "query", searchParams: "query" };

function distance(a, b) {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** The known name closest to `name`, if one is close enough to be what was meant. */
export function nearest(name, known, synonyms = {}) {
  if (Object.hasOwn(synonyms, name) && known.includes(synonyms[name])) return synonyms[name];
  if (name.length > 64) return undefined;
  let best;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d <= Math.max(2, Math.floor(k.length / 4)) && d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** ``is not a known option; did you mean `json`?`` */
function unknownProblem(what, suggestion) {
  return `is not a known ${what}${suggestion ? `; did you mean \`${suggestion}\`?` : ""}`;
}

/** The first name of `options` that is not in `known`. */
function firstUnknown(options, known) {
  for (const name in options) if (Object.hasOwn(options, name) && !known.includes(name)) return name;
  return undefined;
}

/**
 * The problem with request options `opts` (an object: its first unknown name), or undefined.
 * Returns `{ field, problem }`.
 */
export function requestOptionsProblem(opts) {
  const name = firstUnknown(opts, REQUEST_OPTIONS);
  if (name === undefined) return undefined;
  return { field: name, problem: unknownProblem("option", nearest(name, REQUEST_OPTIONS, REQUEST_SYNONYMS)) };
}

/**
 * A misspelt wrapper option, from the core's error about the top-level config field `field`:
 * the core never sees the wrapper's options (fetch, onEvent, …), so a name a small edit away
 * from one of them is that option misspelt, whatever the core found wrong with it
 * (`onEvnt: () => {}` is not even data to it). Returns `{ field, problem }`, or undefined to keep
 * the core's own error.
 */
export function unknownFieldProblem(field, problem) {
  if (/[.[]/.test(field) || WRAPPER_OPTIONS.includes(field)) return undefined;
  const ours = nearest(field, WRAPPER_OPTIONS);
  const theirs = /did you mean `([^`]+)`/.exec(problem)?.[1];
  if (ours && (!theirs || distance(field, ours) < distance(field, theirs))) return { field, problem: unknownProblem("field", ours) };
  return undefined;
}

/**
 * An AbortSignal the host's fetch accepts, from what the caller passed: a real AbortSignal as
 * it is, a foreign one (a polyfill's, another realm's) bridged to a real one. Throws a
 * TypeError naming the problem for anything else.
 */
export function toAbortSignal(signal) {
  if (signal === undefined || signal === null) return undefined;
  if (typeof AbortSignal !== "undefined" && signal instanceof AbortSignal) return signal;
  if (typeof signal !== "object" || typeof signal.aborted !== "boolean" || typeof signal.addEventListener !== "function") {
    throw new TypeError("signal must be an AbortSignal");
  }
  const controller = new AbortController();
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  return controller.signal;
}
