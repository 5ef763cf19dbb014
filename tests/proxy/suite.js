// One proxy suite, run against both gateways on the same URLs with the same assertions:
// `poolswitch-wasm serve` (tests/proxy/node.test.js) and the WASI gateway component under
// `wasmtime serve` (tests/proxy/wasmtime.test.js). Both are configured the same way, through
// POOLSWITCH_* variables. The only stand-in is the upstream: the mock provider in its own
// process, or a plain server started here.
//
// A target is { name, start(env) → { url, stop(), logs() }, keyAdmin, seesConnectionHeader }.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import parsePrometheus from "parse-prometheus-text-format";
import { startMock } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";

export const TOKEN = "gw-token-123456";
export const BODY_LIMIT = 64 * 1024;
// Key ids a header cannot carry as they are, and a label that needs escaping.
export const IDS = { a: "a", b: "team|blue", c: 'é"\\键' };

/** A plain HTTP request with full control of headers; resolves to { status, headers, body }. */
export function raw(url, { method = "GET", path = "/", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends one raw request line and headers on a socket; resolves to the status line answered (or "" if closed). */
export function rawLine(url, text) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(text));
    let got = "";
    socket.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) socket.destroy();
    });
    socket.on("close", () => resolve(got.split("\r\n")[0]));
    socket.on("error", () => {});
  });
}

export function proxySuite(target) {
  const name = target.name;
  let mock;
  let control;
  let gw;
  let prefix;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const value = (k) => `sk-${prefix}${k}-secret`;
  const calls = async () => (await control.calls()).filter((c) => c.keyId?.startsWith(prefix)).map((c) => c.keyId.slice(prefix.length));
  const keysEnv = (ids) => JSON.stringify(Object.entries(ids).map(([k, id]) => ({ id, value: value(k) })));

  before(async () => {
    mock = await startMock();
    control = mockControl(mock.url);
    prefix = `${name}${Date.now().toString(36)}-`;
    await control.setKeys({
      [value("a")]: { id: `${prefix}a`, script: ["quota"] },
      [value("b")]: { id: `${prefix}b` },
      [value("c")]: { id: `${prefix}c` },
    });
    gw = await target.start({
      POOLSWITCH_UPSTREAM_BASE_URL: mock.url,
      POOLSWITCH_KEYS: keysEnv(IDS),
      POOLSWITCH_STRATEGY: "round_robin",
      POOLSWITCH_COOLDOWN_SECONDS: "600",
      POOLSWITCH_GATEWAY_TOKEN: TOKEN,
      POOLSWITCH_BODY_LIMIT_BYTES: String(BODY_LIMIT),
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test(`${name}: health needs no token; every other route does`, async () => {
    const h = await fetch(`${gw.url}/poolswitch/health`);
    assert.deepEqual([h.status, await h.json()], [200, { status: "ok" }]);
    for (const [path, method] of [["/poolswitch/status", "GET"], ["/poolswitch/metrics", "GET"], ["/poolswitch/keys", "POST"], ["/v1/models", "GET"]]) {
      const r = await fetch(`${gw.url}${path}`, { method, headers: { authorization: "Bearer wrong-token-000" } });
      assert.equal(r.status, 401, path);
      assert.equal(r.headers.get("www-authenticate"), "Bearer");
      assert.equal((await r.json()).error.type, "unauthorized");
    }
    assert.equal((await fetch(`${gw.url}/v1/models`)).status, 401);
    assert.deepEqual(await calls(), [], "nothing reached the provider without the token");
  });

  test(`${name}: requests fail over and rotate; x-poolswitch-key-id carries any id`, async () => {
    const served = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ model: "m", messages: [] }) });
      assert.equal(r.status, 200);
      assert.match((await r.json()).choices[0].message.content, /^served by /);
      served.push(decodeURIComponent(r.headers.get("x-poolswitch-key-id")));
    }
    assert.deepEqual(served, [IDS.b, IDS.c, IDS.b, IDS.c]);
    assert.deepEqual(await calls(), ["a", "b", "c", "b", "c"]);
    const r = await fetch(`${gw.url}/v1/models`, { headers: auth });
    assert.equal(r.headers.get("x-poolswitch-key-id"), "team|blue", "a visible-ASCII id goes as it is");
    const r2 = await fetch(`${gw.url}/v1/models`, { headers: auth });
    assert.equal(r2.headers.get("x-poolswitch-key-id"), '%C3%A9"\\%E9%94%AE', "anything else percent-encoded");
    assert.equal(r2.headers.get("x-poolswitch-attempts"), "1");
  });

  test(`${name}: method, path, query, headers and body reach the upstream; token and hop-by-hop headers do not`, async () => {
    const r = await raw(gw.url, {
      method: "PUT",
      path: "/v1/echo?x=1&y=two",
      headers: { "x-poolswitch-token": TOKEN, "x-custom": "yes", "content-type": "text/plain", connection: "keep-alive, x-hop", "x-hop": "1", "proxy-authorization": "Basic zzz", te: "trailers" },
      body: "payload",
    });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body);
    assert.deepEqual([echo.method, echo.path, echo.query, echo.body, echo.headers["x-custom"]], ["PUT", "/v1/echo", { x: "1", y: "two" }, "payload", "yes"]);
    for (const h of ["proxy-authorization", "te", "x-poolswitch-token"]) assert.equal(echo.headers[h], undefined, h);
    // A header the caller's `Connection` names is hop-by-hop too. Wasmtime's wasi:http strips
    // `Connection` itself before the component sees the request, so there the gateway cannot
    // know which names it listed (headers.rs still applies the rule to what it is given).
    if (target.seesConnectionHeader) assert.equal(echo.headers["x-hop"], undefined, "x-hop");
    assert.ok(!r.body.includes(TOKEN));
  });

  test(`${name}: a streamed response passes through unbuffered`, async () => {
    // The provider holds its last event until released: a buffering gateway would not hand over the first.
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { ...auth, "content-type": "application/json", "x-mock-hold-end": "1" }, body: JSON.stringify({ model: "m", messages: [], stream: true }) });
    assert.equal(r.headers.get("content-type"), "text/event-stream");
    const reader = r.body.getReader();
    let text = "";
    for (;;) {
      const { done, value: chunk } = await reader.read();
      if (done) break;
      if (text === "") {
        const last = (await control.calls()).filter((c) => c.keyId?.startsWith(prefix)).at(-1);
        assert.equal(last.lastChunkAt, undefined, "the first chunk arrived before the provider sent the last");
        await control.releaseHeldEnds();
      }
      text += new TextDecoder().decode(chunk);
    }
    assert.match(text, /data: \[DONE\]/);
  });

  test(`${name}: sequential body-less GETs and POSTs with a body all succeed`, async () => {
    // A body-less request once went out of the WASI gateway with a zero-length body write,
    // which failed at random as a connection reset once Wasmtime had dropped the body channel.
    const failures = [];
    for (let i = 0; i < 60; i++) {
      for (const init of [{ headers: auth }, { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: `n${i}` }]) {
        const r = await fetch(`${gw.url}/v1/echo`, init);
        const text = await r.text();
        if (r.status !== 200) failures.push(`${init.method ?? "GET"} ${i}: ${r.status} ${text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test(`${name}: status reports the pool without key values`, async () => {
    const r = await fetch(`${gw.url}/poolswitch/status`, { headers: auth });
    assert.equal(r.status, 200);
    const text = await r.text();
    const s = JSON.parse(text);
    assert.deepEqual(s.keys.map((k) => [k.id, k.state]), [[IDS.a, "exhausted"], [IDS.b, "healthy"], [IDS.c, "healthy"]]);
    assert.equal(s.keys[0].totalRequests, 1);
    for (const k of s.keys) assert.equal(k.totalRequests, k.successes + k.errorCount);
    for (const field of ["strategy", "upstreamBaseUrl", "totalRequests", "successes", "errorCount", "failoverCount", "healthyKeys"]) assert.ok(field in s, field);
    assert.ok(!text.includes(`sk-${prefix}`));
  });

  test(`${name}: metrics parse as Prometheus text, ids escaped, one series per key and state`, async () => {
    const r = await fetch(`${gw.url}/poolswitch/metrics`, { headers: auth });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    assert.ok(!text.includes(`sk-${prefix}`));
    const families = Object.fromEntries(parsePrometheus(text).map((f) => [f.name, f]));
    for (const n of ["poolswitch_keys", "poolswitch_healthy_keys", "poolswitch_key_requests_total", "poolswitch_key_successes_total", "poolswitch_key_errors_total", "poolswitch_key_failovers_total", "poolswitch_key_rate_limits_total", "poolswitch_key_in_flight", "poolswitch_key_state"]) {
      assert.ok(families[n], `family ${n}`);
    }
    assert.equal(families.poolswitch_key_requests_total.type, "COUNTER");
    const ids = families.poolswitch_key_requests_total.metrics.map((m) => m.labels.key);
    assert.deepEqual(ids, [IDS.a, IDS.b, IDS.c], "labels escaped and parsed back");
    const states = families.poolswitch_key_state.metrics;
    assert.equal(states.length, 15, "five states for each of three keys");
    const on = states.filter((m) => m.value === "1").map((m) => [m.labels.key, m.labels.state]);
    assert.deepEqual(on, [[IDS.a, "exhausted"], [IDS.b, "healthy"], [IDS.c, "healthy"]]);
    assert.equal(families.poolswitch_key_failovers_total.metrics.find((m) => m.labels.key === IDS.a).value, "1");
  });

  test(`${name}: errors answer one shape with the core's status`, async () => {
    const shape = async (r, status, type) => {
      assert.equal(r.status, status, type);
      const body = await r.json();
      assert.equal(body.error.type, type);
      assert.equal(typeof body.error.message, "string");
      return r;
    };
    await shape(await fetch(`${gw.url}//evil.example.net/x`, { headers: auth }), 400, "invalid_request");
    await shape(await fetch(`${gw.url}/poolswitch/nope`, { headers: auth }), 404, "not_found");
    const m = await shape(await fetch(`${gw.url}/poolswitch/status`, { method: "POST", headers: auth }), 405, "method_not_allowed");
    assert.equal(m.headers.get("allow"), "GET");
    // An absolute-form request line (what killed the Node gateway) is refused, and the gateway lives on.
    const line = await rawLine(gw.url, "GET http:// HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(line, /^HTTP\/1\.1 4\d\d /);
    assert.equal((await fetch(`${gw.url}/poolswitch/health`)).status, 200);
  });

  test(`${name}: a body over the limit is answered 413 and never reaches the provider`, async () => {
    const before = (await calls()).length;
    const big = Buffer.alloc(BODY_LIMIT + 1, 97);
    const declared = await raw(gw.url, { method: "POST", path: "/v1/echo", headers: { ...auth, "content-type": "text/plain" }, body: big });
    assert.equal(declared.status, 413);
    assert.equal(JSON.parse(declared.body).error.type, "payload_too_large");
    // Chunked, no length given: refused once the limit is passed.
    const chunked = await new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/echo`, { method: "POST", headers: { ...auth, "transfer-encoding": "chunked" }, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("error", reject);
      for (let sent = 0; sent <= BODY_LIMIT; sent += 8192) req.write(Buffer.alloc(8192, 98));
      req.end();
    });
    assert.equal(chunked, 413);
    assert.equal((await calls()).length, before, "the provider saw neither");
    const fits = await raw(gw.url, { method: "POST", path: "/v1/echo", headers: { ...auth, "content-type": "text/plain" }, body: Buffer.alloc(BODY_LIMIT, 99) });
    assert.equal(fits.status, 200);
    assert.equal(JSON.parse(fits.body).body.length, BODY_LIMIT);
  });

  test(`${name}: key administration`, async (t) => {
    if (!target.keyAdmin) {
      // The WASI gateway runs each request in a fresh instance whose keys come from
      // POOLSWITCH_KEYS: a key added here would be gone with the instance. Same URLs, a 501.
      for (const [method, path] of [["POST", "/poolswitch/keys"], ["DELETE", "/poolswitch/keys/a"], ["POST", "/poolswitch/keys/a/disable"]]) {
        const r = await fetch(`${gw.url}${path}`, { method, headers: auth, body: method === "POST" ? "{}" : undefined });
        assert.equal(r.status, 501, path);
        assert.equal((await r.json()).error.type, "not_supported");
      }
      t.diagnostic("key administration is not supported by this gateway (per-request instances)");
      return;
    }
    await control.setKeys({ [value("d")]: { id: `${prefix}d` } });
    const add = await fetch(`${gw.url}/poolswitch/keys`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id: "d", value: value("d") }) });
    assert.deepEqual([add.status, await add.json()], [201, { id: "d" }]);
    assert.equal((await fetch(`${gw.url}/poolswitch/keys/${encodeURIComponent(IDS.b)}/disable`, { method: "POST", headers: auth })).status, 200);
    assert.equal((await fetch(`${gw.url}/poolswitch/keys/${encodeURIComponent(IDS.c)}`, { method: "DELETE", headers: auth })).status, 200);
    const missing = await fetch(`${gw.url}/poolswitch/keys/zz`, { method: "DELETE", headers: auth });
    assert.deepEqual([missing.status, (await missing.json()).error.type], [404, "unknown_key"]);
    const r = await fetch(`${gw.url}/v1/models`, { headers: auth });
    assert.equal(r.headers.get("x-poolswitch-key-id"), "d");
    const s = await (await fetch(`${gw.url}/poolswitch/status`, { headers: auth })).json();
    assert.deepEqual(s.keys.map((k) => [k.id, k.state]), [[IDS.a, "exhausted"], [IDS.b, "disabled"], ["d", "healthy"]]);
    // A body that is not JSON (a bare key pasted in) is refused without being repeated anywhere.
    const bad = await fetch(`${gw.url}/poolswitch/keys`, { method: "POST", headers: auth, body: "sk-pasted-raw-secret-1" });
    const text = await bad.text();
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(text).error.type, "invalid_key");
    const digits = await fetch(`${gw.url}/poolswitch/keys`, { method: "POST", headers: auth, body: '{"value": 98765432101}' });
    const digitsText = await digits.text();
    assert.equal(digits.status, 400);
    for (const secret of ["sk-pasted-raw-secret-1", "98765432101"]) {
      assert.ok(!text.includes(secret) && !digitsText.includes(secret), "not in the answer");
      assert.ok(!gw.logs().includes(secret), "not in the log");
    }
  });
}

/** The no-healthy-keys answers, on a one-key gateway; `start` as in a target. */
export function noHealthyKeysSuite(target) {
  const name = target.name;
  let mock;
  let control;
  const gateways = [];
  before(async () => {
    mock = await startMock();
    control = mockControl(mock.url);
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    await mock?.stop();
  });
  const one = async (script, env = {}) => {
    const v = `sk-${name}${Date.now().toString(36)}${gateways.length}-nohealthy`;
    await control.setKeys({ [v]: { id: `${name}-nh-${gateways.length}`, script } });
    const g = await target.start({ POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: v, POOLSWITCH_GATEWAY_TOKEN: TOKEN, POOLSWITCH_MAX_WAIT_MS: "0", ...env });
    gateways.push(g);
    return g;
  };
  const auth = { authorization: `Bearer ${TOKEN}` };

  test(`${name}: no healthy key soon: 429 with a retry-after an SDK can honour`, async () => {
    const g = await one(["rate_limit:20000"]);
    assert.equal((await fetch(`${g.url}/v1/models`, { headers: auth })).status, 429, "the provider's own 429 comes back");
    const r = await fetch(`${g.url}/v1/models`, { headers: auth });
    assert.equal(r.status, 429);
    assert.equal((await r.json()).error.type, "no_healthy_keys");
    assert.equal(r.headers.get("x-should-retry"), "true");
    const after = Number(r.headers.get("retry-after"));
    assert.ok(after >= 1 && after <= 20, `retry-after ${after}`);
  });

  test(`${name}: no healthy key for long: 503 with x-should-retry: false`, async () => {
    const g = await one(["quota"], { POOLSWITCH_COOLDOWN_SECONDS: "600" });
    assert.equal((await fetch(`${g.url}/v1/models`, { headers: auth })).status, 429);
    const r = await fetch(`${g.url}/v1/models`, { headers: auth });
    assert.equal(r.status, 503);
    assert.equal((await r.json()).error.type, "no_healthy_keys");
    assert.equal(r.headers.get("x-should-retry"), "false");
    assert.ok(Number(r.headers.get("retry-after")) > 60);
  });
}
