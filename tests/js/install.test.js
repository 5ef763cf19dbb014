// The published package as a new user gets it: `npm pack` pkg/, install the tarball into a
// fresh project, run the README's quickstarts (ESM and CommonJS), type-check against index.d.ts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMock, ROOT } from "./mock.js";
import { mockControl } from "../scenarios/scenarios.js";

let mock;
let project;
const KEYS = ["sk-install-a-secret", "sk-install-b-secret"];

function quickstart(readme, name) {
  const m = readme.match(new RegExp(`<!-- quickstart:${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``));
  assert.ok(m, `README has the ${name} quickstart`);
  return m[1];
}

const run = (file) =>
  execFileSync(process.execPath, [file], { cwd: project, encoding: "utf8", env: { ...process.env, OPENAI_BASE_URL: mock.url, OPENAI_KEYS: KEYS.join(",") } });

before(async () => {
  mock = await startMock();
  await mockControl(mock.url).setKeys({ [KEYS[0]]: { id: "install-a", script: ["quota"] }, [KEYS[1]]: { id: "install-b" } });
  project = await mkdtemp(join(tmpdir(), "poolswitch-install-"));
  execFileSync("npm", ["pack", "--silent", "--pack-destination", project], { cwd: join(ROOT, "pkg"), encoding: "utf8" });
  const tarball = (await readdir(project)).find((f) => f.endsWith(".tgz"));
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "new-user-app", version: "1.0.0", private: true }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", `./${tarball}`], { cwd: project });
});
after(() => mock?.stop());

test("the tarball holds the package and nothing of the workspace", async () => {
  const files = execFileSync("tar", ["-tzf", join(project, (await readdir(project)).find((f) => f.endsWith(".tgz")))], { encoding: "utf8" }).split("\n");
  for (const f of ["package/package.json", "package/index.d.ts", "package/esm/node.js", "package/cjs/index.cjs", "package/wasm/poolswitch_bg.wasm", "package/README.md"]) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.ok(!files.some((f) => /src\/|\.rs$|tests\//.test(f)), "no sources or tests packed");
});

test("the README's ESM quickstart runs in a fresh project and fails over", async () => {
  const readme = await readFile(join(ROOT, "js/README.md"), "utf8");
  await writeFile(join(project, "quickstart.mjs"), quickstart(readme, "esm"));
  const out = run("quickstart.mjs");
  assert.match(out, /served by install-b/);
  assert.match(out, /key-1: exhausted, 1 requests/);
  assert.match(out, /key-2: healthy, 1 requests/);
});

test("the README's CommonJS quickstart runs with require()", async () => {
  const readme = await readFile(join(ROOT, "js/README.md"), "utf8");
  await writeFile(join(project, "quickstart.cjs"), quickstart(readme, "cjs"));
  assert.match(run("quickstart.cjs"), /mock-model/);
});

test("TypeScript users get checked types from index.d.ts", async () => {
  await writeFile(
    join(project, "check.mts"),
    `import { PoolSwitchClient, PoolSwitchError, type PoolStatus, type PoolEvent } from "poolswitch-wasm";
const client = new PoolSwitchClient({ upstreamBaseUrl: "https://api.openai.com", keys: ["a", { id: "b", value: "v", monthlyQuota: 5 }], strategy: "weighted", onEvent: (e: PoolEvent) => { if (e.type === "failover") e.fromKeyId.toUpperCase(); } });
const s: PoolStatus = client.status();
s.keys[0].cooldownUntil satisfies number | null;
const r: Promise<Response> = client.fetch("https://api.openai.com/v1/models");
client.post<{ id: string }>("/v1/x", { json: {}, timeoutMs: 5 }).catch((e) => { if (e instanceof PoolSwitchError) e.kind satisfies string; });
// @ts-expect-error unknown strategies are rejected by the types
new PoolSwitchClient({ upstreamBaseUrl: "x", keys: [], strategy: "fastest" });
// @ts-expect-error keys are required
new PoolSwitchClient({ upstreamBaseUrl: "x" });
void r;
`,
  );
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom", "check.mts"], { cwd: project, encoding: "utf8" });
});
