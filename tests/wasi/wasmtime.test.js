// The client component in Wasmtime (the CLI, built by `cargo install wasmtime-cli`): imported by
// a test-driver command (tests/wasi/driver) and composed with it by `wac plug`, it sends rounds of
// GETs and POSTs under `wasmtime run -S http` (load.js). The mock provider runs in its own process.
// (The gateway component is tested by the proxy suite: tests/proxy/wasmtime.test.js.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startMock, ROOT } from "../js/mock.js";
import { ROUNDS, registerKeys, checkRound } from "./load.js";
import { mockControl } from "../scenarios/scenarios.js";

const COMPONENTS = join(ROOT, "target", "components");
const mock = await startMock();
const control = mockControl(mock.url);

// The driver sends load.js's rounds through the component; the shared scenario list runs on
// Wasmtime through its Python embedding (wasmtime-py.test.js).
test("wasmtime run: 3 pools x 60 GETs and 60 POSTs through the composed component, every attempt answered", async () => {
  const composed = join(COMPONENTS, "driver-composed.wasm");
  execFileSync("wac", ["plug", join(ROOT, "target/driver/wasm32-wasip2/release/poolswitch-wasi-driver.wasm"), "--plug", join(COMPONENTS, "poolswitch.wasm"), "-o", composed]);
  const prefix = `cli${Date.now().toString(36)}`;
  await registerKeys(control, prefix);
  const out = execFileSync("wasmtime", ["run", "-S", "http=y,cli=y", composed, mock.url, prefix], { encoding: "utf8", timeout: 120_000 });
  const rounds = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(rounds.length, ROUNDS);
  for (const round of rounds) await checkRound(control, round);
});

after(() => mock.stop());
