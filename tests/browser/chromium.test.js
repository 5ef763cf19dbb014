// The one scenario list in headless Chromium (Debian's chromium, driven by playwright-core): a page
// served on 127.0.0.1 imports the package's browser entry and runs every listed scenario.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { startMock, ROOT } from "../js/mock.js";
import { scenarioList } from "../scenarios/scenarios.js";

const TYPES = { ".js": "text/javascript", ".html": "text/html", ".wasm": "application/wasm", ".json": "application/json" };
const MOUNTS = { "/pkg/": join(ROOT, "pkg"), "/scenarios/": join(ROOT, "tests/scenarios"), "/": join(ROOT, "tests/browser") };

const site = http.createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  const [prefix, dir] = Object.entries(MOUNTS).find(([p]) => path.startsWith(p));
  const file = normalize(join(dir, path.slice(prefix.length) || "page.html"));
  if (!file.startsWith(dir)) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const mock = await startMock();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
after(async () => {
  await browser.close();
  await mock.stop();
  site.close();
});

const page = await browser.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
await page.goto(`http://127.0.0.1:${site.address().port}/page.html?mock=${encodeURIComponent(mock.url)}`);
await page.waitForFunction(() => window.__results, null, { timeout: 120_000 });
const results = await page.evaluate(() => window.__results);
const userAgent = await page.evaluate(() => navigator.userAgent);

test("the page ran in Chromium and loaded the package", () => {
  assert.match(userAgent, /Chrome\//);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(results.map((r) => r.name), scenarioList.map((e) => e.name), "the page ran the whole list, in order");
});

for (const r of results) {
  test(`chromium: ${r.name}`, { skip: r.skipped }, () => assert.ok(r.ok, r.error));
}
