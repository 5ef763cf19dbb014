// deploy/Dockerfile, as far as it runs without a Docker daemon: its ENTRYPOINT, ENV and
// HEALTHCHECK command run against the installed tarball, configured by environment only. (The
// image build itself needs Docker and a base-image pull, neither of which the test host has.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { installedProject, mockProvider, ROOT } from "./project.js";

let project;
let mock;
let docker;
before(async () => {
  [project, mock] = await Promise.all([installedProject("deploy"), mockProvider()]);
  docker = parseDockerfile(await readFile(join(ROOT, "deploy", "Dockerfile"), "utf8"));
});
after(() => mock.stop());

function parseDockerfile(text) {
  const lines = text.replace(/\\\n\s*/g, " ").split("\n").filter((l) => !l.startsWith("#"));
  const exec = (instruction) => JSON.parse(lines.find((l) => l.startsWith(`${instruction} `)).replace(/^.*?(\[.*\])\s*$/, "$1"));
  const env = {};
  for (const m of lines.find((l) => l.startsWith("ENV ")).slice(4).matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
  return { env, entrypoint: exec("ENTRYPOINT"), healthcheck: exec("HEALTHCHECK"), user: lines.find((l) => l.startsWith("USER ")) };
}

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  return port;
}

test("the image runs as a non-root user", () => assert.equal(docker.user, "USER node"));

test("the entrypoint serves with env-only config and the health check tracks it", { timeout: 60_000 }, async () => {
  const keys = await mock.keysFor("deploy");
  const env = { ...process.env, ...docker.env, POOLSWITCH_HOST: "127.0.0.1", POOLSWITCH_PORT: String(await freePort()), POOLSWITCH_UPSTREAM_BASE_URL: mock.url, POOLSWITCH_KEYS: keys.join(","), POOLSWITCH_GATEWAY_TOKEN: "a-long-random-token" };
  const [node, cli, ...args] = docker.entrypoint;
  assert.equal(node, "node");
  const proxy = spawn(process.execPath, [cli.replace("/app/node_modules", join(project.dir, "node_modules")), ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proxy.stderr.setEncoding("utf8").on("data", (d) => (log += d));
  try {
    while (!log.includes('"event":"listening"')) await once(proxy.stderr, "data");
    const health = () => spawnSync(process.execPath, docker.healthcheck.slice(1), { env, encoding: "utf8" }).status;
    assert.equal(docker.healthcheck[0], "node");
    assert.equal(health(), 0, "healthy while serving");
    const out = await fetch(`http://127.0.0.1:${env.POOLSWITCH_PORT}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer a-long-random-token", "content-type": "application/json" }, body: "{}" });
    assert.equal((await out.json()).choices[0].message.content, "served by deploy-b");
    proxy.kill("SIGTERM");
    await once(proxy, "close");
    assert.equal(proxy.exitCode, 0, "SIGTERM drains and exits 0");
    assert.equal(health(), 1, "unhealthy once stopped");
  } finally {
    if (proxy.exitCode === null) proxy.kill("SIGTERM");
  }
});
