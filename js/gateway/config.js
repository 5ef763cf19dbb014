// Gateway config: a YAML or JSON file, then POOLSWITCH_* environment variables over it, then
// command-line flags. The schema is the core's (the same one the WASI gateway reads from its
// environment): unknown fields are refused, naming the nearest known one.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { proxyConfig } from "./rules.js";

export class ConfigError extends Error {
  constructor(field, problem) {
    super(`invalid config: ${field} ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

function readFile(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError("config", `file ${path} cannot be read (${e.code ?? "unreadable"})`);
  }
  const json = extname(path) === ".json";
  let value;
  try {
    value = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    // The parser's message may quote a line of the file, which may hold a key: give the position only.
    const where = e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : "";
    throw new ConfigError("config", `file ${path} is not valid ${json ? "JSON" : "YAML"}${where}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new ConfigError("config", `file ${path} is not a mapping of fields`);
  return value;
}

/**
 * Resolves `{ pool, proxy }`: the pool's options for PoolSwitchClient, and the gateway's own
 * settings (host, port, gatewayToken, allowUnauthenticated, logLevel, bodyLimitBytes,
 * drainTimeoutMs). Throws ConfigError naming the field; no message shows a key value.
 */
export function loadConfig(file, env = process.env, flags = {}) {
  const object = file ? readFile(file) : null;
  const ours = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("POOLSWITCH_")));
  let text;
  try {
    text = JSON.stringify(object);
  } catch {
    throw new ConfigError("config", "holds values that are not plain data");
  }
  try {
    return proxyConfig(text, JSON.stringify(ours), JSON.stringify(flags));
  } catch (e) {
    if (e && e.kind === "invalid_config") throw new ConfigError(e.field, e.problem);
    throw e;
  }
}
