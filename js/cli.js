#!/usr/bin/env node
// poolswitch-wasm serve --config poolswitch.yaml [--host 127.0.0.1] [--port 8080] [--log-level info]
// Proxy mode: one gateway that many apps (any language) call instead of the provider.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig, ConfigError } from "./gateway/config.js";
import { reloader } from "./cli-reload.js";

const USAGE = `usage: poolswitch-wasm serve [--config FILE.yaml|.json] [--host H] [--port N] [--log-level error|warn|info|debug]
       poolswitch-wasm --help | --version

Runs the API-key pool as an HTTP proxy: apps call it instead of the provider, with the
gateway token, and it forwards each request with a healthy key.

serve options:
  --config FILE     YAML or JSON config (POOLSWITCH_* environment variables override it)
  --host H          address to listen on (default 127.0.0.1)
  --port N          port (default 8080; 0 picks a free one)
  --log-level L     error | warn | info | debug (default info)
  -h, --help        this text

Signals: SIGTERM/SIGINT drain in-flight requests and exit; SIGHUP reloads the key list.`;

const SERVE_OPTIONS = { config: { type: "string" }, host: { type: "string" }, port: { type: "string" }, "log-level": { type: "string" }, help: { type: "boolean", short: "h" } };

function version() {
  return JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")).version;
}

// Under `npx`, npm runs the bin through `sh -c`: a SIGTERM to npx reaches the shell, which dies
// without passing it on, and the proxy would keep running orphaned. So when started by npm exec,
// the proxy also stops (draining as for SIGTERM) once its parent process is gone.
function stopWhenOrphanedUnderNpx(stop) {
  if (process.env.npm_command !== "exec") return;
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && stop(), 250).unref();
}

// A port flag of digits is a number; anything else goes through as text and is refused by name.
const port = (v) => (v !== undefined && /^\d{1,6}$/.test(v) ? Number(v) : v);

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-v") {
    console.log(version());
    return 0;
  }
  if (command !== "serve") {
    console.error(`${command === undefined ? "missing command" : `unknown command: ${command}`}\n${USAGE}`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: SERVE_OPTIONS }));
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const flags = { host: values.host, port: port(values.port), log_level: values["log-level"] };
  let gateway;
  let config;
  try {
    config = loadConfig(values.config, process.env, flags);
    const { createGateway } = await import("./gateway/server.js");
    gateway = createGateway(config);
    await gateway.listen();
  } catch (e) {
    // ConfigError and the pool's PoolSwitchError both name the field; neither holds a key value.
    console.error(`poolswitch-wasm: ${e instanceof ConfigError || e.kind ? e.message : `cannot start: ${e.message}`}`);
    return 1;
  }
  const stop = async () => {
    await gateway.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  stopWhenOrphanedUnderNpx(stop);
  const log = (level, fields) => console.error(JSON.stringify({ level, time: new Date().toISOString(), ...fields }));
  process.on("SIGHUP", reloader({ gateway, file: values.config, env: process.env, flags, initial: config, log }));
  return undefined;
}

const code = await main();
if (code !== undefined) process.exit(code);
