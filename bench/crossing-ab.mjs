// The wasm side of one plain request, two builds paired in one process: `start` (a JSON POST)
// and `sent` (a 200 with two rate-limit headers) on each build's WasmPool, alternating, 12
// rounds of 50,000. Prints the CPU µs per start+sent pair (min and median of the rounds; one
// process, so both builds see the same load). Usage: node bench/crossing-ab.mjs DIR_A DIR_B
// (each a checkout with pkg/ built by scripts/build-pkg.sh).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

async function load(dir) {
  const wasm = path.resolve(dir, "pkg/wasm");
  const m = await import(pathToFileURL(path.join(wasm, "poolswitch.js")).href);
  m.initSync({ module: fs.readFileSync(path.join(wasm, "poolswitch_bg.wasm")) });
  // The wire's own index of the limit headers. Wire 4 reports each with limit(index, value)
  // before sent(); earlier wires sent them as one string of index and value lines.
  const wire = JSON.parse(m.WasmPool.wire());
  const [a, b] = ["x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"].map((n) => wire.limitHeaders.indexOf(n));
  const pool = new m.WasmPool({ upstreamBaseUrl: "http://127.0.0.1:9", keys: ["sk-a", "sk-b", "sk-c"], strategy: "quota_failover" });
  const lines = `${a}\n100\n${b}\n1s`;
  const sent =
    wire.version >= 4
      ? (task) => {
          pool.limit(a, "100");
          pool.limit(b, "1s");
          return pool.sent(task, 1, 200);
        }
      : (task) => pool.sent(task, 1, 200, lines);
  return { pool, sent };
}

const dirs = process.argv.slice(2);
if (dirs.length !== 2) throw new Error("usage: node bench/crossing-ab.mjs DIR_A DIR_B");
const builds = await Promise.all(dirs.map(load));
const headers = JSON.stringify(["content-type", "application/json"]);

function round({ pool, sent }, n) {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const step = pool.start("POST", "/v1/chat/completions", headers, undefined, undefined, undefined, undefined, true);
    sent(JSON.parse(step)[0]);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

for (const b of builds) round(b, 30_000); // warm-up
const times = builds.map(() => []);
for (let r = 0; r < 12; r++) builds.forEach((b, i) => times[i].push(round(b, 50_000)));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(JSON.stringify(Object.fromEntries(dirs.map((d, i) => [d, { minUs: +Math.min(...times[i]).toFixed(2), medianUs: +median(times[i]).toFixed(2) }]))));
