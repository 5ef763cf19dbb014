// The proxy rules of the core (src/core/proxy, exported by src/js/proxy.rs) for the Node gateway,
// from a wasm of their own (built with the `node-proxy` feature): the same definitions the WASI
// gateway links natively. Pure functions; the client's own wasm instance is separate.
import { readFileSync } from "node:fs";
import { initSync } from "./wasm/poolswitch.js";

initSync({ module: readFileSync(new URL("./wasm/poolswitch_bg.wasm", import.meta.url)) });

export {
  proxyAuthorized,
  proxyConfig,
  proxyErrorAnswer,
  proxyKeyIdHeader,
  proxyMetrics,
  proxyParseKey,
  proxyRequestHeaders,
  proxyResponseHeaders,
  proxyRoute,
} from "./wasm/poolswitch.js";
