// The dual-package hazard in Node: `import` and `require` of the package in one process must give
// one PoolSwitchError class (an error from a client made through require is instanceof the one
// from import) and one wasm instance.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installedProject, mockProvider, resultOf } from "./project.js";
import { mockControl } from "../scenarios/scenarios.js";

let project;
let mock;
before(async () => {
  [project, mock] = await Promise.all([installedProject("dual"), mockProvider()]);
});
after(() => mock.stop());

// Counts the package's wasm instantiations (every entry uses initSync: new WebAssembly.Instance),
// before the package loads; Node's own (undici's llhttp) are not the package's.
const COUNTER = `let n = 0;
WebAssembly.Instance = new Proxy(WebAssembly.Instance, {
  construct(target, args, newTarget) {
    if (new Error().stack.includes("node_modules/poolswitch-wasm/")) n++;
    return Reflect.construct(target, args, newTarget);
  },
});
globalThis.__wasmInstances = () => n;
`;

const APP = `import { createRequire } from "node:module";
import { PoolSwitchClient, PoolSwitchError } from "poolswitch-wasm";
const require = createRequire(import.meta.url);
const cjs = require("poolswitch-wasm");

const [url, key] = process.argv.slice(2);
const viaRequire = new cjs.PoolSwitchClient({ upstreamBaseUrl: url, keys: [key] });
const viaImport = new PoolSwitchClient({ upstreamBaseUrl: url, keys: [key] });
let error;
try {
  await viaRequire.post("/v1/chat/completions", { json: { model: "m", messages: [] } });
} catch (e) {
  error = e;
}
console.log("RESULT " + JSON.stringify({
  sameClass: cjs.PoolSwitchError === PoolSwitchError && cjs.PoolSwitchClient === PoolSwitchClient,
  requireErrorIsImportError: error instanceof PoolSwitchError,
  kind: error && error.kind,
  status: error && error.status,
  importClientWorks: viaImport.status().keys.length === 1,
  wasmInstances: globalThis.__wasmInstances(),
}));
`;

test("import and require share one PoolSwitchError class and one wasm instance", async () => {
  await writeFile(join(project.dir, "counter.mjs"), COUNTER);
  await writeFile(join(project.dir, "dual.mjs"), APP);
  const key = "sk-dual-secret";
  await mockControl(mock.url).setKeys({ [key]: { id: "dual", script: ["bad_request"] } });
  const out = execFileSync(process.execPath, ["--import", "./counter.mjs", "dual.mjs", mock.url, key], { cwd: project.dir, encoding: "utf8" });
  assert.deepEqual(resultOf(out), { sameClass: true, requireErrorIsImportError: true, kind: "upstream", status: 400, importClientWorks: true, wasmInstances: 1 });
});
