// Browser apps built by the bundlers users run (Vite and webpack production builds, an esbuild
// bundle), served on 127.0.0.1 and run in headless Chromium against the mock provider. The wasm
// used to be dropped (`"sideEffects": false` let bundlers skip the module that loads it) or not
// emitted (esbuild). A second page checks the refusal without `dangerouslyAllowBrowser`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installedProject, mockProvider, quickstartSource, runInChromium, pageHtml, assertFailedOver, BIN } from "./project.js";

let project;
let mock;
before(async () => {
  [project, mock] = await Promise.all([installedProject("browser-bundles"), mockProvider()]);
});
after(() => mock.stop());

const query = () => new URLSearchParams(location.search); // eslint-disable-line no-undef
const APP = quickstartSource({
  baseUrl: `(${query})().get("mock")`,
  keys: `JSON.parse((${query})().get("keys"))`,
  report: "(r) => { window.__result = r; }",
  options: ", dangerouslyAllowBrowser: true",
});
// The same app without the flag: the client must refuse, naming the option.
const REFUSED = quickstartSource({ baseUrl: `"http://127.0.0.1:9"`, keys: `["sk-not-sent"]`, report: "(r) => { window.__result = r; }" });

// A subdirectory of the project (resolves poolswitch-wasm from the project's node_modules) with
// the app and its page; `build(dir)` runs the bundler there and returns the served directory.
async function app(name, source, build) {
  const dir = join(project.dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "main.js"), source);
  await writeFile(join(dir, "index.html"), pageHtml("./main.js"));
  return build(dir);
}

async function runApp(name, build) {
  const served = await app(name, APP, build);
  const keys = await mock.keysFor(name);
  const { result, pageErrors } = await runInChromium(served, "index.html", { mock: mock.url, keys: JSON.stringify(keys) });
  assert.deepEqual(pageErrors, []);
  assert.ok(result, "the app reported nothing");
  assertFailedOver(result, name);
  return served;
}

const exec = (tool, args, cwd) => execFileSync(join(BIN, tool), args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

const vite = (dir) => {
  exec("vite", ["build", "--logLevel", "warn"], dir);
  return join(dir, "dist");
};
const webpack = async (dir) => {
  exec("webpack", ["--mode", "production", "--entry", "./main.js", "--output-path", "./dist", "--output-filename", "main.js", "--no-stats"], dir);
  await writeFile(join(dir, "dist", "index.html"), pageHtml("./main.js"));
  return join(dir, "dist");
};
const esbuild = async (dir) => {
  exec("esbuild", ["main.js", "--bundle", "--format=esm", "--minify", "--log-level=warning", "--outfile=dist/main.js"], dir);
  await writeFile(join(dir, "dist", "index.html"), pageHtml("./main.js"));
  return join(dir, "dist");
};

test("Vite production build loads the wasm and fails over in Chromium", () => runApp("vite", vite));

test("webpack 5 production build loads the wasm and fails over in Chromium", () => runApp("webpack", webpack));

test("esbuild browser bundle loads the wasm and fails over in Chromium", () => runApp("esbuild", esbuild));

test("in a page, the client refuses to start without dangerouslyAllowBrowser", async () => {
  const served = await app("refused", REFUSED, esbuild);
  const { result, pageErrors } = await runInChromium(served, "index.html", {});
  assert.deepEqual(pageErrors, []);
  assert.equal(result.kind, "invalid_config");
  assert.match(result.error, /dangerouslyAllowBrowser: true/);
  assert.match(result.error, /readable by whoever loads the page/);
});
