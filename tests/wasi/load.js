// Rounds of sequential GETs and POSTs through the component, run on the Wasmtime hosts (the CLI
// through tests/wasi/driver, the Python embedding through wit-host.js): 3 rounds, each a pool over
// keys a, b, c (round robin, no retries) sending 60 GETs and 60 POSTs in turn. Requests without a
// body once failed here with "connection reset" (src/component/host.rs); with no retries, any
// unanswered attempt is a failed call.
import assert from "node:assert/strict";

export const ROUNDS = 3;
export const CALLS = 60;
export const KEY_IDS = ["a", "b", "c"];
export const keyValue = (run, id) => `sk-${run}${id}-secret`;

/** Registers every round's keys with the mock; a round's prefix is `${prefix}r${round}-`. */
export async function registerKeys(control, prefix) {
  const specs = {};
  for (let round = 0; round < ROUNDS; round++) for (const id of KEY_IDS) specs[keyValue(`${prefix}r${round}-`, id)] = { id: `${prefix}r${round}-${id}` };
  await control.setKeys(specs);
}

/** Checks one round: no failed call, exact per-key counters, and the provider saw the same. */
export async function checkRound(control, { run, failures, keys }) {
  assert.deepEqual(failures, [], `${run}: ${failures.length} of ${2 * CALLS} calls failed`);
  const perKey = CALLS * 2 / KEY_IDS.length;
  // [id, totalRequests, successes, errorCount, networkErrorCount, inFlight]
  assert.deepEqual(keys, KEY_IDS.map((id) => [id, perKey, perKey, 0, 0, 0]), `${run}: per-key counters`);
  const seen = (await control.calls()).filter((c) => c.keyId?.startsWith(run));
  for (const id of KEY_IDS) {
    const mine = seen.filter((c) => c.keyId === `${run}${id}`);
    assert.deepEqual([mine.filter((c) => c.method === "GET").length, mine.filter((c) => c.method === "POST").length], [perKey / 2, perKey / 2], `${run}: the provider's log for key ${id}`);
  }
}
