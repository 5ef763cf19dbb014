// The CLI as installed from the tarball and run with npx: help and version on stdout with status
// 0, SIGTERM to npx stops the proxy too (npm runs the bin through `sh -c`, which did not pass the
// signal on: the proxy kept running orphaned), and SIGHUP reloads the key list without a restart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { installedProject, mockProvider } from "./project.js";

let project;
let mock;
const running = new Set(); // npx processes this file started, stopped in any case at the end
before(async () => {
  [project, mock] = await Promise.all([installedProject("cli"), mockProvider()]);
});
after(async () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  await mock.stop();
});

const npx = (args) => execFileSync("npx", ["--no-install", "poolswitch-wasm", ...args], { cwd: project.dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

test("--help, -h and serve --help print the usage on stdout and exit 0", () => {
  for (const args of [["--help"], ["-h"], ["serve", "--help"]]) {
    const out = npx(args);
    assert.match(out, /^usage: poolswitch-wasm serve/, `${args.join(" ")}`);
    assert.match(out, /SIGHUP reloads the key list/);
  }
});

test("--version prints the package version on stdout and exits 0", async () => {
  const { version } = JSON.parse(await readFile(join(project.dir, "node_modules", "poolswitch-wasm", "package.json"), "utf8"));
  assert.equal(npx(["--version"]).trim(), version);
});

test("an unknown command still fails with status 2 and the usage on stderr", () => {
  assert.throws(() => npx(["frobnicate"]), (e) => e.status === 2 && /unknown command: frobnicate/.test(e.stderr) && e.stdout === "");
});

/** Starts `npx poolswitch-wasm serve …`; resolves when it logs that it listens. */
async function serve(args, env) {
  const child = spawn("npx", ["--no-install", "poolswitch-wasm", "serve", "--port", "0", ...args], {
    cwd: project.dir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  running.add(child);
  let log = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (log += d));
  const lines = { get text() { return log; } };
  const url = await waitFor(child, lines, /"event":"listening","url":"([^"]+)"/);
  return { child, lines, url: url[1] };
}

// Resolves to the first match of `pattern` in the log (bounded by the test's timeout).
async function waitFor(child, lines, pattern) {
  for (;;) {
    const m = lines.text.match(pattern);
    if (m) return m;
    await once(child.stderr, "data");
  }
}

test("SIGTERM to npx stops the proxy it started", { timeout: 60_000 }, async () => {
  const keys = await mock.keysFor("npx");
  const { child, lines, url } = await serve([], { POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: keys.join(",") });
  assert.equal((await fetch(`${url}/poolswitch/health`)).status, 200);
  child.kill("SIGTERM");
  // The stderr pipe is shared by npx, the shell and the proxy: it closes only once all have exited.
  await once(child, "close");
  assert.match(lines.text, /"event":"shutting_down"/);
  await assert.rejects(fetch(`${url}/poolswitch/health`), "nothing listens any more");
});

test("SIGHUP reloads the key list from the config file and keeps serving", { timeout: 60_000 }, async () => {
  const keys = await mock.keysFor("hup");
  const file = join(project.dir, "poolswitch.json");
  const config = (list) => JSON.stringify({ upstream_base_url: mock.url, keys: list });
  await writeFile(file, config([{ id: "first", value: keys[0] }]));
  const { child, lines, url } = await serve(["--config", file], {});
  await writeFile(file, config([{ id: "second", value: keys[1] }]));
  // SIGHUP goes to the proxy itself, as a supervisor sends it: the node process under npx.
  process.kill(proxyPid(child.pid), "SIGHUP");
  const reloaded = await waitFor(child, lines, /"event":"reloaded".*/);
  assert.match(reloaded[0], /"added":\["second"\],"removed":\["first"\]/);
  const status = await (await fetch(`${url}/poolswitch/status`)).json();
  assert.deepEqual(status.keys.map((k) => k.id), ["second"]);
  const out = await (await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json();
  assert.equal(out.choices[0].message.content, "served by hup-b");
  child.kill("SIGTERM");
  await once(child, "close");
});

// The node process under npx (npx → sh → node): the descendant whose command runs the bin.
function proxyPid(npxPid) {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter(Boolean)
    .map(([, pid, ppid, args]) => ({ pid: Number(pid), ppid: Number(ppid), args }));
  const descendants = new Set([npxPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (descendants.has(r.ppid) && !descendants.has(r.pid)) descendants.add(r.pid), (grew = true);
  }
  const proxy = rows.find((r) => descendants.has(r.pid) && r.pid !== npxPid && /node .*bin\/poolswitch-wasm serve/.test(r.args));
  assert.ok(proxy, "the proxy process under npx");
  return proxy.pid;
}
