// The WASI gateway under `wasmtime serve` (a fresh instance per request, many at once) keeps
// its key state in POOLSWITCH_STATE_FILE: concurrent requests must add up exactly there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
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
let stderr = "";

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
    child.stderr.on("data", (d) => (stderr += d));
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

const lockFile = () => join(stateDir, "pool.json.lock");
const totalRequests = async () => (await (await fetch(`${url}/poolswitch/status`)).json()).totalRequests;
const get = async () => {
  const res = await fetch(`${url}/v1/models`);
  await res.arrayBuffer();
  return res.status;
};

test("wasmtime serve: a lock left by a dead writer is broken, even one dated in the future", { skip }, async () => {
  const before = await totalRequests();
  // Nothing renews it; its timestamp (another clock, or a copied file) says it is brand new.
  writeFileSync(lockFile(), "dead-writer.0");
  const future = new Date(Date.now() + 24 * 3600_000);
  utimesSync(lockFile(), future, future);
  assert.equal(await get(), 200);
  assert.equal(await totalRequests(), before + 1, "the request's counters were saved once the dead lock was broken");
  assert.deepEqual(readdirSync(stateDir).sort(), ["pool.json"], "no lock or temporary file left behind");
});

test("wasmtime serve: a lock its writer keeps renewing is never broken, whatever its timestamp says", { skip }, async () => {
  const before = await totalRequests();
  // A live writer (here this test) rewrites its lock every 100 ms, dated an hour back as a
  // writer on a slower clock would date it; it checks each time that the lock is still its own.
  let mark = null;
  let broken = false;
  const renew = (n) => {
    if (mark !== null && (!existsSync(lockFile()) || readFileSync(lockFile(), "utf8") !== mark)) broken = true;
    if (broken) return;
    mark = `live-writer.${n}`;
    writeFileSync(lockFile(), mark);
    const past = new Date(Date.now() - 3600_000);
    utimesSync(lockFile(), past, past);
  };
  let n = 0;
  renew(n++);
  const timer = setInterval(() => renew(n++), 100);
  const logged = stderr.length;
  try {
    assert.equal(await get(), 200, "the request is answered; only its save gives up");
  } finally {
    clearInterval(timer);
  }
  renew(n++);
  assert.equal(broken, false, "the live writer's lock was not broken");
  assert.match(stderr.slice(logged), /state file lock not taken within 3000 ms/);
  rmSync(lockFile());
  assert.equal(await totalRequests(), before, "the request that could not take the lock saved nothing");
  assert.equal(await get(), 200);
  assert.equal(await totalRequests(), before + 1, "once the writer let go, the next save went through");
});
