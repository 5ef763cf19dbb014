// The main job: a short workload through poolswitch-wasm against the built-in mock provider.
// Three keys with small quotas, one of which rate-limits; no real keys needed.
import { PoolSwitchClient, PoolSwitchError } from "../pkg/esm/node.js";
import { createMockProvider } from "../pkg/mock-provider.js";

const KEYS = {
  "sk-demo-free-1": { id: "free-1", quota: 6 },
  "sk-demo-free-2": { id: "free-2", quota: 10, script: ["ok", "ok", "rate_limit:1500"] },
  "sk-demo-paid": { id: "paid", quota: 12 },
};
const REQUESTS = 32;

const provider = createMockProvider({ keys: KEYS, latencyMs: 15 });
const baseUrl = await provider.listen();
console.log(`mock provider on ${baseUrl}: keys free-1 (quota 6), free-2 (quota 10, rate-limits once), paid (quota 12)\n`);

const time = () => new Date().toISOString().slice(11, 23);
const client = new PoolSwitchClient({
  upstreamBaseUrl: baseUrl,
  keys: Object.entries(KEYS).map(([value, k]) => ({ id: k.id, value, monthlyQuota: k.quota })),
  strategy: "quota_failover",
  cooldownSeconds: 60,
  onEvent(e) {
    if (e.type === "failover") console.log(`${time()}   ↪ failover from ${e.fromKeyId}: ${e.reason}`);
    if (e.type === "cooldown") console.log(`${time()}   ⏸ ${e.keyId} rests ${e.untilMs ? `until ${new Date(e.untilMs).toISOString().slice(11, 19)}` : "until re-enabled"} (${e.reason})`);
    if (e.type === "recovered") console.log(`${time()}   ▶ ${e.keyId} is back`);
    if (e.type === "retry") console.log(`${time()}   … waiting ${e.delayMs} ms (${e.reason})`);
  },
});

let served = 0;
let failed = 0;
for (let i = 1; i <= REQUESTS; i += 4) {
  // Four at a time, as a small service would.
  await Promise.all(
    Array.from({ length: Math.min(4, REQUESTS - i + 1) }, async (_, j) => {
      const n = String(i + j).padStart(2, "0");
      try {
        const out = await client.post("/v1/chat/completions", { json: { model: "gpt-4o-mini", messages: [{ role: "user", content: `request ${n}` }] } });
        served++;
        console.log(`${time()} #${n} ${out.choices[0].message.content}`);
      } catch (e) {
        failed++;
        if (!(e instanceof PoolSwitchError)) throw e;
        const back = e.retryAt ? `, first key back at ${new Date(e.retryAt).toISOString().slice(11, 19)}` : "";
        console.log(`${time()} #${n} failed: ${e.kind}${e.reason ? ` (${e.reason})` : ""}${back}`);
      }
    }),
  );
}

const s = client.status();
const rows = s.keys.map((k) => [k.id, k.state, k.totalRequests, k.successes, k.errorCount, k.failoverCount, k.estimatedRemainingQuota ?? "?", k.cooldownUntil ? new Date(k.cooldownUntil).toISOString().slice(11, 19) : "-"]);
const head = ["key", "state", "requests", "ok", "errors", "failovers", "remaining", "cooling until"];
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
const line = (r) => r.map((v, c) => String(v).padEnd(widths[c])).join("  ");
console.log(`\n${served} of ${REQUESTS} requests served, ${failed} failed (the pool's total quota is 28).\n`);
console.log(line(head));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log(`\npool: ${s.totalRequests} upstream calls, ${s.successes} ok, ${s.errorCount} errors, ${s.failoverCount} failovers, strategy ${s.strategy}`);
await provider.close();
