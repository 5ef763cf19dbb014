// Cold-start probe: a Worker that builds a pool and makes one request through it.
import { PoolSwitchClient } from "poolswitch-wasm";

export default {
  async fetch(_request, env) {
    const client = new PoolSwitchClient({ upstreamBaseUrl: env.MOCK_URL, keys: [env.KEY] });
    return Response.json(await client.get("/v1/models"));
  },
};
