// Benchmarks of poolswitch-wasm, every figure against a baseline measured in the same run.
// Run with ./scripts/bench.sh (it builds pkg/ and installs the original clients first).
// Prints tables and writes bench/RESULTS.md. The mock provider runs in its own process.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import net from "node:net";
import { join, resolve as resolvePath } from "node:path";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import { request as undiciRequest } from "undici";
import { httpPoster } from "./http-load.mjs";
import { PoolSwitchClient } from "../pkg/esm/node.js";
import { startMock, ROOT } from "../tests/js/mock.js";
import { mockControl } from "../tests/scenarios/scenarios.js";

const OUT = join(ROOT, "bench", "out");
// The machine is shared: its load goes next to the figures.
const startLoad = loadavg().map((x) => x.toFixed(1)).join(" ");
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
// undici.request with no fetch layer: what the pool's Node transport is built on.
const rawUndici = () => undiciRequest(`${mock.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEYS[0]}`, "content-type": "application/json" }, body: JSON.stringify(BODY) }).then((r) => r.body.json());
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

// 1. Overhead against raw fetch and raw undici ----------------------------------------------
if (want(1)) {
const SIZES = { 1: 400, 32: 4000, 256: 6000 };
const overhead = [];
const calls = { raw, undici: rawUndici, pool };
for (const [c, n] of Object.entries(SIZES).map(([c, n]) => [Number(c), n])) {
  for (const f of Object.values(calls)) await load(f, c, 300); // warm-up: connections, JIT
  const r = { raw: [], undici: [], pool: [] };
  for (let i = 0; i < ROUNDS; i++) {
    // Rotate the order so no side always runs on a warmer machine.
    const names = Object.keys(calls);
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length];
      r[name].push(await load(calls[name], c, n));
    }
  }
  const rps = (name) => median(r[name].map((x) => x.rps));
  const cell = (name) => `${rps(name).toFixed(0)} (${spread(r[name].map((x) => x.rps))})`;
  const lat = (name) => `${median(r[name].map((x) => x.p50)).toFixed(2)} / ${median(r[name].map((x) => x.p99)).toFixed(2)}`;
  const ratio = (base) => {
    const xs = r.pool.map((p, i) => p.rps / r[base][i].rps);
    return `**${median(xs).toFixed(2)}×** (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  };
  const p99 = median(r.pool.map((x) => x.p99)) / median(r.undici.map((x) => x.p99));
  overhead.push(`| ${c} | ${cell("raw")} | ${cell("undici")} | ${cell("pool")} | ${ratio("raw")} | ${ratio("undici")} | ${lat("raw")} | ${lat("undici")} | ${lat("pool")} (${p99.toFixed(2)}× undici's p99) |`);
}
section(`1. Overhead: client.post (Node default transport: undici's dispatcher) vs raw fetch and raw undici.request to the same mock (3 keys, quota_failover; median of ${ROUNDS} rounds, range in brackets)`, [
  "| concurrency | raw fetch req/s | raw undici.request req/s | poolswitch-wasm req/s | pool vs fetch | pool vs undici | fetch p50 / p99 ms | undici p50 / p99 ms | pool p50 / p99 ms |",
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...overhead,
  "",
  "Targets at concurrency 32: ≥ 3× raw fetch, ≥ 0.8× raw undici.request, p99 ≤ 1.2× raw undici's.",
]);
// The pool's own cost, without network noise: an in-process fetch, in a fresh process.
const w = JSON.parse(execFileSync(process.execPath, [join(ROOT, "bench/wrapper-cost.mjs")], { encoding: "utf8" }));
const added = (d) => `${d.median.toFixed(1)} (${d.min.toFixed(1)}–${d.max.toFixed(1)})`;
section("1b. The pool's own cost per request, without a network: an in-process fetch, and an in-process undici dispatcher (Node's default transport), each answering on the next macrotask; concurrency 32 (node bench/wrapper-cost.mjs)", [
  `| call | CPU µs per request (median of ${w.rounds} rounds) | bytes allocated per request |`,
  "| --- | ---: | ---: |",
  `| in-process dispatcher.request + body.json() (baseline) | ${w.cpuUs.bareUndici.toFixed(1)} | ${w.bytes.bareUndici.toFixed(0)} |`,
  `| client.post through the pool, Node default (undici dispatcher) | ${w.cpuUs.poolUndici.toFixed(1)} | ${w.bytes.poolUndici.toFixed(0)} |`,
  `| in-process fetch + json() (baseline) | ${w.cpuUs.bare.toFixed(1)} | ${w.bytes.bare.toFixed(0)} |`,
  `| client.post through the pool, injected fetch | ${w.cpuUs.pool.toFixed(1)} | ${w.bytes.pool.toFixed(0)} |`,
  "",
  `On Node's default transport the pool adds ${added(w.addedUs.undici)} µs of CPU (GC threads included; median of the per-round differences, their range in brackets) and ${((w.bytes.poolUndici - w.bytes.bareUndici) / 1024).toFixed(2)} KiB of garbage per request; with an injected fetch ${added(w.addedUs.fetch)} µs and ${((w.bytes.pool - w.bytes.bare) / 1024).toFixed(2)} KiB. Targets: ≤ 10 µs and ≤ 2 KiB.`,
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

// Packages measured side by side in sections 5 and 5b: BENCH_PACKAGES="label=dir,label=dir"
// (dirs relative to the repository; default: this build's pkg/), e.g. a pkg/ built from main.
const packages = (process.env.BENCH_PACKAGES ?? "this build=pkg").split(",").map((p) => {
  const i = p.indexOf("=");
  return { label: p.slice(0, i), dir: resolvePath(ROOT, p.slice(i + 1)) };
});

// 5. Size and start -----------------------------------------------------------------------------
if (want(5)) {
  // Imported here: Miniflare installs its own undici dispatcher, which the other sections must not run on.
  const { startWorker } = await import("../tests/support/worker.js");
  const cols = [];
  for (const p of packages) {
    const size = (f) => readFileSync(join(p.dir, f));
    const wasm = size("wasm/poolswitch_bg.wasm");
    const glue = Buffer.concat(["wasm/poolswitch.js", "esm/client.js", "esm/node.js"].map(size));
    const cold = { pool: [], raw: [] };
    for (let i = 0; i < 15; i++) {
      for (const mode of i % 2 ? ["pool", "raw"] : ["raw", "pool"]) {
        cold[mode].push(JSON.parse(execFileSync(process.execPath, [join(ROOT, "bench/cold-start.mjs"), mode, mock.url, KEYS[0], p.dir], { encoding: "utf8" })));
      }
    }
    const med = (mode, f) => median(cold[mode].map((x) => x[f]));
    const workerd = { pool: [], raw: [] };
    for (let i = 0; i < 3; i++) {
      for (const mode of ["raw", "pool"]) {
        const t = performance.now();
        const worker = await startWorker([join(ROOT, `bench/worker-${mode}.js`)], { MOCK_URL: mock.url, KEY: KEYS[0] }, { pkg: p.dir });
        const r = await worker.mf.dispatchFetch("http://worker/");
        await r.json();
        workerd[mode].push(performance.now() - t);
        await worker.dispose();
      }
    }
    cols.push([
      `${(wasm.length / 1024).toFixed(1)} KiB (${wasm.length} bytes)`,
      `${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(1)} KiB`,
      `${(glue.length / 1024).toFixed(1)} / ${(gzipSync(glue, { level: 9 }).length / 1024).toFixed(1)} KiB`,
      `${med("pool", "importMs").toFixed(1)} ms`,
      `${med("pool", "constructMs").toFixed(2)} ms`,
      `${med("pool", "firstRequestMs").toFixed(1)} ms vs ${med("raw", "firstRequestMs").toFixed(1)} ms`,
      `**${median(cold.pool.map((x) => x.importMs + x.constructMs)).toFixed(1)} ms**`,
      `${median(workerd.pool).toFixed(0)} ms vs ${median(workerd.raw).toFixed(0)} ms (${(median(workerd.pool) / median(workerd.raw)).toFixed(2)}×)`,
    ]);
  }
  const what = [
    [".wasm raw", ""],
    [".wasm gzip -9", "≤ 100 KB"],
    ["JS glue + wrapper (raw / gzip)", ""],
    ["Node: import (wasm compiled + instantiated), median of 15 fresh processes", ""],
    ["Node: construct", ""],
    ["Node: first request, pool vs raw fetch in a fresh process", ""],
    ["Node: import + construct (cold start before the first request)", "≤ 10 ms"],
    ["workerd: bundle + start + first request, pool vs raw fetch (median of 3)", ""],
  ];
  section("5. Size and cold start", [
    `| what | ${packages.map((p) => p.label).join(" | ")} | target |`,
    `| --- | ${packages.map(() => "---:").join(" | ")} | ---: |`,
    ...what.map(([label, target], i) => `| ${label} | ${cols.map((c) => c[i]).join(" | ")} | ${target} |`),
  ]);
}

// 5b. Throughput in headless Chromium and in workerd ----------------------------------------------
// Pool vs the host's own fetch, POST to the same mock at concurrency 32, in each host, for each
// package of BENCH_PACKAGES.
if (want("5b")) {
  const http = await import("node:http");
  const { readFile } = await import("node:fs/promises");
  const { extname, normalize } = await import("node:path");
  const { chromium } = await import("playwright-core");
  const { startWorker } = await import("../tests/support/worker.js");
  const C = 32;
  const N_BROWSER = 1500;
  const N_WORKERD = 4000;
  await control.setKeys(Object.fromEntries(KEYS.map((k, i) => [k, { id: `bench-${i}` }])));

  // Chromium: one page per package, served from 127.0.0.1 (/pkg/ is that package).
  const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm" };
  const sites = [];
  const serveDir = async (dir) => {
    const site = http.createServer(async (req, res) => {
      const path = new URL(req.url, "http://x").pathname;
      if (!path.startsWith("/pkg/")) return res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>bench</title>");
      const file = normalize(join(dir, path.slice(5)));
      if (!file.startsWith(dir)) return res.writeHead(403).end();
      try {
        res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(await readFile(file));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise((r) => site.listen(0, "127.0.0.1", r));
    sites.push(site);
    return `http://127.0.0.1:${site.address().port}/`;
  };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-background-timer-throttling", "--disable-renderer-backgrounding"],
  });
  const pages = [];
  for (const p of packages) {
    const page = await browser.newPage();
    await page.goto(await serveDir(p.dir));
    await page.evaluate(async ({ mockUrl, keys, body }) => {
      const { PoolSwitchClient } = await import("/pkg/esm/browser.js");
      // The bench's own test keys against the local mock: exposing them in the page is intended.
      const pool = new PoolSwitchClient({ upstreamBaseUrl: mockUrl, keys, strategy: "quota_failover", dangerouslyAllowBrowser: true });
      const init = { method: "POST", headers: { authorization: `Bearer ${keys[0]}`, "content-type": "application/json" }, body: JSON.stringify(body) };
      const calls = { pool: () => pool.post("/v1/chat/completions", { json: body }), raw: () => fetch(`${mockUrl}/v1/chat/completions`, init).then((r) => r.json()) };
      window.__load = async (mode, c, n) => {
        let next = 0;
        const start = performance.now();
        await Promise.all(Array.from({ length: c }, async () => { while (next < n) { next++; await calls[mode](); } }));
        return (n / (performance.now() - start)) * 1000;
      };
    }, { mockUrl: mock.url, keys: KEYS, body: BODY });
    pages.push(page);
  }
  // workerd (Miniflare): one Worker per package; each dispatch makes N_WORKERD POSTs inside it.
  const workers = [];
  for (const p of packages) {
    const { mf, dispose } = await startWorker([join(ROOT, "bench/worker-load.js")], { MOCK_URL: mock.url, KEYS: JSON.stringify(KEYS) }, { pkg: p.dir });
    workers.push(async (mode, c, n) => {
      const start = performance.now();
      const r = await mf.dispatchFetch(`http://worker/?mode=${mode}&c=${c}&n=${n}`);
      await r.json();
      return (n / (performance.now() - start)) * 1000;
    });
    workers.at(-1).dispose = dispose;
  }
  const hosts = {
    chromium: (i) => (mode, n) => pages[i].evaluate(({ mode, c, n }) => window.__load(mode, c, n), { mode, c: C, n }),
    workerd: (i) => (mode, n) => workers[i](mode, C, n),
  };
  const rows = [];
  for (const [host, run] of Object.entries(hosts)) {
    const n = host === "chromium" ? N_BROWSER : N_WORKERD;
    for (let i = 0; i < packages.length; i++) for (const mode of ["raw", "pool"]) await run(i)(mode, 200); // warm-up
    const r = packages.map(() => ({ raw: [], pool: [] }));
    for (let round = 0; round < ROUNDS; round++) {
      // Packages and modes interleaved, the order rotated, so no side always runs on a warmer machine.
      const order = packages.flatMap((_, i) => ["raw", "pool"].map((mode) => [i, mode]));
      for (let j = 0; j < order.length; j++) {
        const [i, mode] = order[(round + j) % order.length];
        r[i][mode].push(await run(i)(mode, n));
      }
    }
    const perRound = (xs) => `**${median(xs).toFixed(2)}×** (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    packages.forEach((p, i) => {
      const vsFetch = r[i].pool.map((x, k) => x / r[i].raw[k]);
      // The pool against the first package's pool in the same round: the comparison between builds.
      const vsFirst = i === 0 ? "1.00×" : perRound(r[i].pool.map((x, k) => x / r[0].pool[k]));
      rows.push(`| ${host} | ${p.label} | ${median(r[i].raw).toFixed(0)} (${spread(r[i].raw)}) | ${median(r[i].pool).toFixed(0)} (${spread(r[i].pool)}) | ${perRound(vsFetch)} | ${vsFirst} |`);
    });
  }
  await browser.close();
  for (const site of sites) site.close();
  for (const w of workers) await w.dispose();
  section(`5b. Throughput in headless Chromium and workerd: client.post vs the host's fetch, POST to the same mock, concurrency ${C} (${N_BROWSER} requests a round in Chromium, ${N_WORKERD} inside one Worker invocation in workerd; median of ${ROUNDS} rounds, range in brackets)`, [
    `| host | package | raw fetch req/s | poolswitch-wasm req/s | pool vs fetch (per round) | pool vs ${packages[0].label}'s pool (per round) |`,
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    "Chromium opens at most 6 HTTP/1.1 connections to one origin, so both sides there share those 6. In workerd the Worker's own clock stands still between I/O, so each round is timed from Node around `dispatchFetch`.",
  ]);
}

// 6. Proxy mode: the gateway against a bare node:http proxy and the Portkey gateway -------------
if (want(6)) {
  const freePort = () =>
    new Promise((resolve) => {
      const srv = net.createServer().listen(0, "127.0.0.1", () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
  const started = [];
  // Spawns a server and waits until `ready(url)` answers.
  async function serve(args, env, url, ready) {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: "ignore" });
    started.push(child);
    for (let i = 0; i < 200; i++) {
      if (await ready(url).then(() => true, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${args[0]} did not start`);
  }
  const json = { "content-type": "application/json" };
  const body = JSON.stringify(BODY);
  const post = (url, headers = json) => httpPoster(url, "/v1/chat/completions", headers, body);

  const gwUrl = `http://127.0.0.1:${await freePort()}`;
  await serve([join(ROOT, "pkg/cli.js"), "serve", "--port", gwUrl.split(":")[2], "--log-level", "warn"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.join(",") }, gwUrl, (u) => post(u)());
  // BENCH_GATEWAY_BEFORE=<an earlier build's pkg/cli.js>: that gateway too, for a before/after in one run.
  const before = process.env.BENCH_GATEWAY_BEFORE;
  const beforeUrl = before && `http://127.0.0.1:${await freePort()}`;
  if (before) await serve([before, "serve", "--port", beforeUrl.split(":")[2], "--log-level", "warn"], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: KEYS.join(",") }, beforeUrl, (u) => post(u)());
  const bareUrl = `http://127.0.0.1:${await freePort()}`;
  await serve([join(ROOT, "bench/bare-proxy.mjs"), bareUrl.split(":")[2], mock.url, KEYS.join(",")], {}, bareUrl, (u) => post(u)());
  // Portkey: its loadbalance strategy over the same keys, the mock as an OpenAI custom host.
  const portkeyUrl = `http://127.0.0.1:${await freePort()}`;
  const portkeyConfig = { strategy: { mode: "loadbalance" }, targets: KEYS.map((k) => ({ provider: "openai", api_key: k, custom_host: `${mock.url}/v1` })) };
  const portkeyHeaders = { ...json, "x-portkey-config": JSON.stringify(portkeyConfig) };
  await serve([join(ROOT, "node_modules/@portkey-ai/gateway/build/start-server.js"), `--port=${portkeyUrl.split(":")[2]}`, "--headless"], {}, portkeyUrl, (u) => post(u, portkeyHeaders)());

  const targets = {
    direct: post(mock.url, { ...json, authorization: `Bearer ${KEYS[0]}` }),
    bare: post(bareUrl),
    gateway: post(gwUrl),
    portkey: post(portkeyUrl, portkeyHeaders),
    ...(before ? { before: post(beforeUrl) } : {}),
  };
  for (const f of Object.values(targets)) await load(f, 32, 300);
  const r = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    const names = Object.keys(targets);
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length];
      r[name].push(await load(targets[name], 32, 3000));
    }
  }
  for (const child of started) child.kill("SIGTERM");
  const m = (xs) => median(xs.map((x) => x.rps));
  const ratio = (a, b) => {
    const xs = r[a].map((x, i) => x.rps / r[b][i].rps);
    return `**${median(xs).toFixed(2)}×** (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  };
  const row = (label, name) => `| ${label} | ${m(r[name]).toFixed(0)} (${spread(r[name].map((x) => x.rps))}) | ${(m(r[name]) / m(r.direct)).toFixed(2)}× | ${median(r[name].map((x) => x.p50)).toFixed(2)} / ${median(r[name].map((x) => x.p99)).toFixed(2)} |`;
  section(`6. Proxy mode: POST through each proxy to the same mock, node:http keep-alive load generator, concurrency 32 (median of ${ROUNDS} rounds)`, [
    "| path | req/s | vs direct | p50 / p99 ms |",
    "| --- | ---: | ---: | ---: |",
    row("straight to the mock (baseline)", "direct"),
    row("bare node:http reverse proxy (bench/bare-proxy.mjs)", "bare"),
    row("`poolswitch-wasm serve`", "gateway"),
    row("Portkey gateway 1.15.2 (loadbalance over the same keys)", "portkey"),
    ...(before ? [row(`\`poolswitch-wasm serve\`, before (${before})`, "before")] : []),
    "",
    `poolswitch-wasm serve vs the bare proxy: ${ratio("gateway", "bare")} (target ≥ 0.7×); vs Portkey: ${ratio("gateway", "portkey")} (target ≥ 5×).${before ? ` Before: ${ratio("before", "bare")} and ${ratio("before", "portkey")}.` : ""} Ratios per round, median (range). The load generator, the proxies and the mock share this machine's 2 cores.`,
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
const pkgs = process.env.BENCH_PACKAGES ? `BENCH_PACKAGES="${process.env.BENCH_PACKAGES}" ` : "";
const command = only ? `\`./scripts/build-pkg.sh && ${pkgs}BENCH_ONLY=${only.join(",")} BENCH_ROUNDS=${ROUNDS} node bench/run.mjs\` (sections ${only.join(", ")} only)` : `\`${pkgs}./scripts/bench.sh\` (BENCH_ROUNDS=${ROUNDS})`;
const header = ["# Benchmark results", "", `Command: ${command}. Machine: ${machine}; load average at the start ${startLoad}, at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")}. Date: ${new Date().toISOString().slice(0, 10)}.`, "", "The mock provider (js/mock-provider.js) runs in its own Node process on 127.0.0.1 with keep-alive; every ratio is against a baseline measured in the same run.", ""];
const notes = existsSync(join(ROOT, "bench/NOTES.md")) ? ["", readFileSync(join(ROOT, "bench/NOTES.md"), "utf8")] : [];
// A partial run (BENCH_ONLY) writes its sections to bench/out/RESULTS-partial.md, so a full
// run's file is never half replaced by accident.
const target = only ? join(OUT, "RESULTS-partial.md") : join(ROOT, "bench/RESULTS.md");
writeFileSync(target, [...header, ...report, ...(only ? [] : notes)].join("\n"));
console.log(`\nwritten to ${target}`);
