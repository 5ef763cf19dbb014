// The shared scenario suite in workerd (Miniflare's bundled runtime). The Worker is bundled the
// way Wrangler does it (esbuild, conditions workerd/worker/browser, .wasm kept as a module).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, symlink, copyFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { startMock, ROOT } from "../js/mock.js";
import { scenarios } from "../scenarios/scenarios.js";

let mock;
let mf;

before(async () => {
  mock = await startMock();
  const dir = await mkdtemp(join(tmpdir(), "poolswitch-workerd-"));
  await mkdir(join(dir, "node_modules"));
  await symlink(join(ROOT, "pkg"), join(dir, "node_modules", "poolswitch-wasm"), "dir");
  await copyFile(join(ROOT, "tests/workerd/worker.js"), join(dir, "worker.js"));
  await copyFile(join(ROOT, "tests/scenarios/scenarios.js"), join(dir, "scenarios.js"));
  await build({
    entryPoints: [join(dir, "worker.js")],
    bundle: true,
    format: "esm",
    conditions: ["workerd", "worker", "browser"],
    loader: { ".wasm": "copy" },
    outdir: join(dir, "dist"),
    logLevel: "warning",
  });
  const files = await readdir(join(dir, "dist"));
  assert.ok(files.some((f) => f.endsWith(".wasm")), "the wasm module is imported, not inlined");
  mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist", "worker.js"),
    modulesRoot: join(dir, "dist"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-09-01",
    bindings: { MOCK_URL: mock.url },
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await mock?.stop();
});

test("workerd: the Worker loads the package through its workerd entry", async () => {
  const res = await mf.dispatchFetch("http://worker/?only=none");
  const body = await res.json();
  assert.deepEqual(body.names, Object.keys(scenarios));
  assert.equal(body.moduleScopeKeys, 1);
});

for (const name of Object.keys(scenarios)) {
  test(`workerd: ${name}`, async () => {
    const res = await mf.dispatchFetch(`http://worker/?only=${encodeURIComponent(name)}`);
    const { results } = await res.json();
    assert.equal(results.length, 1);
    assert.ok(results[0].ok, results[0].error);
  });
}
