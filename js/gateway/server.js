// The Node gateway: an HTTP server that forwards every request to the upstream through the pool.
// Every decision (routes, token, headers, error answers, metrics) is the core's, through the
// wasm module or the tables it exports (rules.js), so this gateway answers exactly as the WASI
// one (gateway/ crate) does; this file keeps only sockets, streams and the shutdown.
import { setMaxListeners } from "node:events";
import http from "node:http";
import { PoolSwitchClient, PoolSwitchError } from "../esm/node.js";
import { forward as forwardThrough } from "./forward.js";
import { isForwarded, proxyAuthorized, proxyErrorAnswer, proxyMetrics, proxyParseKey, proxyRoute, requestHeaders } from "./rules.js";

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };
const KEY_EVENTS = { remove_key: "key_removed", enable_key: "key_enabled", disable_key: "key_disabled" };

/** A failure with one of the core's error kinds (see `status_for` in src/core/proxy/answer.rs). */
class ProxyError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
  return status;
}

function sendError(res, kind, message, retryAt, extra = {}) {
  const a = proxyErrorAnswer(kind, message, typeof retryAt === "number" ? retryAt : undefined, Date.now());
  const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(a.body), ...extra };
  for (const [k, v] of a.headers) headers[k] = v;
  res.writeHead(a.status, headers);
  res.end(a.body);
  return a.status;
}

/**
 * Reads a request body up to `limit` bytes. Past it, rejects with payload_too_large and keeps
 * reading only to discard (nothing more is held), so the caller still gets the 413 answer on an
 * intact connection; Node's requestTimeout bounds a body that never ends.
 */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new ProxyError("payload_too_large", `the request body is over ${limit} bytes`);
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    let chunks = [];
    let size = 0;
    const onData = (c) => {
      size += c.length;
      if (size > limit) {
        chunks = [];
        req.off("data", onData);
        req.on("data", () => {});
        reject(tooLarge());
      } else {
        chunks.push(c);
      }
    };
    req.on("data", onData);
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.once("error", reject);
    // A caller that goes away mid-body must not leave this waiting.
    req.once("close", () => req.complete || reject(new ProxyError("invalid_request", "the request body was cut off")));
  });
}

const CALLER = Symbol("poolswitch caller link");

/**
 * What aborts the forwarded requests of one caller connection when it closes (a caller that
 * left cannot be answered; its requests stop upstream too): one AbortController per connection,
 * not per request — building an AbortSignal and listening on it cost ~15-25 µs of CPU per
 * request under load. Replaced once idle after 1,024 requests: Node 20 keeps a reference in a
 * signal for every AbortSignal.any() it joins (the pool's per-attempt timeouts), which must not
 * grow for as long as a kept-alive connection lives.
 */
function callerLink(socket) {
  let link = socket[CALLER];
  if (link !== undefined && link.uses >= 1024 && link.pending === 0) {
    socket.off("close", link.abort);
    link = undefined;
  }
  if (link === undefined) {
    const controller = new AbortController();
    // Pipelined requests each listen (the pool and undici): no leak warning for them.
    setMaxListeners(0, controller.signal);
    link = { signal: controller.signal, abort: () => controller.abort(), uses: 0, pending: 0 };
    socket.once("close", link.abort);
    socket[CALLER] = link;
  }
  link.uses++;
  return link;
}

/** Builds the gateway; `listen()` resolves to its URL, `close()` drains in-flight requests. */
export function createGateway({ pool: poolConfig, proxy: settings }, log = console.error) {
  // Several replicas on one store share one pool (`store`, `namespace`).
  const client = new PoolSwitchClient({ ...poolConfig, store: settings.store ?? undefined, namespace: settings.namespace ?? undefined });
  const base = client.status().upstreamBaseUrl;
  const level = LEVELS[settings.logLevel] ?? LEVELS.info;
  const emit = (lvl, fields) => LEVELS[lvl] <= level && log(JSON.stringify({ level: lvl, time: new Date().toISOString(), ...fields }));
  if (settings.store && settings.store !== "memory") {
    client.on("storeUnhealthy", (e) => emit("warn", { event: "store_unhealthy", store: e.kind, error: e.error }));
    client.on("storeHealthy", (e) => emit("info", { event: "store_healthy", store: e.kind }));
  }
  const token = settings.gatewayToken ?? undefined;
  const busy = new Set(); // caller links with forwarded requests in flight
  let inFlight = 0;

  const logsRequests = level >= LEVELS.info;
  // `done(status, fields)` logs a request's outcome at info level; without it, nothing is built.
  const noLog = () => {};
  const requestLog = (req, target) => {
    if (!logsRequests) return noLog;
    const started = performance.now();
    // Logged without the query, which may carry anything.
    return (status, fields) => emit("info", { method: req.method, path: target.split("?")[0].slice(0, 200), status, ms: Math.round(performance.now() - started), ...fields });
  };
  const authorized = (req) => proxyAuthorized(req.headers.authorization, req.headers["x-poolswitch-token"], token);

  async function handle(req, res, target, done) {
    try {
      const route = proxyRoute(String(req.method), target);
      if (route.route === "health") return done(sendJson(res, 200, { status: "ok" }));
      if (token !== undefined && route.needsToken && !authorized(req)) return done(sendError(res, "unauthorized", "gateway token missing or wrong"));
      switch (route.route) {
        case "bad_target":
          return done(sendError(res, "invalid_request", "the request target must be a path such as /v1/models"));
        case "not_found":
          return done(sendError(res, "not_found", "no such endpoint under /poolswitch/"));
        case "method_not_allowed":
          return done(sendError(res, "method_not_allowed", `use ${route.allow}`, undefined, { allow: route.allow }));
        case "status":
          return done(sendJson(res, 200, client.status()));
        case "metrics": {
          const text = proxyMetrics(JSON.stringify(client.status()));
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4", "content-length": Buffer.byteLength(text) });
          res.end(text);
          return done(200);
        }
        case "add_key": {
          const text = (await readBody(req, settings.bodyLimitBytes)).toString("utf8");
          let key;
          try {
            key = proxyParseKey(text);
          } catch (e) {
            throw new ProxyError("invalid_key", e.message);
          }
          let id;
          try {
            id = client.addKey(key);
          } catch (e) {
            throw new ProxyError("invalid_key", e.message);
          }
          emit("info", { event: "key_added", key: id });
          return done(sendJson(res, 201, { id }));
        }
        case "remove_key":
        case "enable_key":
        case "disable_key": {
          if (route.route === "remove_key") client.removeKey(route.id);
          else if (route.route === "enable_key") client.enableKey(route.id);
          else client.disableKey(route.id);
          emit("info", { event: KEY_EVENTS[route.route], key: route.id });
          return done(sendJson(res, 200, { id: route.id }));
        }
        default:
          return await forward(req, res, target, done);
      }
    } catch (e) {
      failed(res, e, done);
    }
  }

  function failed(res, e, done) {
    const kind = e instanceof ProxyError || e instanceof PoolSwitchError ? e.kind : "internal";
    const message = e instanceof ProxyError || e instanceof PoolSwitchError ? e.message : "internal error";
    if (!res.headersSent) done(sendError(res, kind, message, e.retryAt), { error: message });
    else {
      done(res.statusCode, { error: message });
      res.destroy();
    }
  }

  async function forward(req, res, target, done) {
    const link = callerLink(req.socket);
    if (link.pending++ === 0) busy.add(link);
    inFlight++;
    try {
      const body = await readBody(req, settings.bodyLimitBytes);
      const headers = requestHeaders(req.rawHeaders);
      // The target as the caller sent it, joined to the base by the core (as on the WASI gateway).
      const sent = await forwardThrough(client, { method: req.method, target, headers, body: body.length ? body : undefined, signal: link.signal }, res);
      if (sent.noKeys) return done(sendError(res, "no_healthy_keys", sent.noKeys.message, sent.noKeys.retryAt));
      done(sent.status, { key: sent.key, attempts: sent.attempts });
    } finally {
      inFlight--;
      if (--link.pending === 0) busy.delete(link);
    }
  }

  // Nothing a request sends may take the process down.
  const crashed = (res) => {
    if (!res.headersSent) sendError(res, "internal", "internal error");
    else res.destroy();
  };

  const server = http.createServer((req, res) => {
    const target = typeof req.url === "string" ? req.url : "";
    const done = requestLog(req, target);
    // The common case, decided from the core's tables without asking it (see rules.js).
    if (isForwarded(target) && (token === undefined || authorized(req))) {
      forward(req, res, target, done).catch((e) => {
        try {
          failed(res, e, done);
        } catch {
          crashed(res);
        }
      });
    } else handle(req, res, target, done).catch(() => crashed(res));
  });

  return {
    client,
    server,
    async listen() {
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(settings.port, settings.host, resolve);
      });
      const { address, port } = server.address();
      const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
      const s = client.status();
      emit("info", { event: "listening", url, upstream: base, keys: s.keys.length, strategy: s.strategy, auth: token !== undefined });
      return url;
    },
    /**
     * Stops accepting and lets in-flight requests finish for up to drainTimeoutMs; then aborts
     * the rest (a silent upstream cannot hold the shutdown) and closes every connection.
     */
    close() {
      emit("info", { event: "shutting_down", inFlight });
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          emit("warn", { event: "drain_timeout", aborted: inFlight });
          for (const link of busy) link.abort();
          server.closeAllConnections();
        }, settings.drainTimeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }).then(() => client.close()); // the store's last batch, and its connections
    },
  };
}
