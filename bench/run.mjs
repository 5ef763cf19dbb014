// Benchmarks of poolswitch-wasm, every figure against a baseline measured in the same run.
// Run with ./scripts/bench.sh (it builds pkg/ and installs the original clients first).
// Prints tables and writes bench/RESULTS.md. The mock provider runs in its own process.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import net from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import { PoolSwitchClient } from "../pkg/esm/node.js";
import { startMock, ROOT } from "../tests/js/mock.js";
import { mockControl } from "../tests/scenarios/scenarios.js";

const OUT = join(ROOT, "bench", "out");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const require = createRequire(import.meta.url);
const Original = require(join(OUT, "node", "node_modules", "poolswitch-node"));
const python = join(OUT, "venv", "bin", "python");

const mock = await startMock();
const control = mockControl(mock.url);
const BODY = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const KEYS = ["sk-bench-a", "sk-bench-b", "sk-bench-c"];
await control.setKeys(Object.fromEntries(KEYS.map((k, i) => [k, { id: `bench-${i}` }])));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** Runs `n` calls of `call` at `concurrency`; returns { rps, p50, p99 } (ms). */
async function load(call, concurrency, n) {
  const lat = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        await call();
        lat.push(performance.now() - t);
      }
    }),
  );
  const wall = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { rps: (n / wall) * 1000, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
}

const raw = () => fetch(`${mock.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEYS[0]}`, "content-type": "application/json" }, body: JSON.stringify(BODY) }).then((r) => r.json());
const ours = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: KEYS, strategy: "quota_failover" });
const pool = () => ours.post("/v1/chat/completions", { json: BODY });
// Its built-in limiter (50 requests/s by default) is lifted, so the client itself is measured.
const original = new Original.PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: KEYS, strategy: "quota_failover", rateLimitPerSecond: 1e9 });
const orig = () => original.post("/v1/chat/completions", { json: BODY });

const report = [];
const only = process.env.BENCH_ONLY?.split(",");
const want = (n) => !only || only.includes(String(n));
const section = (title, lines) => {
  console.log(`\n## ${title}\n\n${lines.join("\n")}`);
  report.push(`## ${title}`, "", ...lines, "");
};

// 1. Overhead against raw fetch ------------------------------------------------------------
if (want(1)) {
const SIZES = { 1: 400, 32: 4000, 256: 6000 };
const overhead = [];
for (const [c, n] of Object.entries(SIZES).map(([c, n]) => [Number(c), n])) {
  await load(raw, c, 300);
  await load(pool, c, 300); // warm-up: connections, JIT
  const r = { raw: [], pool: [] };
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    const pair = i % 2 ? [["pool", pool], ["raw", raw]] : [["raw", raw], ["pool", pool]];
    for (const [name, f] of pair) r[name].push(await load(f, c, n));
  }
  const ratios = r.pool.map((p, i) => p.rps / r.raw[i].rps);
  overhead.push(
    `| ${c} | ${median(r.raw.map((x) => x.rps)).toFixed(0)} (${spread(r.raw.map((x) => x.rps))}) | ${median(r.pool.map((x) => x.rps)).toFixed(0)} (${spread(r.pool.map((x) => x.rps))}) | **${median(ratios).toFixed(2)}×** (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${median(r.raw.map((x) => x.p50)).toFixed(2)} / ${median(r.raw.map((x) => x.p99)).toFixed(2)} | ${median(r.pool.map((x) => x.p50)).toFixed(2)} / ${median(r.pool.map((x) => x.p99)).toFixed(2)} |`,
  );
}
section(`1. Overhead: client.post vs raw fetch to the same mock (3 keys, quota_failover; median of ${ROUNDS} rounds, range in brackets)`, [
  "| concurrency | raw fetch req/s | poolswitch-wasm req/s | throughput ratio | raw p50 / p99 ms | pool p50 / p99 ms |",
  "| ---: | ---: | ---: | ---: | ---: | ---: |",
  ...overhead,
  "",
  "Target: ≥ 0.95× raw fetch throughput at concurrency 32.",
]);
// The pool's own cost, without network noise: an in-process fetch, in a fresh process.
const w = JSON.parse(execFileSync(process.execPath, [join(ROOT, "bench/wrapper-cost.mjs")], { encoding: "utf8" }));
section("1b. The pool's own cost per request: an in-process fetch answering on the next macrotask, concurrency 32 (node bench/wrapper-cost.mjs)", [
  "| call | CPU µs per request (median of 5) | bytes allocated per request |",
  "| --- | ---: | ---: |",
  `| in-process fetch + json() (baseline) | ${w.cpuUs.bare.toFixed(1)} | ${w.bytes.bare.toFixed(0)} |`,
  `| client.post through the pool | ${w.cpuUs.pool.toFixed(1)} | ${w.bytes.pool.toFixed(0)} |`,
  "",
  `The pool adds ${(w.cpuUs.pool - w.cpuUs.bare).toFixed(1)} µs of CPU (GC threads included) and ${((w.bytes.pool - w.bytes.bare) / 1024).toFixed(1)} KiB of garbage per request.`,
]);
}

// 2. Against the original clients ------------------------------------------------------------
if (want(2)) {
  const c = 32;
  const n = 4000;
  await load(orig, c, 300);
  const r = { raw: [], pool: [], orig: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, f] of [["raw", raw], ["pool", pool], ["orig", orig]]) r[name].push(await load(f, c, n));
  }
  const py = JSON.parse(execFileSync(python, [join(ROOT, "bench/python_client.py"), "throughput", mock.url, JSON.stringify(KEYS), String(c), String(n), String(ROUNDS)], { encoding: "utf8" }));
  const m = (xs) => median(xs.map((x) => x.rps));
  const rawRps = m(r.raw);
  const row = (name, xs) => `| ${name} | ${m(xs).toFixed(0)} (${spread(xs.map((x) => x.rps))}) | ${(m(xs) / rawRps).toFixed(2)}× | ${median(xs.map((x) => x.p50)).toFixed(2)} / ${median(xs.map((x) => x.p99)).toFixed(2)} |`;
  section(`2. Against the original clients (POST, concurrency ${c}, ${n} requests a round, median of ${ROUNDS} rounds)`, [
    "| client | req/s | vs raw fetch | p50 / p99 ms |",
    "| --- | ---: | ---: | ---: |",
    row("raw fetch (baseline)", r.raw),
    row("poolswitch-wasm", r.pool),
    row("poolswitch-node@0.1.0 (npm)", r.orig),
    row("Python poolswitch 0.1.3 AsyncPoolSwitchClient (own process, httpx)", py),
    "",
    `poolswitch-wasm vs poolswitch-node: **${(m(r.pool) / m(r.orig)).toFixed(2)}×**; vs Python: **${(m(r.pool) / m(py)).toFixed(2)}×**. The Python client's own limiter (50 req/s by default) was lifted for this.`,
  ]);
}

// 3. Failover efficiency ------------------------------------------------------------------------
if (want(3)) {
  const QUOTA = 20;
  const N = 90;
  let run = 0;
  async function scenario(drive) {
    const prefix = `fo${run++}-`;
    const keys = [0, 1, 2].map((i) => `sk-${prefix}${i}`);
    await control.setKeys(Object.fromEntries(keys.map((k, i) => [k, { id: `${prefix}${i}`, quota: QUOTA }])));
    const result = await drive(keys);
    const calls = (await control.calls()).filter((x) => x.keyId?.startsWith(prefix));
    return { ...result, calls: calls.length, wasted: calls.filter((x) => x.outcome === "quota").length };
  }
  const sequential = (post) => async () => {
    let ok = 0;
    let errors = 0;
    for (let i = 0; i < N; i++) {
      try {
        await post();
        ok++;
      } catch {
        errors++;
      }
    }
    return { ok, errors };
  };
  const rows = [
    ["poolswitch-wasm", await scenario((keys) => { const c = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys }); return sequential(() => c.post("/v1/chat/completions", { json: BODY }))(); })],
    ["poolswitch-node@0.1.0", await scenario((keys) => { const c = new Original.PoolSwitchClient({ upstreamBaseUrl: mock.url, keys, rateLimitPerSecond: 1e9 }); return sequential(() => c.post("/v1/chat/completions", { json: BODY }))(); })],
    ["Python poolswitch 0.1.3", await scenario(async (keys) => JSON.parse(execFileSync(python, [join(ROOT, "bench/python_client.py"), "failover", mock.url, JSON.stringify(keys), String(N)], { encoding: "utf8" })))],
  ];
  section(`3. Failover efficiency: 3 keys × ${QUOTA} requests of quota (advertised in x-ratelimit-remaining-requests), ${N} sequential requests`, [
    "| client | served | user-visible errors | upstream calls | wasted calls (on a key already known empty) |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows.map(([name, r]) => `| ${name} | ${r.ok} | ${r.errors} | ${r.calls} | ${r.wasted} |`),
    "",
    `Capacity is ${3 * QUOTA}: every request up to it should be served, and no call should go to a key whose last answer said it had none left.`,
  ]);
}

// 5. Size and start -----------------------------------------------------------------------------
if (want(5)) {
  const size = (f) => readFileSync(join(ROOT, "pkg", f));
  const wasm = size("wasm/poolswitch_bg.wasm");
  const glue = Buffer.concat(["wasm/poolswitch.js", "esm/client.js", "esm/node.js"].map(size));
  const cold = { pool: [], raw: [] };
  for (let i = 0; i < 9; i++) {
    for (const mode of i % 2 ? ["pool", "raw"] : ["raw", "pool"]) {
      cold[mode].push(JSON.parse(execFileSync(process.execPath, [join(ROOT, "bench/cold-start.mjs"), mode, mock.url, KEYS[0]], { encoding: "utf8" })));
    }
  }
  const med = (mode, f) => median(cold[mode].map((x) => x[f]));
  // Imported here: Miniflare installs its own undici dispatcher, which the other sections must not run on.
  const { startWorker } = await import("../tests/workerd/bundle.js");
  const workerd = { pool: [], raw: [] };
  for (let i = 0; i < 3; i++) {
    for (const mode of ["raw", "pool"]) {
      const t = performance.now();
      const { mf } = await startWorker(ROOT, [join(ROOT, `bench/worker-${mode}.js`)], { MOCK_URL: mock.url, KEY: KEYS[0] });
      const r = await mf.dispatchFetch("http://worker/");
      await r.json();
      workerd[mode].push(performance.now() - t);
      await mf.dispose();
    }
  }
  section("5. Size and cold start", [
    "| what | measured | target |",
    "| --- | ---: | ---: |",
    `| .wasm raw | ${(wasm.length / 1024).toFixed(1)} KiB | |`,
    `| .wasm gzip -9 | ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(1)} KiB | ≤ 100 KB |`,
    `| JS glue + wrapper (raw / gzip) | ${(glue.length / 1024).toFixed(1)} / ${(gzipSync(glue, { level: 9 }).length / 1024).toFixed(1)} KiB | |`,
    `| Node: import (wasm compiled + instantiated) | ${med("pool", "importMs").toFixed(1)} ms | |`,
    `| Node: construct | ${med("pool", "constructMs").toFixed(2)} ms | |`,
    `| Node: first request, pool vs raw fetch in a fresh process | ${med("pool", "firstRequestMs").toFixed(1)} ms vs ${med("raw", "firstRequestMs").toFixed(1)} ms | |`,
    `| Node: import + construct (cold start before the first request) | ${(med("pool", "importMs") + med("pool", "constructMs")).toFixed(1)} ms | ≤ 10 ms |`,
    `| workerd: bundle + start + first request, pool vs raw fetch (median of 3) | ${median(workerd.pool).toFixed(0)} ms vs ${median(workerd.raw).toFixed(0)} ms (${(median(workerd.pool) / median(workerd.raw)).toFixed(2)}×) | |`,
  ]);
}

// 6. Proxy mode: the gateway against hitting the mock directly ------------------------------------
if (want(6)) {
  // A free port, then poll /poolswitch/health until the gateway answers (at log level warn it prints nothing).
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const gw = spawn(process.execPath, [join(ROOT, "pkg/cli.js"), "serve", "--port", String(port), "--log-level", "warn"], {
    env: { ...process.env, POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.join(",") },
    stdio: "ignore",
  });
  const gwUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${gwUrl}/poolswitch/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const viaGateway = () => fetch(`${gwUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(BODY) }).then((r) => r.json());
  await load(viaGateway, 32, 300);
  const r = { raw: [], gw: [] };
  for (let i = 0; i < ROUNDS; i++) {
    r.raw.push(await load(raw, 32, 3000));
    r.gw.push(await load(viaGateway, 32, 3000));
  }
  gw.kill("SIGTERM");
  const m = (xs) => median(xs.map((x) => x.rps));
  section(`6. Proxy mode: through \`poolswitch-wasm serve\` vs straight to the mock (POST, concurrency 32, median of ${ROUNDS} rounds)`, [
    "| path | req/s | p50 / p99 ms |",
    "| --- | ---: | ---: |",
    `| straight to the mock (baseline) | ${m(r.raw).toFixed(0)} (${spread(r.raw.map((x) => x.rps))}) | ${median(r.raw.map((x) => x.p50)).toFixed(2)} / ${median(r.raw.map((x) => x.p99)).toFixed(2)} |`,
    `| through the gateway | ${m(r.gw).toFixed(0)} (${spread(r.gw.map((x) => x.rps))}) | ${median(r.gw.map((x) => x.p50)).toFixed(2)} / ${median(r.gw.map((x) => x.p99)).toFixed(2)} |`,
    "",
    `Ratio: **${(m(r.gw) / m(r.raw)).toFixed(2)}×**. The load generator, the gateway and the mock share this machine's 2 cores.`,
  ]);
}

// 4. Core cost and scale, native and in wasm under Node ----------------------------------------
if (want(4)) {
  const rows = (text) => text.trim().split("\n").filter((l) => l.startsWith("|"));
  const native = rows(execFileSync("cargo", ["bench", "--quiet", "--locked", "--bench", "core_scale"], { cwd: ROOT, encoding: "utf8" }));
  section("4. Core cost and scale: choose a key + book start + book answer, native (cargo bench --bench core_scale)", [...native, "", "Target: 10,000 keys within 2× of 3 keys."]);
  // The same bench program as a wasm32-wasip2 command, turned into an ES module by jco and run
  // by Node's V8 (wasi:clocks through @bytecodealliance/preview2-shim).
  const build = execFileSync("cargo", ["bench", "--locked", "--no-run", "--bench", "core_scale", "--target", "wasm32-wasip2", "--no-default-features", "--message-format=json"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const wasm = build.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.reason === "compiler-artifact" && m.target?.name === "core_scale")?.executable;
  const dir = join(OUT, "core-wasm");
  execFileSync(process.execPath, [join(ROOT, "node_modules/@bytecodealliance/jco/dist/jco.js"), "transpile", wasm, "-o", dir, "--name", "core_scale", "--quiet"], { stdio: "inherit" });
  writeFileSync(join(dir, "package.json"), '{"type":"module"}');
  const inNode = rows(execFileSync(process.execPath, ["--input-type=module", "-e", `const m = await import(${JSON.stringify(join(dir, "core_scale.js"))}); m.run.run();`], { encoding: "utf8" }));
  section("4b. The same core bench compiled to wasm (wasm32-wasip2) and run in Node (jco transpile)", [...inNode, "", "Target: 10,000 keys within 2× of 3 keys."]);
}

await mock.stop();
const machine = `${cpus().length} × ${cpus()[0].model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ${execFileSync("rustc", ["--version"], { encoding: "utf8" }).trim()}`;
const header = ["# Benchmark results", "", `Command: \`./scripts/bench.sh\` (BENCH_ROUNDS=${ROUNDS}). Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}.`, "", "The mock provider (js/mock-provider.js) runs in its own Node process on 127.0.0.1 with keep-alive; every ratio is against a baseline measured in the same run.", ""];
const notes = existsSync(join(ROOT, "bench/NOTES.md")) ? ["", readFileSync(join(ROOT, "bench/NOTES.md"), "utf8")] : [];
if (!only) {
  writeFileSync(join(ROOT, "bench/RESULTS.md"), [...header, ...report, ...notes].join("\n"));
  console.log("\nwritten to bench/RESULTS.md");
}
