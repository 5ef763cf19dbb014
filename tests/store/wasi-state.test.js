// The WASI gateway under `wasmtime serve` (a fresh instance per request, many at once) keeps
// its key state in POOLSWITCH_STATE_FILE: concurrent requests must add up exactly there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { startMock, ROOT } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";

const GATEWAY = join(ROOT, "target", "components", "poolswitch-gateway.wasm");
const skip = spawnSync("wasmtime", ["--version"]).error
  ? "wasmtime is not installed (./scripts/setup.sh installs wasmtime-cli)"
  : !existsSync(GATEWAY)
    ? "the gateway component is not built (./scripts/build-components.sh)"
    : false;
if (skip) console.log(`# skipping the WASI state file test: ${skip}`);

let mock;
let child;
let url;
let stateDir;

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

before(async () => {
  if (skip) return;
  mock = await startMock();
  await mockControl(mock.url).setKeys({ "sk-ws-a-secret": { id: "ws-a" }, "sk-ws-b-secret": { id: "ws-b" } });
  const port = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), "poolswitch-wasi-state-"));
  const env = { POOLSWITCH_STATE_FILE: "/state/pool.json", POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: "sk-ws-a-secret,sk-ws-b-secret", POOLSWITCH_STRATEGY: "round_robin", POOLSWITCH_ALLOW_UNAUTHENTICATED: "true" };
  const args = ["serve", "--addr", `127.0.0.1:${port}`, "-S", "cli=y", "--dir", `${stateDir}::/state`];
  for (const [k, v] of Object.entries(env)) args.push("--env", `${k}=${v}`);
  child = spawn("wasmtime", [...args, GATEWAY], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise((resolve, reject) => {
    const seen = (d) => String(d).includes("Serving HTTP") && resolve();
    child.stdout.on("data", seen);
    child.stderr.on("data", seen);
    child.once("exit", (code) => reject(new Error(`wasmtime serve exited with ${code}`)));
  });
  url = `http://127.0.0.1:${port}`;
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await mock?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test("wasmtime serve: 80 concurrent requests are all counted in the state file", { skip }, async () => {
  const n = 80;
  const statuses = await Promise.all(Array.from({ length: n }, () => fetch(`${url}/v1/models`).then(async (r) => (await r.arrayBuffer(), r.status))));
  assert.ok(statuses.every((s) => s === 200), `every request answered: ${statuses}`);
  const status = await (await fetch(`${url}/poolswitch/status`)).json();
  assert.equal(status.totalRequests, n, "no request's counters lost to a concurrent save");
  assert.deepEqual(readdirSync(stateDir).sort(), ["pool.json"], "no lock or temporary file left behind");
});
