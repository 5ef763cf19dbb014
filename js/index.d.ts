// Types of poolswitch-wasm. Every runtime entry point (node, browser, workerd, require) exports the same API.

// The fetch types come from the host: the DOM lib, @types/node (undici), @cloudflare/workers-types,
// Deno or Bun. These empty declarations merge with the host's; they keep a project that has none of
// them (`lib: ["es2022"]`, no DOM) compiling.
declare global {
  interface Response {}
  interface Request {}
  interface Headers {}
  interface AbortSignal {}
  interface URL {}
  interface URLSearchParams {}
  interface Blob {}
  interface FormData {}
  interface ReadableStream<R = any> {}
  interface RequestInit {}
}

/** A request body: what `fetch` accepts, under any host's lib. */
export type RequestBody = string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | ReadableStream<Uint8Array>;

/** Request headers: a `Headers` object, `[name, value]` pairs or a record. */
export type HeadersLike = Headers | Iterable<readonly [string, string]> | Record<string, string>;

export type Strategy = "round_robin" | "least_used" | "random" | "quota_failover" | "weighted";

export interface KeyObject {
  /** Stable name in status, events and errors. Plain-string keys get `key-1`, `key-2`, … */
  id?: string;
  /** The secret. Never shown in status, events, errors or logs. */
  value: string;
  /** Requests per calendar month (UTC), if known: this month's successes are counted against it for `estimatedRemainingQuota` and `quota_failover` (in the store, when one is shared). */
  monthlyQuota?: number;
  /** Share under the `weighted` strategy (default 1). */
  weight?: number;
  /** Free-form data shown in status. */
  metadata?: Record<string, unknown>;
}

export type KeyConfig = string | KeyObject;

/** Something that can fetch: a function, or an object with a `fetch` method (a Workers service binding). */
export type FetchLike = ((input: string, init: RequestInit) => Promise<Response>) | { fetch(input: string, init: RequestInit): Promise<Response> };

export interface PoolSwitchOptions {
  /** Absolute http(s) URL of the provider; keys are only ever sent to its origin. */
  upstreamBaseUrl: string;
  keys: KeyConfig[];
  /** Default `quota_failover`. */
  strategy?: Strategy;
  /** Retries after transient failures (network, 5xx, waiting for a cooling key). Default 3. */
  retryAttempts?: number;
  /** Rest of a quota-exhausted key. Default 3600. */
  cooldownSeconds?: number;
  /** Header carrying the key. Default `Authorization`. */
  authHeaderName?: string;
  /** Prefix before the key; `null` or `""` for none (e.g. `x-api-key`). Default `Bearer`. */
  authScheme?: string | null;
  /** Send the key as this query parameter instead (Gemini: `key`). */
  queryAuthParam?: string;
  /** Per-attempt timeout: the response head and the read of an error body. */
  requestTimeoutMs?: number;
  /** Per-key ceiling; a busy key is passed over, or waited for when none is free. */
  rateLimitPerSecond?: number;
  /**
   * Methods resent after an ambiguous failure (sent, no answer). Default the idempotent ones: GET, HEAD, OPTIONS,
   * PUT, DELETE; add POST to resend it (a resent POST may be billed twice). A failure to connect is resent for any method.
   */
  retryableMethods?: string[];
  /** Headers added to every request. */
  defaultHeaders?: Record<string, string>;
  /** First backoff delay (doubles per retry, with jitter). Default 250. */
  backoffBaseMs?: number;
  /** Ceiling of one backoff delay. Default 10000. */
  backoffMaxMs?: number;
  /** Longest a request waits for a cooling key before failing with its return time. Default 30000. */
  maxWaitMs?: number;
  /**
   * The HTTP function for upstream requests. In Node the default is undici's dispatcher (no
   * fetch layer; see `dispatcher`); elsewhere `globalThis.fetch`, looked up at call time.
   * Giving one makes every host use it.
   */
  fetch?: FetchLike;
  /**
   * Node only: the undici `Dispatcher` to send through (a `ProxyAgent`, an `Agent` with your own
   * limits, a `MockAgent` in tests). Default: one keep-alive `Agent` shared by every client.
   */
  dispatcher?: { request(options: object, callback: (err: Error | null, data: unknown) => void): void };
  /** Called for every pool event (the same as `client.on("*", fn)`). */
  onEvent?: (event: PoolEvent) => void;
  /** Where the client logs: listener failures at `error`, every event at `debug`. Default `console`. */
  logger?: Logger;
  /** Default `warn`. */
  logLevel?: "off" | "error" | "warn" | "info" | "debug";
  /** Longest a request may take in all, retries, failovers and waits included. */
  deadlineMs?: number;
  /**
   * Required to run in a browser page: every key given to the client is readable by whoever loads
   * the page. Set it only when that is intended (keys the user entered, a gateway token).
   */
  dangerouslyAllowBrowser?: boolean;
  /**
   * Where key state is shared between instances: `"memory"` (default: this client only), a
   * `redis://` / `rediss://` URL (Node; Redis or Valkey), or a store object (`MemoryStore`,
   * `durableObjectStore(env.POOL_STATE)` on Workers, or your own {@link StoreAdapter}).
   */
  store?: "memory" | `redis://${string}` | `rediss://${string}` | StoreAdapter;
  /** Separates pools sharing one store: 1 to 100 of `A-Z a-z 0-9 _ . : -`. Default `default`. */
  namespace?: string;
  storeOptions?: StoreOptions;
}

export interface StoreOptions {
  /** Longest this instance's counters wait before going to the store. Default 250. A rest or quarantine goes at once. */
  flushIntervalMs?: number;
  /** A store call slower than this counts as a failure (the work stays local). Default 2000. */
  timeoutMs?: number;
  /** Retry delay while the store is unreachable. Default 250. */
  retryMs?: number;
  /** How long `close()` waits for the last batch. Default 2000. */
  closeTimeoutMs?: number;
  /** Stored state expires after this long without writes. Default 35 days (Redis, Durable Object). */
  ttlSeconds?: number;
  /** Redis connect timeout. Default 2000. */
  connectTimeoutMs?: number;
}

/** What one instance sends: its work per key since its last batch. */
export interface StoreBatch {
  /** The sending instance (random per client). */
  from: string;
  /** Increases per batch; a store must skip a batch whose number it has already applied from `from`. */
  seq: number;
  /** UTC month, yyyymm. */
  month: number;
  /** Counters as differences; rests, limits and times as now; `reset` after `enableKey`. */
  keys: (KeySnapshot & { id: string; month: number | null; monthSuccesses: number; reset?: true })[];
}

/** One key's applied delta as stores return and publish it: version, counter delta, state after. */
export interface StoreEntry {
  id: string;
  v: number;
  d: Record<string, number | null>;
  s: Record<string, number | string | boolean | null>;
  reset?: true;
}

/**
 * A shared store. `apply` applies a batch atomically with the merge rules (counters add, the
 * later rest wins, the newest provider report wins, invalid sticks until a reset, this
 * month's use adds) and returns the entries; `load` returns the stored records of `ids`
 * (`{ id, v, month, monthSuccesses, ...counters and state }`). With `subscribe`, every applied
 * batch (`{ from, keys: StoreEntry[] }`) reaches every instance; without it, every exchange
 * loads the whole state again.
 */
export interface StoreAdapter {
  kind: string;
  apply(namespace: string, batch: StoreBatch): Promise<StoreEntry[]>;
  load(namespace: string, ids: string[], month: number): Promise<Record<string, any>[]>;
  subscribe?(namespace: string, onMessage: (message: { from: string; keys: StoreEntry[] }) => void, onConnection: (up: boolean) => void): Promise<void>;
  close?(): Promise<void>;
}

/** An in-process store: clients given the same instance share one pool state. */
export class MemoryStore implements StoreAdapter {
  kind: "memory";
  apply(namespace: string, batch: StoreBatch): Promise<StoreEntry[]>;
  load(namespace: string, ids: string[], month: number): Promise<Record<string, any>[]>;
  subscribe(namespace: string, onMessage: (message: { from: string; keys: StoreEntry[] }) => void): Promise<void>;
  close(): Promise<void>;
}

/** Workers only (the `workerd` entry): a store over a Durable Object namespace binding. */
export function durableObjectStore(binding: { idFromName(name: string): unknown; get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> } }, options?: { ttlSeconds?: number }): StoreAdapter;

/** Workers only: the Durable Object class holding one namespace's state; export it from your Worker. */
export class PoolStateObject {
  constructor(state: unknown, env?: unknown);
  fetch(request: Request): Promise<Response>;
  alarm(): Promise<void>;
}

export interface StoreStatus {
  kind: string;
  /** False until the first sync, and while the store cannot be reached. */
  healthy: boolean;
  /** Epoch ms of the last exchange with the store; null before the first. */
  lastSyncAt: number | null;
  namespace?: string;
  lastError?: string | null;
  /** A batch was sent and not yet acknowledged. */
  unsent?: boolean;
  batches?: number;
  messages?: number;
  resyncs?: number;
  failures?: number;
}

export interface RequestOptions {
  /** Serialized as the JSON body (content-type set unless given). */
  json?: unknown;
  body?: RequestBody | null;
  headers?: HeadersLike;
  query?: Record<string, string | number | boolean | Array<string | number | boolean> | null | undefined> | URLSearchParams;
  signal?: AbortSignal;
  /** Per-attempt timeout for this request. */
  timeoutMs?: number;
  /** Longest this request may take in all, retries and waits included (overrides the config's). */
  deadlineMs?: number;
  /** Retries after transient failures for this request (overrides the config's `retryAttempts`). */
  retryAttempts?: number;
  /** Resolve to the upstream `Response` (body streamed, untouched) instead of parsed data. */
  stream?: boolean;
}

/** Options of a request that resolves to the upstream `Response` itself. */
export interface StreamRequestOptions extends RequestOptions {
  stream: true;
}

export type Outcome = "success" | "rate_limited" | "quota_exhausted" | "invalid_key" | "overloaded" | "server_error" | "too_large" | "client_error";

export type KeyState = "healthy" | "cooling" | "exhausted" | "invalid" | "disabled";

export interface KeyStatus {
  id: string;
  state: KeyState;
  enabled: boolean;
  totalRequests: number;
  successes: number;
  errorCount: number;
  failoverCount: number;
  rateLimitCount: number;
  inFlight: number;
  /** Attempts that got no answer (connection refused or reset); part of errorCount. */
  networkErrorCount: number;
  /** Responses whose body broke off after they were handed over. */
  streamErrorCount: number;
  estimatedRemainingQuota: number | null;
  remainingTokens: number | null;
  monthlyQuota: number | null;
  weight: number;
  /** Epoch ms. */
  lastUsedAt: number | null;
  /** Epoch ms: when a resting key returns. */
  cooldownUntil: number | null;
  lastError: string | null;
  metadata: Record<string, unknown> | null;
}

export interface PoolStatus {
  strategy: Strategy;
  upstreamBaseUrl: string;
  totalRequests: number;
  successes: number;
  errorCount: number;
  failoverCount: number;
  healthyKeys: number;
  keys: KeyStatus[];
  store: StoreStatus;
}

/** The request an event belongs to (absent on events no request caused). */
export interface EventContext {
  /** `req-1`, `req-2`, …: one per request on this client, shared by all its events. */
  requestId?: string;
  /** The request's path (or URL, with `client.fetch`), without the query. */
  path?: string;
}

export type PoolEvent = EventContext &
  (
    | { type: "request"; keyId: string; attempt: number; method: string }
    | { type: "success"; keyId: string; status: number; attempts: number; elapsedMs: number }
    | { type: "failover"; fromKeyId: string; /** The key the request moved to; null when none could serve at once. */ toKeyId: string | null; reason: Outcome; attempt: number }
    | { type: "cooldown"; keyId: string; reason: Outcome; untilMs: number | null }
    | { type: "recovered"; keyId: string }
    | { type: "retry"; attempt: number; reason: string; delayMs: number }
    | { type: "streamError"; keyId: string }
    | { type: "storeUnhealthy"; kind: string; error: string }
    | { type: "storeHealthy"; kind: string }
  );

/** A listener threw: the error and the event it was handling. */
export interface ListenerErrorEvent {
  type: "error";
  error: unknown;
  event: PoolEvent;
}

export interface Logger {
  debug(message: string, detail?: unknown): void;
  info(message: string, detail?: unknown): void;
  warn(message: string, detail?: unknown): void;
  error(message: string, detail?: unknown): void;
}

type EventOfType<T extends PoolEvent["type"]> = Extract<PoolEvent, { type: T }>;

export interface KeySnapshot {
  id: string;
  totalRequests?: number;
  successes?: number;
  errors?: number;
  failovers?: number;
  rateLimits?: number;
  streamErrors?: number;
  cooldownUntil?: number | null;
  cooldownReason?: string | null;
  invalid?: boolean;
  remainingRequests?: number | null;
  requestsResetAt?: number | null;
  remainingTokens?: number | null;
  tokensResetAt?: number | null;
  lastUsedAt?: number | null;
  lastError?: string | null;
  /** When the provider last reported the remaining counts (epoch ms). */
  limitsObservedAt?: number | null;
  /** The UTC month (yyyymm) `monthSuccesses` counts. */
  month?: number | null;
  monthSuccesses?: number;
}

export interface PoolSnapshot {
  keys: KeySnapshot[];
}

/** `stream`: a 2xx body broke off while `request()` was reading it. `internal`: the wasm module trapped (it is restarted for later calls). */
export type ErrorKind = "upstream" | "no_healthy_keys" | "network" | "timeout" | "invalid_config" | "invalid_request" | "unknown_key" | "stream" | "internal";

interface ErrorBase<K extends ErrorKind> extends Error {
  name: "PoolSwitchError";
  kind: K;
}

/** The provider answered with a non-2xx status the pool could not get past. */
export interface UpstreamError extends ErrorBase<"upstream"> {
  status: number;
  /** How the last upstream answer was classified. */
  reason: Outcome;
  keyId: string;
  attempts: number;
  /** Epoch ms when the earliest key returns. */
  retryAt?: number;
  /** Parsed JSON error body (absent when it was not JSON; see `text`). */
  data?: unknown;
  text: string;
  headers: Headers;
}

/** Every key is resting; `retryAt` (epoch ms) says when the first returns, if known. */
export interface NoHealthyKeysError extends ErrorBase<"no_healthy_keys"> {
  retryAt?: number;
}

export interface NetworkError extends ErrorBase<"network"> {
  keyId?: string;
  cause?: unknown;
}

export interface TimeoutError extends ErrorBase<"timeout"> {
  keyId?: string;
  afterMs?: number;
}

export interface InvalidConfigError extends ErrorBase<"invalid_config"> {
  /** The offending field, e.g. `keys[2].value`. */
  field: string;
  problem: string;
}

export interface InvalidRequestError extends ErrorBase<"invalid_request"> {
  cause?: unknown;
}

export interface UnknownKeyError extends ErrorBase<"unknown_key"> {}

/** A 2xx body broke off while `request()` was reading it. */
export interface StreamError extends ErrorBase<"stream"> {
  keyId: string;
  status: number;
  cause?: unknown;
}

/**
 * Every failure the client reports, discriminated by `kind`. Never carries a key value.
 * `e instanceof PoolSwitchError` narrows to this union; `e.kind === "upstream"` then to UpstreamError.
 */
export type PoolSwitchError = UpstreamError | NoHealthyKeysError | NetworkError | TimeoutError | InvalidConfigError | InvalidRequestError | UnknownKeyError | StreamError;

export declare const PoolSwitchError: {
  new (message: string, fields?: { kind: ErrorKind; [field: string]: unknown }): PoolSwitchError;
  readonly prototype: PoolSwitchError;
};

export class PoolSwitchClient {
  constructor(options: PoolSwitchOptions);
  request(method: string, path: string, options: StreamRequestOptions): Promise<Response>;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<T>;
  get(path: string, options: StreamRequestOptions): Promise<Response>;
  get<T = any>(path: string, options?: RequestOptions): Promise<T>;
  post(path: string, options: StreamRequestOptions): Promise<Response>;
  post<T = any>(path: string, options?: RequestOptions): Promise<T>;
  put(path: string, options: StreamRequestOptions): Promise<Response>;
  put<T = any>(path: string, options?: RequestOptions): Promise<T>;
  patch(path: string, options: StreamRequestOptions): Promise<Response>;
  patch<T = any>(path: string, options?: RequestOptions): Promise<T>;
  delete(path: string, options: StreamRequestOptions): Promise<Response>;
  delete<T = any>(path: string, options?: RequestOptions): Promise<T>;
  /**
   * fetch-compatible and pre-bound: pass it to SDKs as `fetch: client.fetch`. The Response also
   * carries a non-enumerable `poolswitch` property: `{ keyId, attempts, outcome }`.
   */
  fetch(input: string | URL | Request, init?: RequestInit & { timeoutMs?: number; deadlineMs?: number; retryAttempts?: number }): Promise<Response & { poolswitch?: { keyId: string; attempts: number; outcome: Outcome } }>;
  /** Listens to one event type; `"*"` for every pool event, `"error"` for a listener that threw. */
  on<T extends PoolEvent["type"]>(type: T, listener: (event: EventOfType<T>) => void): this;
  on(type: "*", listener: (event: PoolEvent) => void): this;
  on(type: "error", listener: (event: ListenerErrorEvent) => void): this;
  off(type: PoolEvent["type"] | "*" | "error", listener: (event: never) => void): this;
  addEventListener<T extends PoolEvent["type"]>(type: T, listener: (event: EventOfType<T>) => void): void;
  addEventListener(type: "*", listener: (event: PoolEvent) => void): void;
  addEventListener(type: "error", listener: (event: ListenerErrorEvent) => void): void;
  removeEventListener(type: PoolEvent["type"] | "*" | "error", listener: (event: never) => void): void;
  status(): PoolStatus;
  addKey(key: KeyConfig): string;
  removeKey(id: string): void;
  enableKey(id: string): void;
  disableKey(id: string): void;
  exportState(): PoolSnapshot;
  importState(snapshot: PoolSnapshot): void;
  mergeState(snapshot: PoolSnapshot): void;
  /** Sends this instance's work to the shared store now (on Workers: `ctx.waitUntil(client.flush())`). */
  flush(): Promise<void>;
  /** Sends what is left to the store (bounded wait) and releases its connections. */
  close(): Promise<void>;
  /** `await using client = new PoolSwitchClient(…)` calls `close()` (where `Symbol.asyncDispose` exists). */
  [Symbol.asyncDispose](): Promise<void>;
}

// `Symbol.asyncDispose` for projects whose `lib` predates it (the same declaration as TypeScript's
// own esnext.disposable and @types/node, so they merge).
declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
  }
}
