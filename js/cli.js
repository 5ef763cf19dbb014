#!/usr/bin/env node
// poolswitch-wasm serve --config poolswitch.yaml [--host 127.0.0.1] [--port 8080] [--log-level info]
// Proxy mode: one gateway that many apps (any language) call instead of the provider.
import { parseArgs } from "node:util";
import { loadConfig, ConfigError } from "./gateway/config.js";

const USAGE = "usage: poolswitch-wasm serve [--config FILE.yaml|.json] [--host H] [--port N] [--log-level error|warn|info|debug]";

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (command !== "serve") {
    console.error(USAGE);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: { config: { type: "string" }, host: { type: "string" }, port: { type: "string" }, "log-level": { type: "string" } } }));
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    return 2;
  }
  let gateway;
  try {
    const config = loadConfig(values.config, process.env, { host: values.host, port: values.port, log_level: values["log-level"] });
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
  return undefined;
}

const code = await main();
if (code !== undefined) process.exit(code);
