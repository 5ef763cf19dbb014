// Where a Node cold start goes, step by step, in fresh processes (median of N, default 15):
// node bench/cold-parts.mjs [N] [PKG_DIR]. The steps redo by hand what cjs/node.cjs does at
// import, then time the whole import and a first construction the way users pay them.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [n = "15", dir = new URL("../pkg", import.meta.url).pathname] = process.argv.slice(2);
const pkg = resolve(dir);
const config = { upstreamBaseUrl: "http://127.0.0.1:9", keys: ["sk-a"] };

if (process.env.COLD_PARTS_CHILD === "steps") {
  const out = {};
  let t = performance.now();
  const step = (name) => {
    const now = performance.now();
    out[name] = now - t;
    t = now;
  };
  const base64 = createRequire(import.meta.url)(`${pkg}/cjs/wasm-base64.js`);
  step("read + parse the base64 module");
  const bytes = Buffer.from(base64, "base64");
  step("decode base64");
  const module = new WebAssembly.Module(bytes);
  step("compile (WebAssembly.Module)");
  const glue = await import(pathToFileURL(`${pkg}/wasm/poolswitch.js`).href);
  step("load the wasm-bindgen glue (ESM)");
  glue.initSync({ module });
  step("instantiate");
  new glue.WasmPool(config);
  step("first new WasmPool (inside wasm)");
  new glue.WasmPool(config);
  step("second new WasmPool");
  console.log(JSON.stringify(out));
} else if (process.env.COLD_PARTS_CHILD === "whole") {
  const t0 = performance.now();
  const { PoolSwitchClient } = await import(pathToFileURL(`${pkg}/esm/node.js`).href);
  const t1 = performance.now();
  new PoolSwitchClient(config);
  const t2 = performance.now();
  console.log(JSON.stringify({ "import esm/node.js": t1 - t0, "first new PoolSwitchClient": t2 - t1, "import + construct": t2 - t0 }));
} else {
  const runs = { steps: [], whole: [] };
  for (let i = 0; i < Number(n); i++) {
    for (const kind of ["steps", "whole"]) {
      const env = { ...process.env, COLD_PARTS_CHILD: kind };
      runs[kind].push(JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, n, pkg], { env, encoding: "utf8" })));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const kind of ["steps", "whole"]) {
    for (const name of Object.keys(runs[kind][0])) console.log(`| ${name} | ${median(runs[kind].map((r) => r[name])).toFixed(2)} ms |`);
  }
}
