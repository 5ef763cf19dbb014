// The WASI component embedded by Wasmtime's Python host (tests/wasi/python_host.py, PyPI `wasmtime`
// in the venv target/python that scripts/setup.sh makes), over real wasi:http to the mock provider
// in its own process: the shared scenario list through the WIT mapping (wit-api.js), and the rounds
// of GETs and POSTs of load.js.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { scenarioList, skipReason, runScenario, mockControl } from "../scenarios/scenarios.js";
import { startMock, ROOT } from "../js/mock.js";
import { componentApi } from "./wit-api.js";
import { startHost } from "./wit-host.js";
import { ROUNDS, CALLS, KEY_IDS, keyValue, registerKeys, checkRound } from "./load.js";

const PYTHON = join(ROOT, "target", "python", "bin", "python");
const COMPONENT = process.env.POOLSWITCH_COMPONENT ?? join(ROOT, "target", "components", "poolswitch.wasm");

let mock;
let host;
let api;
before(async () => {
  assert.ok(existsSync(PYTHON), `no Python host: run scripts/setup.sh (it makes the venv ${PYTHON})`);
  mock = await startMock();
  host = await startHost(PYTHON, [join(ROOT, "tests", "wasi", "python_host.py"), COMPONENT]);
  api = componentApi(host.client);
});
after(async () => {
  await host?.stop();
  await mock?.stop();
});

// What the WIT interface cannot express is skipped with the reason given in the list (skip.wasi).
for (const entry of scenarioList) {
  const skip = skipReason(entry, "wasi");
  test(`wasmtime-py: ${entry.name}`, { skip: skip && `not in the WIT interface: ${skip}` }, () => runScenario(entry.name, api, mockControl(mock.url)));
}

test("wasmtime-py: 3 pools x 60 GETs and 60 POSTs, every attempt answered, counters exact", async () => {
  const control = mockControl(mock.url);
  const prefix = `py${Date.now().toString(36)}`;
  await registerKeys(control, prefix);
  const chat = new TextEncoder().encode(JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }));
  for (let round = 0; round < ROUNDS; round++) {
    const run = `${prefix}r${round}-`;
    const pool = host.client.Pool.create({
      upstreamBaseUrl: mock.url,
      keys: KEY_IDS.map((id) => ({ id, value: keyValue(run, id) })),
      strategy: "round-robin",
      retryAttempts: 0,
      defaultHeaders: [],
    });
    const failures = [];
    for (let i = 0; i < CALLS; i++) {
      for (const [method, send] of [["GET", () => pool.get("/v1/models", [])], ["POST", () => pool.post("/v1/chat/completions", [["content-type", "application/json"]], chat)]]) {
        try {
          const r = send();
          if (r.status !== 200 || r.attempts !== 1) failures.push(`${method} ${i}: status ${r.status} after ${r.attempts} attempts`);
        } catch (e) {
          failures.push(`${method} ${i}: ${JSON.stringify(e.payload ?? e.message)}`);
        }
      }
    }
    const keys = pool.status().keys.map((k) => [k.id, k.totalRequests, k.successes, k.errorCount, k.networkErrorCount, k.inFlight]);
    await checkRound(control, { run, failures, keys });
  }
});
