// The gateway: an HTTP server that forwards every request to the upstream through the pool.
import http from "node:http";
import { Readable } from "node:stream";
import { timingSafeEqual } from "node:crypto";
import { PoolSwitchClient, PoolSwitchError } from "../esm/node.js";
import { Metrics } from "./metrics.js";

// Per-connection headers (RFC 9110 §7.6.1) and what fetch recomputes or has already undone
// (it decompresses, so the encoding and length no longer describe the body it hands over).
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"]);
const RESPONSE_DROP = new Set([...HOP_BY_HOP, "content-encoding"]);
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };

function sendJson(res, status, value, headers = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

function presented(req) {
  const auth = req.headers.authorization;
  if (auth && auth.startsWith("Bearer ")) return auth.slice(7);
  return req.headers["x-poolswitch-token"];
}

function tokenMatches(given, expected) {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Builds the gateway; `listen()` resolves to its URL, `close()` drains in-flight requests. */
export function createGateway({ pool: poolConfig, gateway }, log = console.error) {
  const metrics = new Metrics();
  const client = new PoolSwitchClient({ ...poolConfig, onEvent: metrics.onEvent });
  const base = client.status().upstreamBaseUrl;
  const level = LEVELS[gateway.log_level];
  const emit = (lvl, fields) => LEVELS[lvl] <= level && log(JSON.stringify({ level: lvl, time: new Date().toISOString(), ...fields }));
  let inFlight = 0;

  const server = http.createServer(async (req, res) => {
    const started = performance.now();
    const url = new URL(req.url, "http://gateway");
    const path = url.pathname;
    const done = (fields) => emit("info", { method: req.method, path, ms: Math.round(performance.now() - started), ...fields });
    try {
      if (path === "/health") return sendJson(res, 200, { status: "ok" });
      if (gateway.gateway_token && !tokenMatches(presented(req), gateway.gateway_token)) {
        done({ status: 401, error: "gateway token missing or wrong" });
        return sendJson(res, 401, { error: { type: "unauthorized", message: "gateway token missing or wrong" } }, { "www-authenticate": "Bearer" });
      }
      if (path === "/status" && req.method === "GET") return sendJson(res, 200, client.status());
      if (path === "/metrics" && req.method === "GET") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        return res.end(metrics.render(client.status()));
      }
      if (path === "/keys" && req.method === "POST") {
        const id = client.addKey(JSON.parse((await readBody(req)).toString("utf8") || "null"));
        emit("info", { event: "key_added", key: id });
        return sendJson(res, 201, { id });
      }
      const m = path.match(/^\/keys\/([^/]+)(?:\/(enable|disable))?$/);
      if (m && (req.method === "DELETE" || req.method === "POST")) {
        const id = decodeURIComponent(m[1]);
        if (req.method === "DELETE" && !m[2]) client.removeKey(id);
        else if (m[2] === "enable") client.enableKey(id);
        else if (m[2] === "disable") client.disableKey(id);
        else return sendJson(res, 404, { error: { type: "not_found", message: "no such route" } });
        emit("info", { event: `key_${m[2] ?? "removed"}`, key: id });
        return sendJson(res, 200, { id });
      }
      inFlight++;
      await forward(req, res, url, done);
    } catch (e) {
      const status = e instanceof PoolSwitchError ? (e.kind === "invalid_request" || e.kind === "invalid_config" ? 400 : e.kind === "unknown_key" ? 404 : e.kind === "timeout" ? 504 : 502) : 400;
      done({ status, error: e.message });
      if (!res.headersSent) sendJson(res, status, { error: { type: e.kind ?? "bad_request", message: e.message } });
      else res.destroy(e);
    }
  });

  async function forward(req, res, url, done) {
    try {
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== "x-poolswitch-token") headers[k] = v;
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await readBody(req);
      const controller = new AbortController();
      res.on("close", () => !res.writableFinished && controller.abort());
      const upstream = await client.fetch(`${base}${url.pathname}${url.search}`, { method: req.method, headers, body, signal: controller.signal });
      const out = {};
      for (const [k, v] of upstream.headers) if (!RESPONSE_DROP.has(k)) out[k] = v;
      const { keyId: key, attempts } = upstream.poolswitch ?? {};
      if (key) Object.assign(out, { "x-poolswitch-key-id": key, "x-poolswitch-attempts": String(attempts) });
      res.writeHead(upstream.status, out);
      res.flushHeaders();
      if (upstream.body) {
        // Streamed through chunk by chunk (server-sent events included), never buffered.
        await new Promise((resolve) => {
          const source = Readable.fromWeb(upstream.body);
          source.on("error", (e) => {
            res.destroy(e);
            resolve();
          });
          res.on("close", resolve);
          source.pipe(res);
        });
      } else {
        res.end();
      }
      done({ status: upstream.status, key, attempts });
    } finally {
      inFlight--;
    }
  }

  return {
    client,
    server,
    async listen() {
      await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(gateway.port, gateway.host, resolve);
      });
      const { address, port } = server.address();
      const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
      emit("info", { event: "listening", url, upstream: base, keys: client.status().keys.length, strategy: client.status().strategy });
      return url;
    },
    /** Stops accepting, lets in-flight requests finish, then resolves. */
    close() {
      emit("info", { event: "shutting_down", inFlight });
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
      });
    },
  };
}
