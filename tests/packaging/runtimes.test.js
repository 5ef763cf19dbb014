// Deno (from the project's node_modules, with --allow-net only: loading the package must not need
// --allow-read) and a Vercel/Next.js-style edge build (esbuild with the `edge-light` and `worker`
// conditions) run in the `edge-runtime` package's sandbox: no top-level await, no import.meta.url.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EdgeRuntime } from "edge-runtime";
import { installedProject, mockProvider, quickstartSource, resultOf, assertFailedOver, BIN } from "./project.js";

let project;
let mock;
before(async () => {
  [project, mock] = await Promise.all([installedProject("runtimes"), mockProvider()]);
});
after(() => mock.stop());

test("Deno runs the quickstart with --allow-net only", async () => {
  await writeFile(
    join(project.dir, "deno-app.mjs"),
    quickstartSource({ baseUrl: "Deno.args[0]", keys: "JSON.parse(Deno.args[1])", report: '(r) => console.log("RESULT " + JSON.stringify(r))' }),
  );
  const keys = await mock.keysFor("deno");
  const out = execFileSync(join(BIN, "deno"), ["run", "--quiet", "--no-prompt", "--allow-net=127.0.0.1", "deno-app.mjs", mock.url, JSON.stringify(keys)], {
    cwd: project.dir,
    encoding: "utf8",
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  assertFailedOver(resultOf(out), "deno");
});

test("an edge build (edge-light, worker conditions) runs in edge-runtime", async () => {
  const keys = await mock.keysFor("edge");
  await writeFile(
    join(project.dir, "edge-app.mjs"),
    quickstartSource({ baseUrl: JSON.stringify(mock.url), keys: JSON.stringify(keys), report: "(r) => { globalThis.__result = r; }" }),
  );
  // A script, as edge sandboxes evaluate it: any top-level await or import.meta would not build.
  execFileSync(join(BIN, "esbuild"), ["edge-app.mjs", "--bundle", "--format=iife", "--platform=browser", "--conditions=edge-light,worker", "--target=es2022", "--log-level=warning", "--log-override:empty-import-meta=error", "--outfile=edge-app.js"], {
    cwd: project.dir,
    encoding: "utf8",
  });
  const runtime = new EdgeRuntime({ initialCode: await readFile(join(project.dir, "edge-app.js"), "utf8") });
  await runtime.evaluate("globalThis.__done");
  const result = runtime.evaluate("globalThis.__result");
  assert.ok(result, "the app reported nothing");
  assertFailedOver(JSON.parse(JSON.stringify(result)), "edge");
});
