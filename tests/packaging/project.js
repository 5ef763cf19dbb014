// The packaging suite's fixtures, the way a new user meets the package: `npm pack` pkg/, install
// the tarball into a fresh project under a temp dir, write an app there, build it with the
// user's tool (the repo's pinned copy, run with the project as its working directory), run it.
// Every app does the quickstart against the mock provider: two keys, the first out of quota, so
// a pass proves the wasm loaded, the request went out, and the pool failed over.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, writeFile, mkdir } from "node:fs/promises";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMock, ROOT } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";

export { ROOT };
export const BIN = join(ROOT, "node_modules", ".bin");
// The package under test: pkg/ as built by scripts/build-pkg.sh (POOLSWITCH_PKG points elsewhere,
// e.g. at an older build, to check that a test fails there).
export const PKG = process.env.POOLSWITCH_PKG ?? join(ROOT, "pkg");

// Every test file runs in its own process: its projects (each with a node_modules) go when it exits.
const made = [];
process.once("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh project with the packed tarball installed; resolves to { dir, tarball }. */
export async function installedProject(name) {
  const dir = await mkdtemp(join(tmpdir(), `poolswitch-${name}-`));
  made.push(dir);
  execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: PKG, encoding: "utf8" });
  const tarball = join(dir, (await readdir(dir)).find((f) => f.endsWith(".tgz")));
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: `${name}-app`, version: "1.0.0", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", tarball], { cwd: dir });
  return { dir, tarball };
}

/** An empty directory outside any node_modules tree: where a bundle must run on its own. */
export async function bareDir(name) {
  const dir = await mkdtemp(join(tmpdir(), `poolswitch-${name}-bare-`));
  made.push(dir);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Starts the mock provider; `keysFor(app)` registers two fresh keys, the first out of quota. */
export async function mockProvider() {
  const mock = await startMock();
  const control = mockControl(mock.url);
  return {
    url: mock.url,
    stop: mock.stop,
    async keysFor(app) {
      const keys = [`sk-${app}-a-secret`, `sk-${app}-b-secret`];
      await control.setKeys({ [keys[0]]: { id: `${app}-a`, script: ["quota"] }, [keys[1]]: { id: `${app}-b` } });
      return keys;
    },
  };
}

/**
 * The quickstart as an ES module body: `baseUrl` and `keys` are expressions of the host's own
 * way to get arguments; `report` is a function expression that receives the result object.
 */
export function quickstartSource({ importFrom = "poolswitch-wasm", baseUrl, keys, report, options = "" }) {
  return `import { PoolSwitchClient, PoolSwitchError } from "${importFrom}";

async function main() {
  const client = new PoolSwitchClient({ upstreamBaseUrl: ${baseUrl}, keys: ${keys}, strategy: "quota_failover"${options} });
  const out = await client.post("/v1/chat/completions", { json: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi" }] } });
  return { content: out.choices[0].message.content, keys: client.status().keys.map((k) => k.id + ":" + k.state) };
}
globalThis.__done = main().then(
  (result) => (${report})(result),
  (e) => (${report})({ error: String((e && e.stack) || e), kind: e instanceof PoolSwitchError ? e.kind : undefined }),
);
`;
}

/** The same quickstart for CommonJS apps. */
export function quickstartCjsSource({ baseUrl, keys }) {
  return `const { PoolSwitchClient } = require("poolswitch-wasm");

const client = new PoolSwitchClient({ upstreamBaseUrl: ${baseUrl}, keys: ${keys}, strategy: "quota_failover" });
client.post("/v1/chat/completions", { json: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi" }] } }).then(
  (out) => console.log("RESULT " + JSON.stringify({ content: out.choices[0].message.content, keys: client.status().keys.map((k) => k.id + ":" + k.state) })),
  (e) => console.log("RESULT " + JSON.stringify({ error: String(e && e.stack || e) })),
);
`;
}

/** Picks the `RESULT {json}` line out of a program's output. */
export function resultOf(output) {
  const line = output.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line, `no RESULT line in:\n${output}`);
  return JSON.parse(line.slice("RESULT ".length));
}

/** The quickstart's answer: served by the second key after the first ran out of quota. */
export function assertFailedOver(result, app) {
  assert.equal(result.error, undefined, result.error);
  assert.equal(result.content, `served by ${app}-b`);
  assert.deepEqual(result.keys, ["key-1:exhausted", "key-2:healthy"]);
}

/**
 * Serves `dir` on 127.0.0.1, opens `page` in headless Chromium (Debian's chromium, driven by
 * playwright-core) and resolves to what the app put in `window.__result`, plus page errors and
 * the paths the page asked for.
 */
export async function runInChromium(dir, page, query) {
  const { launchChromium, serveFiles } = await import("../support/chromium.js");
  const site = await serveFiles({ "/": dir });
  let browser;
  try {
    browser = await launchChromium();
    const tab = await browser.newPage();
    const pageErrors = [];
    tab.on("pageerror", (e) => pageErrors.push(String(e)));
    await tab.goto(`${site.url}/${page}?${new URLSearchParams(query)}`);
    // The wait ends on the app's own report or on an uncaught page error (a module that fails to
    // load never reports); playwright's deadline bounds it.
    await tab.waitForFunction(() => window.__result || window.__pageError, null, { timeout: 60_000 }).catch(() => {});
    const result = await tab.evaluate(() => window.__result ?? null);
    return { result, pageErrors, requested: site.requested };
  } finally {
    await browser?.close();
    site.close();
  }
}

/** A page that runs `script` as a module and records uncaught errors for runInChromium. */
export function pageHtml(script) {
  return `<!doctype html>
<meta charset="utf-8">
<title>poolswitch-wasm app</title>
<script>addEventListener("error", (e) => (window.__pageError = String(e.message)));</script>
<script type="module" src="${script}"></script>
`;
}
