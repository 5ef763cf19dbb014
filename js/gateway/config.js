// Gateway config: a YAML or JSON file with the reference client's field names, then
// POOLSWITCH_* environment variables over it. Pool fields are validated by the pool itself.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";

export class ConfigError extends Error {
  constructor(field, problem) {
    super(`invalid config: ${field} ${problem}`);
    this.field = field;
  }
}

// Fields that belong to the gateway, not the pool.
const GATEWAY_FIELDS = ["host", "port", "gateway_token", "log_level"];
const LEVELS = ["error", "warn", "info", "debug"];

const ENV = {
  POOLSWITCH_UPSTREAM_BASE_URL: ["upstream_base_url", String],
  POOLSWITCH_STRATEGY: ["strategy", String],
  POOLSWITCH_RETRY_ATTEMPTS: ["retry_attempts", Number],
  POOLSWITCH_COOLDOWN_SECONDS: ["cooldown_seconds", Number],
  POOLSWITCH_AUTH_HEADER_NAME: ["auth_header_name", String],
  POOLSWITCH_AUTH_SCHEME: ["auth_scheme", (v) => (v === "" ? null : v)],
  POOLSWITCH_QUERY_AUTH_PARAM: ["query_auth_param", String],
  POOLSWITCH_REQUEST_TIMEOUT_MS: ["request_timeout_ms", Number],
  POOLSWITCH_RATE_LIMIT_PER_SECOND: ["rate_limit_per_second", Number],
  POOLSWITCH_MAX_WAIT_MS: ["max_wait_ms", Number],
  POOLSWITCH_GATEWAY_TOKEN: ["gateway_token", String],
  POOLSWITCH_HOST: ["host", String],
  POOLSWITCH_PORT: ["port", Number],
  POOLSWITCH_LOG_LEVEL: ["log_level", String],
};

function readFile(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError("config", `file ${path} cannot be read (${e.code ?? e.message})`);
  }
  try {
    const value = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not a mapping");
    return value;
  } catch (e) {
    // The parser's message may quote a line of the file, which may hold a key: give the position only.
    const where = e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : "";
    throw new ConfigError("config", `file ${path} is not valid ${extname(path) === ".json" ? "JSON" : "YAML"}${where}`);
  }
}

function parseKeys(raw) {
  if (raw.trim().startsWith("[")) {
    try {
      return JSON.parse(raw);
    } catch {
      throw new ConfigError("keys", "POOLSWITCH_KEYS is not a valid JSON list");
    }
  }
  return raw.split(",").map((k) => k.trim()).filter(Boolean);
}

/** Resolves { pool, gateway } from an optional file and the environment (env wins). */
export function loadConfig(file, env = process.env, flags = {}) {
  const merged = file ? readFile(file) : {};
  for (const [name, [field, convert]] of Object.entries(ENV)) {
    if (env[name] !== undefined && env[name] !== "") {
      const value = convert(env[name]);
      if (typeof value === "number" && !Number.isFinite(value)) throw new ConfigError(field, `${name} is not a number`);
      merged[field] = value;
    }
  }
  if (env.POOLSWITCH_KEYS) merged.keys = parseKeys(env.POOLSWITCH_KEYS);
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;

  const gateway = { host: "127.0.0.1", port: 8080, gateway_token: undefined, log_level: "info" };
  const pool = {};
  for (const [k, v] of Object.entries(merged)) (GATEWAY_FIELDS.includes(k) ? gateway : pool)[k] = v;
  gateway.port = Number(gateway.port);
  if (!Number.isInteger(gateway.port) || gateway.port < 0 || gateway.port > 65535) throw new ConfigError("port", "must be a whole number from 0 to 65535");
  if (!LEVELS.includes(gateway.log_level)) throw new ConfigError("log_level", `must be one of ${LEVELS.join(", ")}`);
  if (gateway.gateway_token !== undefined && (typeof gateway.gateway_token !== "string" || gateway.gateway_token.length < 8)) {
    throw new ConfigError("gateway_token", "must be a string of at least 8 characters");
  }
  return { pool, gateway };
}
