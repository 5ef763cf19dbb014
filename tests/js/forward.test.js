// Proxy forwarding (js/gateway/forward.js) in process, against a local upstream: answers pass
// as the upstream sent them (encoding kept; which headers pass is the core's proxy rule) and stream without buffering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import http from "node:http";
import { gzipSync, gunzipSync } from "node:zlib";
import { createGateway } from "../../pkg/gateway/server.js";
import { isForwarded, keyIdHeader, proxyKeyIdHeader, proxyRequestHeaders, proxyResponseHeaders, proxyRoute, requestHeaders, responseHeaders, responseHeadersOfRecord } from "../../pkg/gateway/rules.js";

const COMPRESSED = gzipSync(JSON.stringify({ hello: "compressed" }));
let upstream;
let gateway;
let url;
let releaseStream; // lets the upstream finish its streamed answer
const streamReleased = new Promise((r) => (releaseStream = r));
const hangArrived = []; // resolvers, one per /hang request the upstream receives
const hangClosed = []; // resolvers, one per /hang request the gateway gives up

before(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url === "/gzip") {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": COMPRESSED.length });
      return res.end(COMPRESSED);
    }
    if (req.url === "/hang") {
      // Never answers; reports when the gateway gives the request up.
      res.once("close", () => hangClosed.shift()?.());
      hangArrived.shift()?.();
      return;
    }
    if (req.url === "/ok") return res.end("ok");
    if (req.url === "/events") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      streamReleased.then(() => res.end("data: last\n\n"));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${upstream.address().port}`;
  gateway = createGateway({ pool: { upstreamBaseUrl: base, keys: ["sk-forward-a"] }, proxy: { host: "127.0.0.1", port: 0, logLevel: "error", bodyLimitBytes: 1_000_000, drainTimeoutMs: 1000 } }, () => {});
  url = await gateway.listen();
});
after(async () => {
  releaseStream();
  await gateway.close();
  upstream.closeAllConnections();
  upstream.close();
});

function get(path, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(`${url}${path}`, { headers }, resolve).once("error", reject);
  });
}

test("an encoded answer passes as the upstream sent it, with its encoding", async () => {
  const res = await get("/gzip", { "accept-encoding": "gzip" });
  const chunks = [];
  for await (const c of res) chunks.push(c);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["content-encoding"], "gzip");
  assert.equal(res.headers["x-poolswitch-key-id"], "key-1");
  assert.deepEqual(JSON.parse(gunzipSync(Buffer.concat(chunks))), { hello: "compressed" });
});

test("a streamed answer reaches the caller before the upstream has finished it", async () => {
  const res = await get("/events");
  const reader = res[Symbol.asyncIterator]();
  const first = await reader.next(); // would wait forever if the gateway buffered the body
  assert.equal(String(first.value), "data: first\n\n");
  releaseStream();
  let rest = "";
  for (let next = await reader.next(); !next.done; next = await reader.next()) rest += next.value;
  assert.equal(rest, "data: last\n\n");
});

// The gateway's hot path applies the core's tables in JS (rules.js); the core's own functions are
// the reference. Random header sets from the pieces that matter: hop-by-hop and token names in
// any case, Connection lists with spaces, tabs and other whitespace, repeats.
test("the hot path's route and header rules agree with the core's", () => {
  let seed = 7; // mulberry32: deterministic, and its low bits are not periodic as an LCG's are
  const rnd = (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const pick = (xs) => xs[rnd(xs.length)];
  const NAMES = ["Connection", "connection", "Keep-Alive", "TE", "Host", "Content-Length", "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Trailer",
    "Authorization", "authorization", "X-PoolSwitch-Token", "Content-Encoding", "content-type", "X-Trace", "x-trace", "X-A", "Accept", "set-cookie", "x-k"];
  const LISTS = ["close", "keep-alive", "X-Trace", "x-a , close", "close,\tX-Trace ", "x-trace\u00a0", " X-A\t,x-trace", "", ",", "X-\u212a"];
  for (let i = 0; i < 3000; i++) {
    const flat = [];
    for (let n = rnd(8); n > 0; n--) {
      const name = pick(NAMES);
      flat.push(name, /^connection$/i.test(name) ? pick(LISTS) : pick(["v", " v ", "a, b", "\u00e9"]));
    }
    const core = proxyRequestHeaders(flat);
    const pairs = [];
    for (let j = 0; j < core.length; j += 2) pairs.push([core[j].toLowerCase(), core[j + 1]]);
    assert.deepEqual(requestHeaders(flat), pairs, JSON.stringify(flat));
    for (const decoded of [false, true]) assert.deepEqual(responseHeaders(flat, decoded), proxyResponseHeaders(flat, decoded), JSON.stringify(flat));
    // undici's record: lower-case names, a repeated header as an array (in arrival order).
    const record = {};
    for (let j = 0; j < flat.length; j += 2) {
      const name = flat[j].toLowerCase();
      record[name] = record[name] === undefined ? flat[j + 1] : [record[name], flat[j + 1]].flat();
    }
    const fromRecord = Object.entries(record).flatMap(([name, v]) => (Array.isArray(v) ? v : [v]).flatMap((x) => [name, x]));
    assert.deepEqual(responseHeadersOfRecord(record), proxyResponseHeaders(fromRecord, false), JSON.stringify(record));
  }
  const targets = ["/v1/models", "/", "/poolswitch", "/poolswitch/health", "/poolswitchfoo", "/poolswitch?x", "/PoolSwitch/status", "*", "", "http://h/x", "example.com:443", "//x", "/v1?q=/poolswitch"];
  for (const target of targets) {
    // A shortcut: what it passes is forwarded by the core too; the rest goes to the core.
    for (const method of ["GET", "POST", "DELETE"]) if (isForwarded(target)) assert.equal(proxyRoute(method, target).route, "forward", `${method} ${target}`);
  }
  assert.ok(isForwarded("/v1/chat/completions") && isForwarded("/v1?q=/poolswitch") && !isForwarded("/poolswitch/health") && !isForwarded("*"));
  for (const id of ["key-1", "été", "a b%\n", "键", "team|blue"]) {
    assert.equal(keyIdHeader(id), proxyKeyIdHeader(id));
    assert.equal(keyIdHeader(id), proxyKeyIdHeader(id), "remembered");
  }
});

// A caller that leaves is not answered: its request is aborted upstream, also on a kept-alive
// connection that has carried many requests before (the gateway renews its per-connection abort
// link after 1,024).
test("a caller that leaves has its request aborted upstream, early or late in a kept-alive connection", { timeout: 30_000 }, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const call = (path) =>
    new Promise((resolve, reject) => {
      const req = http.get(`${url}${path}`, { agent }, (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode));
      });
      req.once("error", reject);
    });
  const leave = async () => {
    const arrived = new Promise((r) => hangArrived.push(r));
    const closed = new Promise((r) => hangClosed.push(r));
    const req = http.get(`${url}/hang`, { agent });
    req.once("error", () => {});
    await arrived;
    req.destroy(); // the caller goes away while the upstream has not answered
    await closed; // would wait forever (and the test time out) if the gateway kept it going
  };
  assert.equal(await call("/ok"), 200);
  await leave();
  let socket;
  const seen = (req) => (socket = req.socket);
  gateway.server.on("request", seen);
  for (let i = 0; i < 1100; i++) assert.equal(await call("/ok"), 200);
  gateway.server.off("request", seen);
  // Nothing in flight on the connection: nothing may still listen on its abort link (a leak
  // would grow with every request the connection carries).
  const link = socket[Object.getOwnPropertySymbols(socket).find((s) => s.description === "poolswitch caller link")];
  assert.equal(getEventListeners(link.signal, "abort").length, 0);
  await leave();
  agent.destroy();
});
