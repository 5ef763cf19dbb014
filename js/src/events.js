// The client's events in the host's conventions: `on(type, fn)` / `off(type, fn)` (also
// `addEventListener` / `removeEventListener`), the `onEvent` option, and a `logger` like the
// openai SDK's (default `console`, level `warn`): events are logged at `debug`. A throwing
// listener never breaks a request, and is never silent: its error goes to `error` listeners, or
// to the logger when there are none.

const LEVELS = ["off", "error", "warn", "info", "debug"];

function configError(makeError, field, problem) {
  return makeError(`invalid config: ${field} ${problem}`, { kind: "invalid_config", field, problem });
}

export class PoolEvents {
  #listeners = new Map(); // type ("*" for every type) → Set of functions
  #logger;
  #level;

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

  /** Delivers one event from the pool to its listeners and the logger. */
  emit(event) {
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
