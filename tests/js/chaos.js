// A chaos run: many concurrent calls of every shape through one client, against the mock
// provider in chaos mode (random 200/429/401/5xx, resets, stalls, cut bodies; js/mock-provider.js
// CHAOS). Used by tests/js/chaos.test.js (short) and bench/chaos.mjs (long).
import v8 from "node:v8";
import vm from "node:vm";
import { CHAOS, seededRandom } from "../../js/mock-provider.js";

// A 401 kills a key for good: rare enough that most keys live through a run.
export const WEIGHTS = { ...CHAOS, invalid: 0.1 };

const chat = { model: "mock-model", messages: [{ role: "user", content: "hi" }] };

/** Registers `count` chaos keys on the mock; returns the key list for the client. */
export async function chaosKeys(mockUrl, { seed, count = 8, weights = WEIGHTS }) {
  const specs = {};
  const list = [];
  for (let i = 0; i < count; i++) {
    const id = `chaos-${i}`;
    specs[`sk-${id}-secret`] = { id, chaos: { seed, weights } };
    list.push({ id, value: `sk-${id}-secret` });
  }
  const r = await fetch(`${mockUrl}/__mock/keys`, { method: "POST", body: JSON.stringify(specs) });
  await r.json();
  return list;
}

/**
 * The client options a chaos run uses: every attempt and body read bounded. The timeout is
 * far above any answer's time so it ends only the stalls: an attempt that times out before
 * its request reaches the provider (a machine too busy to send it) is counted by the pool and
 * not by the provider.
 */
export function chaosOptions(mockUrl, keys) {
  return { upstreamBaseUrl: mockUrl, keys, requestTimeoutMs: 5000, backoffBaseMs: 5, backoffMaxMs: 50, maxWaitMs: 500 };
}

// One call of a shape drawn at random; resolves to how it ended.
async function oneCall(client, mockUrl, r) {
  try {
    if (r < 0.3) await client.get("/v1/models");
    else if (r < 0.55) await client.post("/v1/chat/completions", { json: chat });
    else if (r < 0.75) await (await client.post("/v1/chat/completions", { json: { ...chat, stream: true }, stream: true })).text();
    else {
      const res = await client.fetch(`${mockUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(chat) });
      // An error answer's body may never come (a stalled provider): a caller of fetch drops it.
      if (!res.ok) {
        await res.body?.cancel();
        return `fetch ${res.status}`;
      }
      await res.text();
    }
    return "ok";
  } catch (e) {
    return e.kind ?? e.name;
  }
}

/** `calls` calls, `concurrency` at a time; resolves to a tally of how they ended. */
export async function chaosRound(client, mockUrl, { calls, concurrency, random }) {
  const tally = {};
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next++;
      const end = await oneCall(client, mockUrl, random());
      tally[end] = (tally[end] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return tally;
}

/** Per key: what the pool counted next to what the provider received. */
export async function chaosCounters(client, mockUrl) {
  const received = await (await fetch(`${mockUrl}/__mock/counts`)).json();
  return client.status().keys.map((k) => ({ id: k.id, totalRequests: k.totalRequests, received: received[k.id] ?? 0, successes: k.successes, errorCount: k.errorCount, inFlight: k.inFlight, state: k.state }));
}

/** Heap used after a full garbage collection. */
export function heapAfterGc() {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc");
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export { seededRandom };
