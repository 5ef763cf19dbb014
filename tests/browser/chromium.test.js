// The one scenario list in headless Chromium (Debian's chromium, driven by playwright-core): a page
// served on 127.0.0.1 imports the package's browser entry and runs every listed scenario.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startMock, ROOT } from "../js/mock.js";
import { scenarioList } from "../scenarios/scenarios.js";
import { launchChromium, serveFiles } from "../support/chromium.js";

const site = await serveFiles({ "/pkg/": join(ROOT, "pkg"), "/scenarios/": join(ROOT, "tests/scenarios"), "/": join(ROOT, "tests/browser") }, "page.html");
const mock = await startMock();
const browser = await launchChromium();
after(async () => {
  await browser.close();
  await mock.stop();
  site.close();
});

const page = await browser.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
await page.goto(`${site.url}/page.html?mock=${encodeURIComponent(mock.url)}`);
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
