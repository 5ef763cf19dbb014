// CPU per forwarded request in each proxy's own process (utime + stime from /proc/<pid>/stat,
// Linux only), alternating the proxies: a steadier measure than req/s on a shared machine.
// Usage: node bench/proxy-cpu.mjs [requests=6000] [rounds=2] [--prof DIR]
//   --prof DIR: the gateway also runs under `node --cpu-prof --cpu-prof-dir DIR` (its profile
//   is written when it exits).
//   BENCH_GATEWAY_BEFORE=<an earlier build's pkg/cli.js>: that gateway too, for a before/after.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { httpPoster } from "./http-load.mjs";
import { startMock, ROOT } from "../tests/js/mock.js";
import { mockControl } from "../tests/scenarios/scenarios.js";

const args = process.argv.slice(2);
const profAt = args.indexOf("--prof");
const profDir = profAt >= 0 ? args.splice(profAt, 2)[1] : undefined;
const [n = 6000, rounds = 2] = args.map(Number);
const KEYS = ["sk-bench-a", "sk-bench-b", "sk-bench-c"];
const BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const json = { "content-type": "application/json" };

const mock = await startMock();
await mockControl(mock.url).setKeys(Object.fromEntries(KEYS.map((k, i) => [k, { id: `bench-${i}` }])));

// Spawns a server that prints nothing useful; waits until it answers a POST.
async function serve(name, args, env, port) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const post = httpPoster(url, "/v1/chat/completions", json, BODY);
  for (let i = 0; i < 200; i++) {
    if (await post().then(() => true, () => false)) return { name, child, post };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not start`);
}

const ticks = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100 Hz)
};

async function run(post, count) {
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next++ < count) await post();
  }));
}

const prof = profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [];
const proxies = [
  await serve("poolswitch-wasm serve", [...prof, join(ROOT, "pkg/cli.js"), "serve", "--port", "18931", "--log-level", "warn"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.join(",") }, 18931),
  ...(process.env.BENCH_GATEWAY_BEFORE
    ? [await serve("poolswitch-wasm serve, before", [process.env.BENCH_GATEWAY_BEFORE, "serve", "--port", "18933", "--log-level", "warn"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.join(",") }, 18933)]
    : []),
  await serve("bare node:http proxy", [join(ROOT, "bench/bare-proxy.mjs"), "18932", mock.url, KEYS.join(",")], {}, 18932),
];
for (const p of proxies) await run(p.post, 500); // warm-up: connections, JIT
for (let r = 0; r < rounds; r++) {
  for (const p of proxies) {
    const before = ticks(p.child.pid);
    const t = performance.now();
    await run(p.post, n);
    const ms = performance.now() - t;
    const us = ((ticks(p.child.pid) - before) * 10_000) / n;
    console.log(`${p.name}: ${us.toFixed(0)} µs CPU/request, ${((n / ms) * 1000).toFixed(0)} req/s`);
  }
}
await Promise.all(proxies.map((p) => new Promise((done) => {
  p.child.once("exit", done);
  p.child.kill("SIGTERM");
})));
await mock.stop();
