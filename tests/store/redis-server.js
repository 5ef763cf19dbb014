// A real redis-server for the store tests: its files in a temp dir, no config file. Killed with
// SIGKILL to play an outage and started again; its append-only file (fsynced on every write)
// keeps the data across that, as a production Redis with persistence does.
//
// Redis listens only on a Unix socket in its temp dir, and the clients reach it through a TCP
// relay on a port the OS gave this process: the relay holds that port for the whole run, so no
// other process can take it while Redis is down (a restart on a freed port could find it taken).
// While Redis is down the relay closes every connection at once, so clients meet the outage as they
// would a crashed server (plain destroy: Node 20's resetAndDestroy here left the process spinning).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
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

function ping(path) {
  return new Promise((resolve) => {
    const s = connect(path);
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

/** Forwards each TCP connection to `target()` (a Unix socket path, or null to close it at once). */
async function startRelay(target) {
  const pairs = new Set();
  const relay = createServer((client) => {
    const path = target();
    if (!path) return client.destroy();
    const upstream = connect(path);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      if (!client.destroyed) client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  relay.listen(0, "127.0.0.1");
  await once(relay, "listening");
  return {
    port: relay.address().port,
    /** Closes every relayed connection. */
    closeAll() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    close: () => new Promise((r) => relay.close(r)),
  };
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
  const socket = join(dir, "redis.sock");
  let child = null;
  const relay = await startRelay(() => (child ? socket : null));
  const server = {
    url: `redis://127.0.0.1:${relay.port}`,
    port: relay.port,
    async start() {
      const args = ["--port", "0", "--unixsocket", socket, "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "yes"];
      const started = spawn("redis-server", args, { stdio: "ignore" });
      await until(() => ping(socket), `redis-server on ${socket}`);
      child = started;
    },
    /** SIGKILL: no shutdown, every connection dropped, as a crash. */
    async kill() {
      if (!child) return;
      const killed = child;
      child = null; // new connections are closed from here on
      const exited = once(killed, "exit");
      killed.kill("SIGKILL");
      await exited;
      relay.closeAll();
    },
    async stop() {
      await server.kill();
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
