// Single-file server builds (esbuild --platform=node, `bun build`), the way Lambda and container
// images ship them: the bundle is copied to a directory without node_modules and run there, so
// it must carry the wasm itself (it used to read …/poolswitch_bg.wasm next to the package).
import { test, before, after } from "node:test";
import { execFileSync } from "node:child_process";
import { copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installedProject, bareDir, mockProvider, quickstartSource, quickstartCjsSource, resultOf, assertFailedOver, BIN } from "./project.js";

let project;
let mock;
before(async () => {
  [project, mock] = await Promise.all([installedProject("node-bundles"), mockProvider()]);
  await writeFile(
    join(project.dir, "app.mjs"),
    quickstartSource({ baseUrl: "process.argv[2]", keys: "JSON.parse(process.argv[3])", report: '(r) => console.log("RESULT " + JSON.stringify(r))' }),
  );
  await writeFile(join(project.dir, "app.cjs"), quickstartCjsSource({ baseUrl: "process.argv[2]", keys: "JSON.parse(process.argv[3])" }));
});
after(() => mock.stop());

// Builds `entry` in the project with `tool args`, copies the one output file to a bare directory
// and runs it there with `runtime`.
async function buildAndRun(app, { tool, args, out, runtime = process.execPath }) {
  execFileSync(join(BIN, tool), args, { cwd: project.dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const bare = await bareDir(app);
  await copyFile(join(project.dir, out), join(bare, out));
  const keys = await mock.keysFor(app);
  const output = execFileSync(runtime, [join(bare, out), mock.url, JSON.stringify(keys)], { cwd: bare, encoding: "utf8" });
  assertFailedOver(resultOf(output), app);
}

test("esbuild ESM bundle for Node runs without node_modules", () =>
  buildAndRun("esbuild-esm", { tool: "esbuild", args: ["app.mjs", "--bundle", "--platform=node", "--format=esm", "--log-level=warning", "--outfile=esbuild-esm.mjs"], out: "esbuild-esm.mjs" }));

test("esbuild CommonJS bundle for Node runs without node_modules", () =>
  buildAndRun("esbuild-cjs", { tool: "esbuild", args: ["app.cjs", "--bundle", "--platform=node", "--format=cjs", "--log-level=warning", "--outfile=esbuild-cjs.cjs"], out: "esbuild-cjs.cjs" }));

test("bun build --target=node output runs in Node without node_modules", () =>
  buildAndRun("bun-node", { tool: "bun", args: ["build", "app.mjs", "--target=node", "--outfile=bun-node.mjs"], out: "bun-node.mjs" }));

test("bun build --target=bun output runs in Bun without node_modules", () =>
  buildAndRun("bun-bun", { tool: "bun", args: ["build", "app.mjs", "--target=bun", "--outfile=bun-bun.mjs"], out: "bun-bun.mjs", runtime: join(BIN, "bun") }));
