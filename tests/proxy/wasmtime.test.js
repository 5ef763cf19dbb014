// The proxy suite against the WASI gateway component (target/components/poolswitch-gateway.wasm,
// built by scripts/build-components.sh) under `wasmtime serve`, configured through the same
// POOLSWITCH_* variables as the Node gateway. Key state lives in a state file between requests
// (every request runs in a fresh instance).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMock, ROOT } from "../js/mock.js";
import { proxySuite, noHealthyKeysSuite, TOKEN } from "./suite.js";

const COMPONENT = join(ROOT, "target", "components", "poolswitch-gateway.wasm");

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** `wasmtime serve` of the gateway with `env`; resolves to { url, stop, logs } once it serves. */
async function serve(env) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), "poolswitch-gateway-"));
  const args = ["serve", "--addr", `127.0.0.1:${port}`, "-S", "cli=y", "--dir", `${stateDir}::/state`];
  for (const [k, v] of Object.entries({ POOLSWITCH_STATE_FILE: "/state/pool.json", ...env })) args.push("--env", `${k}=${v}`);
  args.push(COMPONENT);
  const child = spawn("wasmtime", args, { stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await new Promise((resolve, reject) => {
    const seen = (d) => {
      logs += d;
      if (logs.includes("Serving HTTP")) resolve();
    };
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.once("exit", (code) => reject(new Error(`wasmtime serve exited with ${code}: ${logs}`)));
  });
  return { url: `http://127.0.0.1:${port}`, logs: () => logs, stop: () => (child.kill("SIGTERM"), exited.then((code) => (rmSync(stateDir, { recursive: true, force: true }), code))) };
}

const target = { name: "wasmtime", keyAdmin: false, seesConnectionHeader: false, start: serve };
proxySuite(target);
noHealthyKeysSuite(target);

// --- config errors, answered per request (the component has no start-up to refuse) -------------
let mock;
before(async () => {
  mock = await startMock();
});
after(() => mock.stop());

test("wasmtime: a bad or unknown config answers 500 invalid_config naming the field, never a key", async () => {
  const cases = [
    [{ POOLSWITCH_KEYS: "", POOLSWITCH_GATEWAY_TOKEN: TOKEN }, /keys/],
    [{ POOLSWITCH_KEYS: "sk-wasi-secret-1" }, /gateway_token is required.*allow_unauthenticated/],
    [{ POOLSWITCH_KEYS: "sk-wasi-secret-1", POOLSWITCH_GATEWAY_TOKN: TOKEN }, /POOLSWITCH_GATEWAY_TOKN.*POOLSWITCH_GATEWAY_TOKEN/],
    [{ POOLSWITCH_KEYS: '[{"id":"a","value":12345678901}]', POOLSWITCH_GATEWAY_TOKEN: TOKEN }, /keys\[0\]\.value/],
  ];
  for (const [env, field] of cases) {
    const g = await serve({ POOLSWITCH_UPSTREAM_BASE_URL: mock.url, ...env });
    try {
      const r = await fetch(`${g.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await r.text();
      assert.equal(r.status, 500);
      assert.equal(JSON.parse(text).error.type, "invalid_config");
      assert.match(JSON.parse(text).error.message, field);
      assert.ok(!text.includes("sk-wasi-secret-1") && !text.includes("12345678901"), text);
    } finally {
      await g.stop();
    }
  }
  const open = await serve({ POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-wasi-open", POOLSWITCH_ALLOW_UNAUTHENTICATED: "true" });
  try {
    const r = await fetch(`${open.url}/poolswitch/status`);
    assert.equal(r.status, 200, "served without a token when asked explicitly");
  } finally {
    await open.stop();
  }
});
