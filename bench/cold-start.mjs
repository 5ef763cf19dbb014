// One cold start in a fresh Node process: import + construct + first request ready.
// usage: node cold-start.mjs pool|raw MOCK_URL KEY [PKG_DIR]   → prints { importMs, constructMs, firstRequestMs, totalMs }
import { pathToFileURL } from "node:url";

const [mode, url, key, pkg = new URL("../pkg", import.meta.url).pathname] = process.argv.slice(2);
const t0 = performance.now();
if (mode === "raw") {
  const t1 = performance.now();
  const r = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  await r.json();
  const t2 = performance.now();
  console.log(JSON.stringify({ importMs: 0, constructMs: 0, firstRequestMs: t2 - t1, totalMs: t2 - t0 }));
} else {
  const { PoolSwitchClient } = await import(pathToFileURL(`${pkg}/esm/node.js`).href);
  const t1 = performance.now();
  const client = new PoolSwitchClient({ upstreamBaseUrl: url, keys: [key] });
  const t2 = performance.now();
  await client.get("/v1/models");
  const t3 = performance.now();
  console.log(JSON.stringify({ importMs: t1 - t0, constructMs: t2 - t1, firstRequestMs: t3 - t2, totalMs: t3 - t0 }));
}
