// The mock provider for a test file: started before its tests, stopped after, and fresh keys
// registered per test so each test reads only its own calls from the provider's log.
import { before, after } from "node:test";
import { startMock } from "../js/mock.js";
import { mockControl } from "../scenarios/scenarios.js";

/**
 * Starts the mock provider (its own process) before this file's tests and stops it after.
 * `url` and `control` are set once the tests run.
 */
export function useMockProvider() {
  let mock;
  const provider = { url: null, control: null };
  before(async () => {
    mock = await startMock();
    provider.url = mock.url;
    provider.control = mockControl(mock.url);
  });
  after(() => mock?.stop());
  return provider;
}

let made = 0;

/**
 * Registers one fresh key per entry of `specs` (`{ id: mockSpec }`) under a new tag `<prefix><n>`:
 * value `sk-<tag>-<id>-secret`, logged by the provider as `<tag>-<id>`. Resolves to the tag,
 * `keys` (`{ id, value }`, with `monthlyQuota` when the spec has one), `values` (the strings),
 * `calls()` (this tag's provider log, key ids without the tag) and `counts()` (calls per key id).
 */
export async function freshKeys(control, prefix, specs) {
  const tag = `${prefix}${made++}`;
  const registered = {};
  const keys = [];
  for (const [id, spec] of Object.entries(specs)) {
    const value = `sk-${tag}-${id}-secret`;
    registered[value] = { ...spec, id: `${tag}-${id}` };
    keys.push({ id, value, ...(spec.monthlyQuota ? { monthlyQuota: spec.monthlyQuota } : {}) });
  }
  await control.setKeys(registered);
  const calls = async () => (await control.calls()).filter((c) => c.keyId?.startsWith(`${tag}-`)).map((c) => ({ ...c, keyId: c.keyId.slice(tag.length + 1) }));
  const counts = async () => {
    const out = {};
    for (const c of await calls()) out[c.keyId] = (out[c.keyId] ?? 0) + 1;
    return out;
  };
  return { tag, keys, values: keys.map((k) => k.value), calls, counts };
}
