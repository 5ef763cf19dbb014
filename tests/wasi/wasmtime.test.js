// The WASI components in Wasmtime (the CLI, built by `cargo install wasmtime-cli`):
//  - the client world, imported by a test-driver command (tests/wasi/driver) and composed with it
//    by `wac plug`, sends rounds of GETs and POSTs under `wasmtime run -S http` (load.js);
//  - the gateway world, served by `wasmtime serve`, proxies curl-style requests through the pool.
// The mock provider runs in its own process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMock, ROOT } from "../js/mock.js";
import { ROUNDS, registerKeys, checkRound } from "./load.js";
import { mockControl } from "../scenarios/scenarios.js";

const COMPONENTS = join(ROOT, "target", "components");
const mock = await startMock();
const control = mockControl(mock.url);

// --- the client world, embedded by the CLI ---------------------------------------------------
// The driver sends load.js's rounds through the component; the shared scenario list runs on
// Wasmtime through its Python embedding (wasmtime-py.test.js).
test("wasmtime run: 3 pools x 60 GETs and 60 POSTs through the composed component, every attempt answered", async () => {
  const composed = join(COMPONENTS, "driver-composed.wasm");
  execFileSync("wac", ["plug", join(ROOT, "target/driver/wasm32-wasip2/release/poolswitch-wasi-driver.wasm"), "--plug", join(COMPONENTS, "poolswitch.wasm"), "-o", composed]);
  const prefix = `cli${Date.now().toString(36)}`;
  await registerKeys(control, prefix);
  const out = execFileSync("wasmtime", ["run", "-S", "http=y,cli=y", composed, mock.url, prefix], { encoding: "utf8", timeout: 120_000 });
  const rounds = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(rounds.length, ROUNDS);
  for (const round of rounds) await checkRound(control, round);
});

// --- the gateway world, served ----------------------------------------------------------------
async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function serve(env) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), "poolswitch-gateway-"));
  const args = ["serve", "--addr", `127.0.0.1:${port}`, "-S", "cli=y", "--dir", `${stateDir}::/state`];
  for (const [k, v] of Object.entries({ POOLSWITCH_STATE_FILE: "/state/pool.json", ...env })) args.push("--env", `${k}=${v}`);
  args.push(join(COMPONENTS, "poolswitch-gateway.wasm"));
  const child = spawn("wasmtime", args, { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise((resolve, reject) => {
    const seen = (d) => String(d).includes("Serving HTTP") && resolve();
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.once("exit", (code) => reject(new Error(`wasmtime serve exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGTERM") };
}

let gateway;
let prefix;
before(async () => {
  prefix = `gw${Date.now().toString(36)}-`;
  await control.setKeys({
    [`sk-${prefix}a`]: { id: `${prefix}a`, script: ["quota"] },
    [`sk-${prefix}b`]: { id: `${prefix}b` },
    [`sk-${prefix}c`]: { id: `${prefix}c` },
  });
  gateway = await serve({
    POOLSWITCH_UPSTREAM_BASE_URL: mock.url,
    POOLSWITCH_KEYS: JSON.stringify([{ id: "a", value: `sk-${prefix}a` }, { id: "b", value: `sk-${prefix}b` }, { id: "c", value: `sk-${prefix}c` }]),
    POOLSWITCH_STRATEGY: "round_robin",
    POOLSWITCH_COOLDOWN_SECONDS: "600",
  });
});
after(async () => {
  gateway?.stop();
  await mock.stop();
});

const calls = async () => (await control.calls()).filter((c) => c.keyId?.startsWith(prefix)).map((c) => c.keyId.slice(prefix.length));
const chat = (extra = {}, headers = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer callers-own", ...headers }, body: JSON.stringify({ model: "m", messages: [], ...extra }) });

test("gateway: health answers locally", async () => {
  const r = await fetch(`${gateway.url}/poolswitch/health`);
  assert.deepEqual([r.status, await r.json()], [200, { status: "ok" }]);
});

test("gateway: requests fail over and rotate across requests, the caller's auth replaced", async () => {
  const served = [];
  for (let i = 0; i < 4; i++) {
    const r = await chat();
    assert.equal(r.status, 200);
    served.push([r.headers.get("x-poolswitch-key-id"), (await r.json()).choices[0].message.content.slice(-1)]);
  }
  assert.deepEqual(served, [["b", "b"], ["c", "c"], ["b", "b"], ["c", "c"]]);
  assert.deepEqual(await calls(), ["a", "b", "c", "b", "c"]);
});

test("gateway: status reports the pool without key values", async () => {
  const r = await fetch(`${gateway.url}/poolswitch/status`);
  const text = await r.text();
  const s = JSON.parse(text);
  assert.deepEqual(s.keys.map((k) => [k.id, k.state, k.totalRequests]), [["a", "exhausted", 1], ["b", "healthy", 2], ["c", "healthy", 2]]);
  assert.ok(!text.includes(`sk-${prefix}`));
});

test("gateway: a streamed response passes through unbuffered", async () => {
  const r = await chat({ stream: true }, { "x-mock-chunk-delay-ms": "150" });
  assert.equal(r.headers.get("content-type"), "text/event-stream");
  const reader = r.body.getReader();
  const first = await reader.read();
  const firstAt = Date.now();
  let text = new TextDecoder().decode(first.value);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.match(text, /data: \[DONE\]/);
  const last = (await control.calls()).filter((c) => c.keyId?.startsWith(prefix)).at(-1);
  assert.ok(firstAt < last.lastChunkAt, `first chunk arrived at ${firstAt}, the provider sent the last at ${last.lastChunkAt}`);
});

test("gateway: a path leaving the origin is refused, a bad config names its field", async () => {
  const r = await fetch(`${gateway.url}//evil.example.net/x`);
  assert.equal(r.status, 400);
  const bad = await serve({ POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "" });
  try {
    const res = await fetch(`${bad.url}/v1/models`);
    const body = await res.json();
    assert.equal(res.status, 500);
    assert.equal(body.error.type, "invalid_config");
    assert.match(body.error.message, /keys/);
  } finally {
    bad.stop();
  }
});
