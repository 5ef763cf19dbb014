// One embedded client in its own process, driven over IPC by the store tests.
// Config: the INSTANCE_CONFIG environment variable (JSON). Messages: { id, op, ... } →
// { id, result } or { id, error }.
import { PoolSwitchClient } from "../../pkg/esm/node.js";

const client = new PoolSwitchClient(JSON.parse(process.env.INSTANCE_CONFIG));
let warnings = 0;
process.on("warning", (w) => {
  if (w.name === "PoolSwitchStoreWarning") warnings++;
});

async function one(path) {
  try {
    const res = await client.fetch(path);
    await res.arrayBuffer();
    return { status: res.status, keyId: res.poolswitch?.keyId ?? null };
  } catch (e) {
    return { status: 0, error: e.message };
  }
}

const ops = {
  // `n` requests, `concurrency` at a time.
  async requests({ n = 1, concurrency = 1, path = "/v1/models" }) {
    const out = [];
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        out.push(await one(path));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return out;
  },
  status: () => ({ ...client.status(), warnings }),
  flush: () => client.flush(),
  async close() {
    await client.close();
    setImmediate(() => process.disconnect());
  },
};

process.on("message", async ({ id, op, ...args }) => {
  try {
    process.send({ id, result: await ops[op](args) });
  } catch (e) {
    process.send({ id, error: String(e && e.stack) });
  }
});
process.send({ ready: true });
