// A real redis-server for the store tests: a free loopback port, its files in a temp dir,
// no config file. Killed with SIGKILL to play an outage and started again on the same port;
// its append-only file (fsynced on every write) keeps the data across that, as a production
// Redis with persistence does.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const INSTALL = "apt-get install -y redis-server";

/** Why the tests cannot run (redis-server missing), or null. */
export function redisMissing() {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return r.error ? `redis-server is not installed (${INSTALL}, or ./scripts/setup.sh)` : null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let got = "";
    s.once("error", () => resolve(false));
    s.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) {
        s.destroy();
        resolve(got.startsWith("+PONG"));
      }
    });
    s.once("connect", () => s.write("PING\r\n"));
  });
}

/** Waits (bounded) until `check()` is truthy; returns its value. */
export async function until(check, what, limitMs = 20_000) {
  const deadline = Date.now() + limitMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`gave up waiting (${limitMs} ms) for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "poolswitch-redis-"));
  const port = await freePort();
  let child = null;
  const server = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "yes"];
      child = spawn("redis-server", args, { stdio: "ignore" });
      await until(() => ping(port), `redis-server on port ${port}`);
    },
    /** SIGKILL: no shutdown, connections reset, as a crash. */
    async kill() {
      if (!child) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
      child = null;
    },
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
