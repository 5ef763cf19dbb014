// Proxy mode: `poolswitch-wasm serve` as a child process on a loopback port, driven by plain
// HTTP and by the official openai SDK pointed at it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import parsePrometheus from "parse-prometheus-text-format";
import { startMock, ROOT } from "./mock.js";
import { mockControl } from "../scenarios/scenarios.js";

const CLI = join(ROOT, "pkg", "cli.js");
const TOKEN = "gw-token-123456";
const KEYS = { a: "sk-gw-a-secret", b: "sk-gw-b-secret", c: "sk-gw-c-secret" };
let mock;
let control;
let gw;
let logs = "";

function serve(args, env = {}) {
  const child = spawn(process.execPath, [CLI, "serve", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      logs += d;
      const m = String(d).match(/"event":"listening","url":"([^"]+)"/);
      if (m) resolve({ child, url: m[1] });
    });
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}: ${logs}`)));
  });
}

before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
  await control.setKeys({ [KEYS.a]: { id: "gw-a", script: ["quota"] }, [KEYS.b]: { id: "gw-b" }, [KEYS.c]: { id: "gw-c" } });
  const dir = mkdtempSync(join(tmpdir(), "poolswitch-gw-"));
  const file = join(dir, "poolswitch.yaml");
  // The reference client's YAML field names; the strategy is overridden from the environment.
  writeFileSync(file, `upstream_base_url: ${mock.url}\nstrategy: least_used\ncooldown_seconds: 600\nauth_header_name: Authorization\ngateway_token: ${TOKEN}\nkeys:\n  - id: a\n    value: ${KEYS.a}\n  - id: b\n    value: ${KEYS.b}\n    monthly_quota: 1000\n  - id: c\n    value: ${KEYS.c}\n`);
  gw = await serve(["--config", file, "--port", "0"], { POOLSWITCH_STRATEGY: "round_robin" });
});
after(async () => {
  gw?.child.kill("SIGTERM");
  await mock.stop();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const calls = async () => (await control.calls()).filter((c) => c.keyId?.startsWith("gw-")).map((c) => c.keyId.slice(3));

test("health needs no token; everything else does", async () => {
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
  assert.equal((await fetch(`${gw.url}/status`)).status, 401);
  assert.equal((await fetch(`${gw.url}/v1/models`, { headers: { authorization: "Bearer wrong-token" } })).status, 401);
  assert.equal((await calls()).length, 0, "nothing reached the provider without the token");
});

test("requests are forwarded with pool keys, fail over, and rotate (round_robin from the environment)", async () => {
  const served = [];
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`${gw.url}/v1/chat/completions?trace=${i}`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ model: "m", messages: [] }) });
    assert.equal(r.status, 200);
    served.push(r.headers.get("x-poolswitch-key-id"));
  }
  assert.deepEqual(served, ["b", "c", "b", "c"]);
  assert.deepEqual(await calls(), ["a", "b", "c", "b", "c"]);
});

test("method, path, query, headers and body reach the upstream; the gateway token does not", async () => {
  const r = await fetch(`${gw.url}/v1/echo?x=1&y=two`, { method: "PUT", headers: { ...auth, "x-custom": "yes", "content-type": "text/plain" }, body: "payload" });
  const echo = await r.json();
  assert.deepEqual([echo.method, echo.path, echo.query, echo.body, echo.headers["x-custom"]], ["PUT", "/v1/echo", { x: "1", y: "two" }, "payload", "yes"]);
  assert.ok(!JSON.stringify(echo).includes(TOKEN));
});

test("the openai SDK pointed at the gateway works, streaming included", async () => {
  const openai = new OpenAI({ apiKey: TOKEN, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const out = await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
  assert.match(out.choices[0].message.content, /^served by gw-[bc]$/);
  const stream = await openai.chat.completions.create({ model: "m", messages: [], stream: true }, { headers: { "x-mock-chunk-delay-ms": "150" } });
  let firstAt;
  let text = "";
  for await (const chunk of stream) {
    firstAt ??= Date.now();
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.match(text, /^served by gw-[bc]$/);
  const last = (await control.calls()).filter((c) => c.keyId?.startsWith("gw-")).at(-1);
  assert.ok(firstAt < last.lastChunkAt, "streamed through unbuffered");
});

test("status and metrics report the pool without key values; metrics parse as Prometheus text", async () => {
  const status = await (await fetch(`${gw.url}/status`, { headers: auth })).text();
  assert.deepEqual(JSON.parse(status).keys.map((k) => [k.id, k.state]), [["a", "exhausted"], ["b", "healthy"], ["c", "healthy"]]);
  const text = await (await fetch(`${gw.url}/metrics`, { headers: auth })).text();
  for (const v of Object.values(KEYS)) assert.ok(!status.includes(v) && !text.includes(v) && !logs.includes(v), "no key value anywhere");
  const families = Object.fromEntries(parsePrometheus(text).map((f) => [f.name, f]));
  const failovers = families.poolswitch_failovers_total.metrics.find((m) => m.labels.reason === "quota_exhausted");
  assert.equal(failovers.value, "1");
  const successes = families.poolswitch_requests_total.metrics.filter((m) => m.labels.outcome === "success").reduce((n, m) => n + Number(m.value), 0);
  assert.ok(successes >= 6, `successes ${successes}`);
  assert.equal(families.poolswitch_request_duration_seconds.type, "HISTOGRAM");
  assert.equal(families.poolswitch_key_cooling.metrics.find((m) => m.labels.key === "a").value, "1");
});

test("keys are managed over HTTP behind the token", async () => {
  await control.setKeys({ "sk-gw-d-secret": { id: "gw-d" } });
  const add = await fetch(`${gw.url}/keys`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id: "d", value: "sk-gw-d-secret" }) });
  assert.equal(add.status, 201);
  assert.equal((await fetch(`${gw.url}/keys/b/disable`, { method: "POST", headers: auth })).status, 200);
  assert.equal((await fetch(`${gw.url}/keys/c`, { method: "DELETE", headers: auth })).status, 200);
  assert.equal((await fetch(`${gw.url}/keys/zz`, { method: "DELETE", headers: auth })).status, 404);
  assert.equal((await fetch(`${gw.url}/keys`, { method: "POST", body: "{}" })).status, 401);
  const r = await fetch(`${gw.url}/v1/models`, { headers: auth });
  assert.equal(r.headers.get("x-poolswitch-key-id"), "d");
  const s = await (await fetch(`${gw.url}/status`, { headers: auth })).json();
  assert.deepEqual(s.keys.map((k) => [k.id, k.state]), [["a", "exhausted"], ["b", "disabled"], ["d", "healthy"]]);
});

test("thousands of requests at concurrency 256 lose none and keep counters exact", async () => {
  const before = (await (await fetch(`${gw.url}/status`, { headers: auth })).json()).totalRequests;
  const N = 2000;
  let next = 0;
  const statuses = [];
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < N) {
        next++;
        const r = await fetch(`${gw.url}/v1/models`, { headers: auth });
        await r.arrayBuffer();
        statuses.push(r.status);
      }
    }),
  );
  assert.equal(statuses.length, N);
  assert.ok(statuses.every((s) => s === 200), "every request served");
  const s = await (await fetch(`${gw.url}/status`, { headers: auth })).json();
  assert.equal(s.totalRequests - before, N);
  for (const k of s.keys) assert.equal(k.totalRequests, k.successes + k.errorCount);
});

test("a bad config exits non-zero naming the field", () => {
  const run = (env, args = []) => spawnSync(process.execPath, [CLI, "serve", ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 20_000 });
  let r = run({ POOLSWITCH_UPSTREAM_BASE_URL: "ftp://nope", POOLSWITCH_KEYS: "sk-secret-zzz" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /upstreamBaseUrl|upstream_base_url/);
  assert.ok(!r.stderr.includes("sk-secret-zzz"));
  r = run({ POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "k1", POOLSWITCH_PORT: "99999" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /port/);
  r = run({}, ["--config", "/nonexistent.yaml"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot be read/);
});

test("SIGTERM lets an in-flight request finish, then the process exits 0", async () => {
  const g = await serve(["--port", "0"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.b });
  const pending = fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "x-mock-chunk-delay-ms": "200" }, body: JSON.stringify({ model: "m", messages: [], stream: true }) }).then((r) => r.text());
  await new Promise((r) => setTimeout(r, 150));
  const exited = new Promise((resolve) => g.child.once("exit", resolve));
  g.child.kill("SIGTERM");
  const text = await pending;
  assert.match(text, /\[DONE\]/, "the in-flight stream completed");
  assert.equal(await exited, 0);
});
