// The one scenario list (tests/scenarios/scenarios.json) on Node, through the package's ESM entry, on both transports:
// once on the default (undici's dispatcher) and once with an injected `fetch`.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { PoolSwitchClient, PoolSwitchError } from "../../pkg/esm/node.js";
import { scenarioList, skipReason, runScenario, mockControl } from "../scenarios/scenarios.js";
import { startMock } from "./mock.js";

// The host's fetch, counted: the default transport must never call it.
const hostFetch = globalThis.fetch;
let hostFetchCalls = 0;
let injectedCalls = 0;

let mock;
let control;
before(async () => {
  globalThis.fetch = (url, init) => {
    hostFetchCalls++;
    return hostFetch(url, init);
  };
  mock = await startMock();
  control = mockControl(mock.url, hostFetch);
});
after(() => {
  globalThis.fetch = hostFetch;
  return mock.stop();
});

// Every client of the second run gets a fetch, unless the scenario gives its own.
class WithFetch extends PoolSwitchClient {
  constructor(options) {
    const plain = options && typeof options === "object" && !Array.isArray(options) && !("fetch" in options);
    const fetch = (url, init) => {
      injectedCalls++;
      return hostFetch(url, init);
    };
    super(plain ? { ...options, fetch } : options);
  }
}

describe("undici dispatcher (the Node default)", () => {
  for (const entry of scenarioList) {
    test(entry.name, { skip: skipReason(entry, "node") }, () => runScenario(entry.name, { PoolSwitchClient, PoolSwitchError }, control));
  }
  test("no request went through the host's fetch", () => assert.equal(hostFetchCalls, 0));
});

describe("injected fetch", () => {
  for (const entry of scenarioList) {
    test(entry.name, { skip: skipReason(entry, "node") }, () => runScenario(entry.name, { PoolSwitchClient: WithFetch, PoolSwitchError }, control));
  }
  test("requests went through the injected fetch", () => assert.ok(injectedCalls > 0));
});
