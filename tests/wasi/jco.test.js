// The WASI component in Node through jco + preview2-shim, driven by the shared scenario list through
// the WIT mapping (wit-api.js; what the WIT interface cannot express is skipped with its reason).
// jco's wasi:http is synchronous and blocks this thread, so the mock provider runs in its own process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { scenarioList, skipReason, runScenario, mockControl } from "../scenarios/scenarios.js";
import { startMock, ROOT } from "../js/mock.js";
import { componentApi } from "./wit-api.js";

let mock;
let api;
before(async () => {
  mock = await startMock();
  const out = join(ROOT, "target", "jco");
  execFileSync(process.execPath, [join(ROOT, "node_modules/@bytecodealliance/jco/dist/jco.js"), "transpile", join(ROOT, "target/components/poolswitch.wasm"), "-o", out, "--name", "poolswitch", "--quiet"], { stdio: "inherit" });
  const { client } = await import(join(out, "poolswitch.js"));
  api = componentApi(client);
});
after(() => mock?.stop());

// What the WIT interface cannot express is skipped with the reason given in the list (skip.wasi).
for (const entry of scenarioList) {
  const skip = skipReason(entry, "wasi");
  test(`jco: ${entry.name}`, { skip: skip && `not in the WIT interface: ${skip}` }, () => runScenario(entry.name, api, mockControl(mock.url)));
}

test("jco: the component answers a chat completion through wasi:http", async () => {
  const control = mockControl(mock.url);
  await control.setKeys({ "sk-jco-only-secret": { id: "jco-only" } });
  const c = new api.PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["sk-jco-only-secret"] });
  const out = await c.post("/v1/chat/completions", { json: { model: "m", messages: [] } });
  assert.equal(out.choices[0].message.content, "served by jco-only");
});

test("the components export exactly their worlds (jco wit, i.e. wasm-tools component wit)", () => {
  const wit = (file) => execFileSync(process.execPath, [join(ROOT, "node_modules/@bytecodealliance/jco/dist/jco.js"), "wit", join(ROOT, "target/components", file)], { encoding: "utf8" });
  const lines = (text, kind) => text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith(`${kind} `));
  const client = wit("poolswitch.wasm");
  assert.deepEqual(lines(client, "export"), ["export poolswitch:client/client@0.1.0;"]);
  for (const l of lines(client, "import")) assert.match(l, /^import (wasi:(io|clocks|random|cli|http)\/|poolswitch:client\/types@0\.1\.0;)/, l);
  assert.ok(lines(client, "import").some((l) => l.startsWith("import wasi:http/outgoing-handler@")), "outgoing HTTP through wasi:http");
  const gateway = wit("poolswitch-gateway.wasm");
  // A Rust bin on wasm32-wasip2 also exports wasi:cli/run; the client interface must not be there.
  const exports = lines(gateway, "export");
  assert.ok(exports.some((l) => /^export wasi:http\/incoming-handler@0\.2\.\d+;$/.test(l)), exports.join(" "));
  assert.ok(!exports.some((l) => l.includes("poolswitch:client")), exports.join(" "));
});
