// What a TypeScript or lint-minded user sees: the tarball passes publint --strict and attw (Are
// The Types Wrong) in every resolution mode, and a strict project type-checks against it under
// nodenext ESM, nodenext CommonJS and bundler resolution, without the DOM lib or @types/node.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { installedProject, BIN, ROOT } from "./project.js";

let project;
before(async () => {
  project = await installedProject("types");
});

const tool = (name, args, cwd = project.dir) => {
  try {
    return execFileSync(join(BIN, name), args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    assert.fail(`${name} ${args.join(" ")} failed:\n${e.stdout}${e.stderr}`);
  }
};

test("publint --strict finds nothing in the tarball", () => {
  const out = tool("publint", ["--strict", project.tarball]);
  assert.doesNotMatch(out, /warning|error|suggestion/i, out);
});

test("attw finds no problem in any resolution mode, for every entry point", () => {
  // Only the .wasm and WIT exports are not modules; attw cannot type them.
  tool("attw", ["--pack", "--format", "table-flipped", "--exclude-entrypoints", "component", "component/gateway", "wasm", "wit/poolswitch.wit"], join(project.dir, "node_modules", "poolswitch-wasm"));
});

// One program, three module systems. `// @ts-expect-error` lines prove the types are not `any`.
const BODY = `
const client = new PoolSwitchClient({
  upstreamBaseUrl: "https://api.openai.com",
  keys: ["a", { id: "b", value: "v", monthlyQuota: 5 }],
  strategy: "weighted",
  deadlineMs: 30_000,
  onEvent: (e: PoolEvent) => { if (e.type === "failover") e.fromKeyId.toUpperCase(); },
});
const s: PoolStatus = client.status();
s.keys[0].cooldownUntil satisfies number | null;

async function main(): Promise<void> {
  const streamed: Response = await client.post("/v1/chat/completions", { json: {}, stream: true, deadlineMs: 5_000 });
  // @ts-expect-error stream: true resolves to a Response, not any
  const notAny: number = await client.post("/v1/chat/completions", { json: {}, stream: true });
  const parsed = await client.post<{ id: string }>("/v1/x", { json: {}, timeoutMs: 5, headers: [["x-a", "1"]], body: undefined });
  parsed.id.toUpperCase();
  void streamed; void notAny;
  try {
    await client.get("/v1/models", { query: { limit: 5 }, headers: { "x-b": "2" } });
  } catch (e) {
    if (e instanceof PoolSwitchError) {
      if (e.kind === "upstream") {
        const status: number = e.status;
        e.reason satisfies Outcome;
        void status;
      } else if (e.kind === "invalid_config") {
        e.field.toUpperCase();
      } else {
        // @ts-expect-error only upstream (and stream) errors carry a status
        const status: number = e.status;
        void status;
      }
    }
  }
}
void main;

const mock = createMockProvider({ keys: { "sk-a": { id: "a", script: ["quota", "rate_limit:10"] } } });
mock.listen(0).then((url: string) => url.toUpperCase());
// @ts-expect-error unknown strategies are rejected by the types
new PoolSwitchClient({ upstreamBaseUrl: "x", keys: [], strategy: "fastest" });
// @ts-expect-error keys are required
new PoolSwitchClient({ upstreamBaseUrl: "x" });
`;
const IMPORTS = `import { PoolSwitchClient, PoolSwitchError, type PoolStatus, type PoolEvent, type Outcome } from "poolswitch-wasm";
import { createMockProvider } from "poolswitch-wasm/mock-provider";
`;
// CommonJS source under nodenext: import = require() forms.
const REQUIRES = `import pool = require("poolswitch-wasm");
import mockProvider = require("poolswitch-wasm/mock-provider");
import PoolSwitchClient = pool.PoolSwitchClient;
import PoolSwitchError = pool.PoolSwitchError;
import createMockProvider = mockProvider.createMockProvider;
type PoolStatus = pool.PoolStatus;
type PoolEvent = pool.PoolEvent;
type Outcome = pool.Outcome;
`;

async function typecheck(name, file, source, compilerOptions) {
  const dir = join(project.dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, file), source);
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: "es2022", lib: ["es2022"], types: [], skipLibCheck: false, ...compilerOptions }, files: [file] }));
  execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", dir], { cwd: dir, encoding: "utf8" });
}

const check = (...args) =>
  typecheck(...args).catch((e) => assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`));

test("tsc strict, nodenext ESM, no DOM lib", () => check("nodenext-esm", "check.mts", IMPORTS + BODY, { module: "nodenext", moduleResolution: "nodenext" }));

test("tsc strict, nodenext CommonJS, no DOM lib", () => check("nodenext-cjs", "check.cts", REQUIRES + BODY, { module: "nodenext", moduleResolution: "nodenext" }));

test("tsc strict, bundler resolution, no DOM lib", () => check("bundler", "check.ts", IMPORTS + BODY, { module: "esnext", moduleResolution: "bundler" }));

test("tsc strict, bundler resolution, with the DOM lib (the declarations merge)", () =>
  check("bundler-dom", "check.ts", IMPORTS + BODY, { module: "esnext", moduleResolution: "bundler", lib: ["es2022", "dom", "dom.iterable"] }));

test("tsc strict, nodenext ESM, with @types/node (its fetch types merge too)", () =>
  check("nodenext-node-types", "check.mts", IMPORTS + BODY, { module: "nodenext", moduleResolution: "nodenext", types: ["node"], typeRoots: [join(ROOT, "node_modules", "@types")] }));
