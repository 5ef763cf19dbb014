// Chaos, short: 256 concurrent calls at a time against a provider answering at random (by a
// fixed seed): every call settles, the pool's counters equal what the provider received, and
// memory does not grow from one round to the next. bench/chaos.mjs runs the long version.
//
// Stalled error bodies settle only where the pool's timeout covers the error-body peek (the
// request driver's deadline work); before that, this test fails by its safety timeout.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
// The client as an entry point loads it (the same modules the bundles inline), so the test can
// read the wasm instance's memory.
import { liveExports, PoolSwitchClient } from "./wasm-entry.js";
import { startMock } from "./mock.js";
import { chaosCounters, chaosKeys, chaosOptions, chaosRound, heapAfterGc, seededRandom } from "./chaos.js";

const SEED = 20261125;
const CALLS = 700;
const CONCURRENCY = 256;

let mock;
before(async () => {
  mock = await startMock();
});
after(() => mock.stop());

// The safety timeout only turns a hang into a failure; nothing here asserts on time.
test(`chaos: 3 × ${CALLS} calls at concurrency ${CONCURRENCY} (seed ${SEED}) all settle, counted as the provider saw them, memory flat`, { timeout: 300_000 }, async () => {
  const keys = await chaosKeys(mock.url, { seed: SEED });
  const client = new PoolSwitchClient(chaosOptions(mock.url, keys));
  const random = seededRandom(SEED);
  const wasmMemory = () => liveExports().memory.buffer.byteLength;

  const heaps = [];
  const wasm = [];
  for (let round = 0; round < 3; round++) {
    const tally = await chaosRound(client, mock.url, { calls: CALLS, concurrency: CONCURRENCY, random });
    const settled = Object.values(tally).reduce((a, b) => a + b, 0);
    assert.equal(settled, CALLS, `every call settled: ${JSON.stringify(tally)}`);
    assert.ok(tally.ok > 0, `some calls succeeded: ${JSON.stringify(tally)}`);
    const counters = await chaosCounters(client, mock.url);
    for (const k of counters) {
      assert.equal(k.inFlight, 0, `${k.id}: nothing left in flight`);
      assert.equal(k.totalRequests, k.received, `${k.id}: the pool counted what the provider received (${JSON.stringify(k)})`);
      assert.equal(k.totalRequests, k.successes + k.errorCount, `${k.id}: every attempt is a success or an error (${JSON.stringify(k)})`);
    }
    heaps.push(heapAfterGc());
    wasm.push(wasmMemory());
  }
  // Round 0 warms up (code, caches, connections); rounds 1 and 2 are the same work again.
  const growth = heaps[2] - heaps[1];
  assert.ok(growth < 4 * 1024 * 1024, `JS heap after GC grew by ${growth} bytes from round 1 to round 2 (${heaps.join(", ")})`);
  assert.ok(wasm[2] - wasm[1] <= 1024 * 1024, `wasm memory grew from ${wasm[1]} to ${wasm[2]} bytes`);
});
