// A Worker module that imports the package as a Worker project would ("poolswitch-wasm",
// resolved through the `workerd` export condition) and runs one scenario per request.
import { PoolSwitchClient, PoolSwitchError } from "poolswitch-wasm";
import { runScenarios, mockControl, scenarioList } from "./scenarios.js";

// Built at module scope, as users do: construction must not need randomness or I/O.
let moduleScopeClient;

export default {
  async fetch(request, env) {
    moduleScopeClient ??= new PoolSwitchClient({ upstreamBaseUrl: env.MOCK_URL, keys: ["sk-module-scope"] });
    const only = new URL(request.url).searchParams.get("only");
    const results = await runScenarios({ PoolSwitchClient, PoolSwitchError }, mockControl(env.MOCK_URL), { host: "workerd", only });
    return Response.json({ results, names: scenarioList.map((e) => e.name), moduleScopeKeys: moduleScopeClient.status().keys.length });
  },
};
