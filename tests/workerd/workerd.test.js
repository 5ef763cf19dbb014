// The one scenario list in workerd (Miniflare's bundled runtime). The Worker is bundled the
// way Wrangler does it (esbuild, conditions workerd/worker/browser, .wasm kept as a module).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startWorker } from "../support/worker.js";
import { startMock, ROOT } from "../js/mock.js";
import { scenarioList } from "../scenarios/scenarios.js";

let mock;
let worker;
let mf;

before(async () => {
  mock = await startMock();
  worker = await startWorker([join(ROOT, "tests/workerd/worker.js"), join(ROOT, "tests/scenarios/scenarios.js"), join(ROOT, "tests/scenarios/scenarios.json")], { MOCK_URL: mock.url });
  assert.equal(worker.wasmFiles.length, 1, "the wasm module is imported, not inlined");
  mf = worker.mf;
});

after(async () => {
  await worker?.dispose();
  await mock?.stop();
});

test("workerd: the Worker loads the package through its workerd entry", async () => {
  const res = await mf.dispatchFetch("http://worker/?only=none");
  const body = await res.json();
  assert.deepEqual(body.names, scenarioList.map((e) => e.name));
  assert.equal(body.moduleScopeKeys, 1);
});

for (const { name } of scenarioList) {
  test(`workerd: ${name}`, async (t) => {
    const res = await mf.dispatchFetch(`http://worker/?only=${encodeURIComponent(name)}`);
    const { results } = await res.json();
    assert.equal(results.length, 1);
    if (results[0].skipped) return t.skip(results[0].skipped);
    assert.ok(results[0].ok, results[0].error);
  });
}
