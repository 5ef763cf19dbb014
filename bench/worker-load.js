// Throughput probe for workerd (bench section 5b): one request to this Worker makes `n` POSTs to
// the mock at concurrency `c`, through the pool (`mode=pool`) or with the runtime's fetch alone.
import { PoolSwitchClient } from "poolswitch-wasm";

const BODY = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
let client; // one pool per isolate, as a Worker keeps it between requests

export default {
  async fetch(request, env) {
    const q = new URL(request.url).searchParams;
    const [mode, n, c] = [q.get("mode"), Number(q.get("n")), Number(q.get("c"))];
    const keys = JSON.parse(env.KEYS);
    client ??= new PoolSwitchClient({ upstreamBaseUrl: env.MOCK_URL, keys, strategy: "quota_failover" });
    const url = `${env.MOCK_URL}/v1/chat/completions`;
    const init = { method: "POST", headers: { authorization: `Bearer ${keys[0]}`, "content-type": "application/json" }, body: JSON.stringify(BODY) };
    const call = mode === "pool" ? () => client.post("/v1/chat/completions", { json: BODY }) : () => fetch(url, init).then((r) => r.json());
    let next = 0;
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (next < n) {
          next++;
          await call();
        }
      }),
    );
    return Response.json({ done: n });
  },
};
