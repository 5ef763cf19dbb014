// Proxy forwarding (js/gateway/forward.js) in process, against a local upstream: answers pass
// as the upstream sent them (encoding kept; which headers pass is the core's proxy rule) and stream without buffering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { gzipSync, gunzipSync } from "node:zlib";
import { createGateway } from "../../pkg/gateway/server.js";

const COMPRESSED = gzipSync(JSON.stringify({ hello: "compressed" }));
let upstream;
let gateway;
let url;
let releaseStream; // lets the upstream finish its streamed answer
const streamReleased = new Promise((r) => (releaseStream = r));

before(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url === "/gzip") {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": COMPRESSED.length });
      return res.end(COMPRESSED);
    }
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
