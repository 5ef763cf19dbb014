// The proxy suite against `poolswitch-wasm serve` (the packed CLI in pkg/, as a child process
// on a loopback port), then what only a long-lived Node process has: its config file, start-up
// refusals, the shutdown drain, key administration, the openai SDK pointed at it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { startMock, ROOT } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";
import { proxySuite, noHealthyKeysSuite, TOKEN } from "./suite.js";

const CLI = join(ROOT, "pkg", "cli.js");

// The child sees none of the outer POOLSWITCH_* variables, only the ones a test gives.
function childEnv(env) {
  const out = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("POOLSWITCH_")));
  return { ...out, ...env };
}

/** Starts the CLI; resolves to { url, child, stop, logs } once it listens. */
function serve(args, env = {}) {
  const child = spawn(process.execPath, [CLI, "serve", ...args], { env: childEnv(env), stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      logs += d;
      const m = String(logs).match(/"event":"listening","url":"([^"]+)"/);
      if (m) resolve({ url: m[1], child, exited, logs: () => logs, stop: () => (child.kill("SIGTERM"), exited) });
    });
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}: ${logs}`)));
  });
}

const run = (args, env = {}) => spawnSync(process.execPath, [CLI, "serve", ...args], { env: childEnv(env), encoding: "utf8", timeout: 20_000 });

const target = { name: "node", keyAdmin: true, seesConnectionHeader: true, start: (env) => serve(["--port", "0"], env) };
proxySuite(target);
noHealthyKeysSuite(target);

// --- Node only ---------------------------------------------------------------------------------
let mock;
let control;
before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
});
after(() => mock.stop());

function configFile(text) {
  const file = join(mkdtempSync(join(tmpdir(), "poolswitch-gw-")), "poolswitch.yaml");
  writeFileSync(file, text);
  return file;
}

test("node: the YAML file, env over it, the openai SDK pointed at the gateway (streaming too)", async () => {
  await control.setKeys({ "sk-node-yaml-a": { id: "node-yaml-a" }, "sk-node-yaml-b": { id: "node-yaml-b" } });
  // The reference client's field names; camelCase spellings are the same fields.
  const file = configFile(`upstream_base_url: ${mock.url}\nstrategy: least_used\ngatewayToken: ${TOKEN}\nkeys:\n  - id: a\n    value: sk-node-yaml-a\n  - id: b\n    value: sk-node-yaml-b\n    monthly_quota: 1000\n`);
  const g = await serve(["--config", file, "--port", "0"], { POOLSWITCH_STRATEGY: "round_robin" });
  try {
    assert.equal((await fetch(`${g.url}/v1/models`)).status, 401, "gatewayToken: is the token, not dropped");
    const openai = new OpenAI({ apiKey: TOKEN, baseURL: `${g.url}/v1`, maxRetries: 0 });
    const out = await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    assert.match(out.choices[0].message.content, /^served by node-yaml-[ab]$/);
    const stream = await openai.chat.completions.create({ model: "m", messages: [], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.match(text, /^served by node-yaml-[ab]$/);
    const s = await (await fetch(`${g.url}/poolswitch/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    assert.equal(s.strategy, "round_robin", "the environment wins over the file");
  } finally {
    await g.stop();
  }
});

test("node: thousands of requests at concurrency 256 lose none and keep counters exact", async () => {
  await control.setKeys({ "sk-node-load-a": { id: "node-load-a" }, "sk-node-load-b": { id: "node-load-b" } });
  const g = await serve(["--port", "0"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-node-load-a,sk-node-load-b" });
  try {
    const N = 2000;
    let next = 0;
    const statuses = [];
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < N) {
          next++;
          const r = await fetch(`${g.url}/v1/models`);
          await r.arrayBuffer();
          statuses.push(r.status);
        }
      }),
    );
    assert.equal(statuses.length, N);
    assert.ok(statuses.every((s) => s === 200), "every request served");
    const s = await (await fetch(`${g.url}/poolswitch/status`)).json();
    assert.equal(s.totalRequests, N);
    for (const k of s.keys) assert.equal(k.totalRequests, k.successes + k.errorCount);
  } finally {
    await g.stop();
  }
});

test("node: a bad config exits 1 naming the field, and never shows a key", () => {
  let r = run([], { POOLSWITCH_UPSTREAM_BASE_URL: "ftp://nope", POOLSWITCH_KEYS: "sk-secret-zzz" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /upstreamBaseUrl|upstream_base_url/);
  assert.ok(!r.stderr.includes("sk-secret-zzz"));
  r = run([], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "k1", POOLSWITCH_PORT: "99999" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /port/);
  r = run(["--config", "/nonexistent.yaml"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot be read/);
  // A key of digits is a YAML number: refused without being shown.
  for (const keys of ["keys:\n  - 12345678901\n", "keys:\n  - id: a\n    value: 12345678901\n"]) {
    r = run(["--config", configFile(`upstream_base_url: ${mock.url}\n${keys}`)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /keys\[0\]/);
    assert.ok(!r.stderr.includes("12345678901"), r.stderr);
  }
});

test("node: unknown fields and variables are refused, naming the nearest known one", () => {
  for (const field of ["gateway-token", "gateway_tokn"]) {
    const r = run(["--config", configFile(`upstream_base_url: ${mock.url}\nkeys: [sk-a]\n${field}: ${TOKEN}\n`)]);
    assert.equal(r.status, 1, field);
    assert.ok(r.stderr.includes(field) && r.stderr.includes("`gateway_token`"), r.stderr);
    assert.ok(!r.stderr.includes(TOKEN));
  }
  const r = run([], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-a", POOLSWITCH_GATEWAY_TOKN: TOKEN });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /POOLSWITCH_GATEWAY_TOKN.*POOLSWITCH_GATEWAY_TOKEN/);
});

test("node: no token off loopback refuses to start unless allowUnauthenticated says so", () => {
  // Only refusals here: the tests listen on loopback alone. That a token or
  // allow_unauthenticated: true lets it start is checked in src/core/proxy/settings.rs.
  const env = { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-a" };
  for (const host of ["0.0.0.0", "::"]) {
    const r = run(["--host", host, "--port", "0"], env);
    assert.equal(r.status, 1, host);
    assert.match(r.stderr, /gateway_token is required.*allow_unauthenticated/);
  }
  const r = run(["--host", "0.0.0.0", "--port", "0"], { ...env, POOLSWITCH_ALLOW_UNAUTHENTICATED: "maybe" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /allow_unauthenticated/);
});

test("node: SIGTERM lets an in-flight request finish, then the process exits 0", async () => {
  await control.setKeys({ "sk-node-drain": { id: "node-drain" } });
  const g = await serve(["--port", "0"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-node-drain" });
  const res = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "x-mock-chunk-delay-ms": "200" }, body: JSON.stringify({ model: "m", messages: [], stream: true }) });
  g.child.kill("SIGTERM"); // the answer has started: its stream is in flight
  const text = await res.text();
  assert.match(text, /\[DONE\]/, "the in-flight stream completed");
  assert.equal(await g.exited, 0);
});

test("node: SIGTERM completes within the drain bound while a request waits on a silent upstream", { timeout: 60_000 }, async () => {
  await control.setKeys({ "sk-node-silent": { id: "node-silent", script: ["hang"] } });
  const g = await serve(["--port", "0"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-node-silent", POOLSWITCH_DRAIN_TIMEOUT_MS: "500" });
  const pending = fetch(`${g.url}/v1/models`).then((r) => r.status, () => "closed");
  // Wait until the upstream holds the request, then ask the gateway to stop.
  while (!(await control.calls()).some((c) => c.keyId === "node-silent")) await new Promise((r) => setTimeout(r, 20));
  g.child.kill("SIGTERM");
  assert.equal(await g.exited, 0);
  const outcome = await pending;
  assert.ok(outcome === "closed" || outcome >= 500, `the waiting caller got ${outcome}`);
  assert.match(g.logs(), /"event":"drain_timeout"/);
});
