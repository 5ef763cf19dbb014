// A Worker that forwards every request to the provider through one key pool shared by all
// of its isolates (and any other Worker bound to the same object) through a Durable Object.
import { PoolSwitchClient, durableObjectStore } from "poolswitch-wasm";
// The Durable Object class that holds the pool's state; bound as POOL_STATE in wrangler.toml.
export { PoolStateObject } from "poolswitch-wasm";

// Callers' own credentials and per-hop headers never go upstream; the pool adds the key.
const DROP = new Set(["authorization", "host", "connection", "content-length", "x-poolswitch-token"]);

let client; // one per isolate, built on its first request (env is not known before)

function pool(env) {
  client ??= new PoolSwitchClient({
    upstreamBaseUrl: env.UPSTREAM_BASE_URL,
    keys: JSON.parse(env.POOLSWITCH_KEYS), // a secret: wrangler secret put POOLSWITCH_KEYS
    strategy: env.STRATEGY || "quota_failover",
    store: durableObjectStore(env.POOL_STATE),
    namespace: env.POOL_NAMESPACE || "default",
  });
  return client;
}

function authorized(request, env) {
  if (!env.GATEWAY_TOKEN) return true;
  return request.headers.get("authorization") === `Bearer ${env.GATEWAY_TOKEN}`;
}

export default {
  async fetch(request, env, ctx) {
    if (!authorized(request, env)) return Response.json({ error: { type: "unauthorized" } }, { status: 401 });
    const c = pool(env);
    const url = new URL(request.url);
    if (url.pathname === "/poolswitch/status") {
      ctx.waitUntil(c.flush());
      return Response.json(c.status());
    }
    const headers = [...request.headers].filter(([name]) => !DROP.has(name));
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const upstream = await c.fetch(url.pathname + url.search, { method: request.method, headers, body: hasBody ? await request.arrayBuffer() : undefined });
    // After the answer: this isolate's work goes to the object and the others' comes back.
    ctx.waitUntil(c.flush());
    const out = new Response(upstream.body, upstream);
    if (upstream.poolswitch) out.headers.set("x-poolswitch-key-id", upstream.poolswitch.keyId);
    return out;
  },
};
