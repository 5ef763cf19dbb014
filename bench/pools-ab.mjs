// Two builds' pools against each other, nothing else in the rounds: `client.post` at concurrency 32
// to one mock, in workerd (4000 requests inside one Worker invocation) or headless Chromium (1500
// requests), builds alternating, the order flipped every round. Section 5b's pool-vs-fetch
// ratios swing on a loaded machine; this pairs the two pools directly.
// usage: node bench/pools-ab.mjs workerd|chromium ROUNDS PKG_DIR_A PKG_DIR_B
import { resolve } from "node:path";
import { startMock, ROOT } from "../tests/js/mock.js";
import { mockControl } from "../tests/scenarios/scenarios.js";

const [host, rounds, ...dirs] = process.argv.slice(2);
const pkgs = dirs.map((d) => resolve(d));
const KEYS = ["sk-bench-a", "sk-bench-b", "sk-bench-c"];
const C = 32;
const mock = await startMock();
await mockControl(mock.url).setKeys(Object.fromEntries(KEYS.map((k, i) => [k, { id: `bench-${i}` }])));
const runs = [];
const cleanup = [];
if (host === "workerd") {
  const { startWorker } = await import("../tests/support/worker.js");
  for (const pkg of pkgs) {
    const worker = await startWorker([resolve(ROOT, "bench/worker-load.js")], { MOCK_URL: mock.url, KEYS: JSON.stringify(KEYS) }, { pkg });
    cleanup.push(() => worker.dispose());
    runs.push(async (n) => {
      const start = performance.now();
      await (await worker.mf.dispatchFetch(`http://worker/?mode=pool&c=${C}&n=${n}`)).json();
      return (n / (performance.now() - start)) * 1000;
    });
  }
} else {
  const { launchChromium, serveFiles } = await import("../tests/support/chromium.js");
  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  for (const pkg of pkgs) {
    const site = await serveFiles({ "/pkg/": pkg });
    cleanup.push(() => site.close());
    const page = await browser.newPage();
    await page.goto(`${site.url}/pkg/package.json`); // an origin to import from
    await page.evaluate(async ({ mockUrl, keys }) => {
      const { PoolSwitchClient } = await import("/pkg/esm/browser.js");
      // The bench's own test keys against the local mock: exposing them in the page is intended.
      const pool = new PoolSwitchClient({ upstreamBaseUrl: mockUrl, keys, strategy: "quota_failover", dangerouslyAllowBrowser: true });
      const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
      window.__load = async (c, n) => {
        let next = 0;
        const start = performance.now();
        await Promise.all(Array.from({ length: c }, async () => { while (next < n) { next++; await pool.post("/v1/chat/completions", { json: body }); } }));
        return (n / (performance.now() - start)) * 1000;
      };
    }, { mockUrl: mock.url, keys: KEYS });
    runs.push((n) => page.evaluate(({ c, n }) => window.__load(c, n), { c: C, n }));
  }
}
const n = host === "workerd" ? 4000 : 1500;
for (const run of runs) await run(300); // warm-up
const rps = pkgs.map(() => []);
for (let i = 0; i < Number(rounds); i++) {
  const order = i % 2 ? [...runs.keys()].reverse() : [...runs.keys()];
  for (const j of order) rps[j].push(await runs[j](n));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratios = rps[1].map((x, i) => x / rps[0][i]);
console.log(`${host}, ${rounds} rounds: A ${median(rps[0]).toFixed(0)} req/s, B ${median(rps[1]).toFixed(0)} req/s; B/A per round: median ${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
for (const c of cleanup) await c();
await mock.stop();
