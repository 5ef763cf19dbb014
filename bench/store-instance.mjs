// One bench instance in its own process: an embedded client that waits for "go", runs its
// requests and reports. Config: STORE_BENCH (JSON) in the environment.
import { PoolSwitchClient } from "../pkg/esm/node.js";

const { config, requests, concurrency, pauseMs } = JSON.parse(process.env.STORE_BENCH);
const client = new PoolSwitchClient(config);
const ready = async () => {
  if (config.store) while (!client.status().store.healthy) await new Promise((r) => setTimeout(r, 5));
};
await ready();
process.send({ ready: true });
process.once("message", async () => {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++;
      try {
        await (await client.fetch("/v1/models")).arrayBuffer();
      } catch {}
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }));
  await client.close();
  process.send({ done: true });
  process.disconnect();
});
