// The Node bundle's entry (cjs/node.cjs, which esm/node.js re-exports): the inlined wasm as for
// every host, and undici's dispatcher as the upstream transport when no `fetch` is given. Only
// this bundle contains transport/undici.js, so browser and Worker bundles never load undici.
import { useTransport, sendThrough, streamBroke } from "./client.js";
import { undiciTransport, rawBody } from "./transport/undici.js";

useTransport(undiciTransport);

export { PoolSwitchClient, PoolSwitchError, MemoryStore, useRedis } from "./inline.js";
/** Internal, for proxy mode (gateway/forward.js): the same module instance as the client. */
export const forwarding = { sendThrough, streamBroke, rawBody };
