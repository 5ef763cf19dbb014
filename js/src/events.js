// The client's events in the host's conventions: `on(type, fn)` / `off(type, fn)` (also
// `addEventListener` / `removeEventListener`), the `onEvent` option, and a `logger` like the
// openai SDK's (default `console`, level `warn`): events are logged at `debug`. A throwing
// listener never breaks a request, and is never silent: its error goes to `error` listeners, or
// to the logger when there are none. Every event a request causes carries its `requestId` and
// `path`: the core emits events synchronously inside the pool call that caused them, so the
// request whose call is running is the one they belong to.

const LEVELS = ["off", "error", "warn", "info", "debug"];

// Pool methods that emit no events: called on the proxy as they are (their `this` reads the
// pool's pointer through it), with no wrapper made per call. limit() runs per rate-limit header.
const QUIET = new Set(["limit", "takeStep"]);

function configError(makeError, field, problem) {
  return makeError(`invalid config: ${field} ${problem}`, { kind: "invalid_config", field, problem });
}

export class PoolEvents {
  #listeners = new Map(); // type ("*" for every type) → Set of functions
  #logger;
  #level;
  #requests = 0;
  #current; // { requestId, path } of the request whose pool call is running

  /** `makeError(message, fields)` builds the client's PoolSwitchError. */
  constructor({ onEvent, logger, logLevel }, makeError) {
    if (onEvent !== undefined && typeof onEvent !== "function") throw configError(makeError, "onEvent", "must be a function");
    if (logger !== undefined && (logger === null || typeof logger !== "object")) throw configError(makeError, "logger", "must be an object with debug, info, warn and error methods");
    if (logLevel !== undefined && !LEVELS.includes(logLevel)) throw configError(makeError, "logLevel", `must be one of ${LEVELS.join(", ")}`);
    this.#logger = logger ?? globalThis.console;
    this.#level = LEVELS.indexOf(logLevel ?? "warn");
    if (onEvent) this.on("*", onEvent);
  }

  on(type, fn) {
    if (typeof fn !== "function") throw new TypeError("an event listener must be a function");
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
  }

  off(type, fn) {
    this.#listeners.get(type)?.delete(fn);
  }

  /** True once anything would receive an event. */
  get active() {
    return this.#listeners.size > 0 || this.#level >= LEVELS.indexOf("debug");
  }

  /**
   * The pool as one request sees it: events emitted during its calls carry the request's id and
   * path. Without listeners, the pool itself (no cost per request).
   */
  forRequest(pool, path) {
    if (!this.active) return pool;
    const context = { requestId: `req-${++this.#requests}`, path: String(path).split("?")[0] };
    return new Proxy(pool, {
      get: (target, name) => {
        const value = target[name];
        if (typeof value !== "function" || name === "constructor" || QUIET.has(name)) return value;
        return (...args) => {
          const outer = this.#current;
          this.#current = context;
          try {
            return value.apply(target, args);
          } finally {
            this.#current = outer;
          }
        };
      },
    });
  }

  /** Delivers one event from the pool to its listeners and the logger. */
  emit(poolEvent) {
    const event = this.#current ? { ...poolEvent, ...this.#current } : poolEvent;
    this.#log("debug", "poolswitch event", event);
    for (const type of [event.type, "*"]) {
      for (const fn of this.#listeners.get(type) ?? []) {
        try {
          fn(event);
        } catch (error) {
          this.#listenerFailed(error, event);
        }
      }
    }
  }

  #listenerFailed(error, event) {
    const failure = { type: "error", error, event };
    const handlers = this.#listeners.get("error");
    if (handlers && handlers.size > 0 && event.type !== "error") {
      for (const fn of handlers) {
        try {
          fn(failure);
        } catch (e) {
          this.#log("error", "poolswitch: an error listener threw", e);
        }
      }
    } else {
      this.#log("error", `poolswitch: a listener for "${event.type}" threw`, error);
    }
  }

  #log(level, message, detail) {
    if (LEVELS.indexOf(level) > this.#level) return;
    const write = this.#logger && this.#logger[level];
    if (typeof write === "function") write.call(this.#logger, message, detail);
  }
}
