// The WASI components ship in the npm package: `poolswitch-wasm/component` (the client world),
// `poolswitch-wasm/component/gateway` (wasi:http proxy) and the WIT under `poolswitch-wasm/wit/*`,
// resolved through the package's exports from an installed tarball; jco transpiles the client.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installedProject, ROOT } from "./project.js";

let project;
let resolved;
before(async () => {
  project = await installedProject("component");
  // Resolution as a user's code does it: through the package's exports map.
  await writeFile(
    join(project.dir, "resolve.mjs"),
    `console.log(JSON.stringify(["poolswitch-wasm/component", "poolswitch-wasm/component/gateway", "poolswitch-wasm/wit/poolswitch.wit"].map((s) => new URL(import.meta.resolve(s)).pathname)));`,
  );
  resolved = JSON.parse(execFileSync(process.execPath, ["resolve.mjs"], { cwd: project.dir, encoding: "utf8" }));
});

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

test("the components and the WIT resolve through the package's exports", async () => {
  const [client, gateway, wit] = resolved;
  for (const file of [client, gateway]) {
    const bytes = await readFile(file);
    assert.deepEqual([...bytes.subarray(0, 4)], WASM_MAGIC, file);
    // A component, not a core module: version 0x0d, layer 1.
    assert.deepEqual([...bytes.subarray(4, 8)], [0x0d, 0x00, 0x01, 0x00], `${file} is a component`);
  }
  assert.match(await readFile(wit, "utf8"), /package poolswitch:/);
});

test("jco transpiles the installed client component", async () => {
  const out = join(project.dir, "jco-out");
  execFileSync(process.execPath, [join(ROOT, "node_modules/@bytecodealliance/jco/dist/jco.js"), "transpile", resolved[0], "-o", out, "--name", "poolswitch", "--quiet"], { encoding: "utf8" });
  const files = await readdir(out);
  assert.ok(files.includes("poolswitch.js"), files.join(", "));
  assert.match(await readFile(join(out, "poolswitch.js"), "utf8"), /export \{/);
});
