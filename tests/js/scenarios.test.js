// The shared scenario suite on Node, through the package's ESM entry.
import { test, before, after } from "node:test";
import { PoolSwitchClient, PoolSwitchError } from "../../pkg/esm/node.js";
import { scenarios, mockControl } from "../scenarios/scenarios.js";
import { startMock } from "./mock.js";

let mock;
let control;
before(async () => {
  mock = await startMock();
  control = mockControl(mock.url);
});
after(() => mock.stop());

for (const [name, run] of Object.entries(scenarios)) {
  test(name, () => run({ PoolSwitchClient, PoolSwitchError }, control));
}
