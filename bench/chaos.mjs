// Chaos, long: the soak version of tests/js/chaos.test.js. Rounds of calls at a concurrency
// against the mock provider in chaos mode; after each round it checks that every call settled,
// that the pool's per-key counters equal what the provider received, and prints the heap after
// GC, so memory growth over many rounds shows.
//
//   ./scripts/build-pkg.sh
//   node bench/chaos.mjs [--seed N] [--rounds N] [--calls N] [--concurrency N] [--keys N]
//
// Exits 1 on the first broken check. Defaults: seed 1, 20 rounds of 5,000 calls at 256.
import { parseArgs } from "node:util";
import { PoolSwitchClient } from "../pkg/esm/node.js";
import { startMock } from "../tests/js/mock.js";
import { chaosCounters, chaosKeys, chaosOptions, chaosRound, heapAfterGc, seededRandom } from "../tests/js/chaos.js";

const { values } = parseArgs({
  options: { seed: { type: "string", default: "1" }, rounds: { type: "string", default: "20" }, calls: { type: "string", default: "5000" }, concurrency: { type: "string", default: "256" }, keys: { type: "string", default: "8" } },
});
const [seed, rounds, calls, concurrency, count] = [values.seed, values.rounds, values.calls, values.concurrency, values.keys].map(Number);

const mock = await startMock();
let failed = false;
try {
  const keys = await chaosKeys(mock.url, { seed, count });
  const client = new PoolSwitchClient(chaosOptions(mock.url, keys));
  const random = seededRandom(seed);
  console.log(`seed ${seed}, ${rounds} rounds of ${calls} calls at concurrency ${concurrency}, ${count} keys`);
  for (let round = 1; round <= rounds && !failed; round++) {
    const started = Date.now();
    const tally = await chaosRound(client, mock.url, { calls, concurrency, random });
    const settled = Object.values(tally).reduce((a, b) => a + b, 0);
    const counters = await chaosCounters(client, mock.url);
    const wrong = counters.filter((k) => k.inFlight !== 0 || k.totalRequests !== k.received || k.totalRequests !== k.successes + k.errorCount);
    const heapMb = (heapAfterGc() / 1048576).toFixed(1);
    console.log(`round ${round}: ${settled}/${calls} settled in ${((Date.now() - started) / 1000).toFixed(1)} s, heap after GC ${heapMb} MB, ${JSON.stringify(tally)}`);
    if (settled !== calls || wrong.length) {
      console.error("counters differ from what the provider received:", JSON.stringify(wrong));
      failed = true;
    }
  }
  console.log("keys:", JSON.stringify((await chaosCounters(client, mock.url)).map((k) => [k.id, k.state, k.totalRequests])));
} finally {
  await mock.stop();
}
process.exit(failed ? 1 : 0);
