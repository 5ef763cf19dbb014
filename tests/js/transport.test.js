// The Node upstream transport (js/src/transport/undici.js) against a local node:http server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { Agent } from "undici";
import { undiciTransport } from "../../js/src/transport/undici.js";

let server;
let base;
const seen = []; // { method, url, headers, body } per request
let hangClosed; // resolves when the connection of /hang closes before its answer finished
const hangClosedOnce = new Promise((r) => (hangClosed = r));

before(async () => {
  server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.on("close", () => !res.writableFinished && req.url === "/hang" && hangClosed());
    const path = req.url.split("?")[0];
    if (path === "/json") {
      res.writeHead(200, [["content-type", "application/json"], ["x-twice", "a"], ["x-twice", "b"]]);
      return res.end(JSON.stringify({ ok: true, url: req.url }));
    }
    if (path === "/redirect") {
      res.writeHead(302, { location: "http://127.0.0.2:1/elsewhere" });
      return res.end("moved");
    }
    if (path === "/error") {
      res.writeHead(429, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "x".repeat(3000) } }));
    }
    if (path === "/gzip") {
      res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
      return res.end(gzipSync("hello, compressed"));
    }
    if (path === "/empty") {
      res.writeHead(204);
      return res.end();
    }
    if (path === "/hang") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.write("partial");
    }
    if (path === "/drop") return req.socket.destroy();
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const transport = undiciTransport(new Agent());

test("sends method, path, query, headers and body; reads status, headers and text", async () => {
  const reply = await transport.send("POST", `${base}/json?a=1&b=2`, { authorization: "Bearer k", "content-length": "999" }, '{"x":1}', undefined);
  assert.equal(reply.status, 200);
  assert.equal(reply.header("x-twice"), "a, b");
  assert.equal(reply.header("x-missing"), null);
  assert.equal(transport.header(reply.response, "content-type"), "application/json");
  assert.deepEqual(JSON.parse(await transport.text(reply.response)), { ok: true, url: "/json?a=1&b=2" });
  const req = seen.at(-1);
  assert.equal(req.method, "POST");
  assert.equal(req.headers.authorization, "Bearer k");
  assert.equal(req.headers["content-type"], "text/plain;charset=UTF-8", "a string body gets fetch's default type");
  assert.equal(req.headers["content-length"], "7", "the length is the body's, not the caller's");
  assert.equal(req.body, '{"x":1}');
});

test("bodies of every kind fetch takes are sent", async () => {
  const bodies = [
    [new TextEncoder().encode("bytes"), "bytes", undefined],
    [new TextEncoder().encode("buffer").buffer, "buffer", undefined],
    [new URLSearchParams({ a: "1" }), "a=1", "application/x-www-form-urlencoded;charset=UTF-8"],
    [new Blob(["blob"], { type: "text/x-blob" }), "blob", "text/x-blob"],
  ];
  for (const [body, text, type] of bodies) {
    const reply = await transport.send("PUT", `${base}/json`, {}, body, undefined);
    await transport.text(reply.response);
    assert.equal(seen.at(-1).body, text);
    assert.equal(seen.at(-1).headers["content-type"], type);
  }
});

test("redirects are answered as they are, never followed", async () => {
  const reply = await transport.send("GET", `${base}/redirect`, {}, null, undefined);
  assert.equal(reply.status, 302);
  const response = transport.toResponse(reply.response);
  assert.ok(response instanceof Response, "a standard Response");
  assert.equal(response.headers.get("location"), "http://127.0.0.2:1/elsewhere");
  assert.equal(await response.text(), "moved");
});

test("a peek reads the start of the body and leaves all of it to the reader", async () => {
  const full = JSON.stringify({ error: { message: "x".repeat(3000) } });
  const a = await transport.send("GET", `${base}/error`, {}, null, undefined);
  const head = await a.peek(100);
  assert.equal(new TextDecoder().decode(head), full.slice(0, 100));
  assert.equal(await transport.text(a.response), full);

  const b = await transport.send("GET", `${base}/error`, {}, null, undefined);
  await b.peek(8192); // more than the body: the peek reads to the end
  const response = transport.toResponse(b.response);
  assert.equal(response.status, 429);
  assert.equal(await response.text(), full);
});

test("compressed answers are decoded, as fetch does", async () => {
  const a = await transport.send("GET", `${base}/gzip`, { "accept-encoding": "gzip" }, null, undefined);
  assert.equal(await transport.text(a.response), "hello, compressed");
  const b = await transport.send("GET", `${base}/gzip`, { "accept-encoding": "gzip" }, null, undefined);
  assert.equal(await transport.toResponse(b.response).text(), "hello, compressed");
});

test("a 204 becomes a Response without a body", async () => {
  const reply = await transport.send("DELETE", `${base}/empty`, {}, null, undefined);
  const response = transport.toResponse(reply.response);
  assert.equal(response.status, 204);
  assert.equal(response.body, null);
});

test("an abort signal ends the request and closes its connection", async () => {
  const controller = new AbortController();
  const reply = await transport.send("GET", `${base}/hang`, {}, null, controller.signal);
  const reading = transport.text(reply.response);
  controller.abort(new Error("caller gave up"));
  await assert.rejects(reading);
  await hangClosedOnce; // the server sees the connection close (the test would hang otherwise)
  await assert.rejects(transport.send("GET", `${base}/json`, {}, null, AbortSignal.abort()));
});

// task.js reads an error's code to tell "connect" (nothing sent) from "ambiguous".
test("errors carry the code that says whether the request reached the server", async () => {
  const free = await new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
  const refused = await transport.send("GET", `http://127.0.0.1:${free}/`, {}, null, undefined).catch((e) => e);
  assert.equal(refused.code, "ECONNREFUSED");
  const dropped = await transport.send("POST", `${base}/drop`, {}, "x", undefined).catch((e) => e);
  assert.ok(dropped instanceof Error);
  assert.equal(dropped.code, "UND_ERR_SOCKET", "the socket closed after the request was written");
});

test("only the Node build loads undici: browser and Worker builds never contain it", async () => {
  const { readFileSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const pkg = fileURLToPath(new URL("../../pkg/", import.meta.url));
  const loadsUndici = (text) => text.includes('("undici")');
  assert.ok(loadsUndici(readFileSync(pkg + "cjs/node.cjs", "utf8")), "the check sees undici where it is");
  assert.ok(!loadsUndici(readFileSync(pkg + "esm/browser.js", "utf8")), "browser build");
  assert.ok(!loadsUndici(readFileSync(pkg + "cjs/index.cjs", "utf8")), "CommonJS build for other hosts");
  const { build } = await import("esbuild");
  const worker = await build({ entryPoints: [pkg + "esm/workerd.js"], bundle: true, write: false, metafile: true, format: "esm", platform: "neutral", conditions: ["workerd", "worker", "browser"], loader: { ".wasm": "empty" }, logLevel: "silent" });
  assert.ok(!Object.keys(worker.metafile.inputs).some((f) => f.includes("undici")), "Worker bundle");
});
