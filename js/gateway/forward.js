// Proxy mode's forwarding: one request through the pool to the upstream, and the answer relayed
// back as the upstream sent it (still encoded, never buffered, with backpressure). On Node's
// transport no Response or web stream is built per request.
import { Readable } from "node:stream";
// The Node build itself, so the client the server made (through esm/node.js) is of the same
// module instance as the helpers used here (through the shim that spares the export-name scan).
import node from "../cjs/node-import.cjs";
import { keyIdHeader, responseHeaders, responseHeadersOfRecord } from "./rules.js";

const { PoolSwitchError } = node;
const { sendThrough, streamBroke, rawBody } = node.forwarding;
const NO_BODY = new Set([204, 304]);

/**
 * Sends `method target` with `headers` (pairs) and `body` through `client`'s pool and answers
 * on `res`, response headers filtered and the key id encoded by the core's rules. Resolves to
 * `{ status, key, attempts }` once the answer is sent, or `{ noKeys: error }` (nothing written)
 * when no key can serve; rejects with the pool's other errors before anything was written.
 */
export async function forward(client, { method, target, headers, body, signal }, res) {
  let reply;
  try {
    reply = await sendThrough(client, method, target, { headers, body, signal });
  } catch (e) {
    if (e instanceof PoolSwitchError && e.kind === "no_healthy_keys") return { noKeys: e };
    throw e;
  }
  const { response, keyId: key, attempts } = reply;
  const status = response.status;
  // An injected fetch answered (a Response, its body decoded), or undici (raw headers, raw body).
  const isWeb = response instanceof Response;
  let out;
  if (isWeb) {
    const flat = [];
    for (const [name, value] of response.headers) flat.push(name, value);
    out = responseHeaders(flat, true);
  } else out = responseHeadersOfRecord(response.headers);
  out.push("x-poolswitch-key-id", keyIdHeader(key), "x-poolswitch-attempts", String(attempts));
  res.writeHead(status, out);
  if (method === "HEAD" || NO_BODY.has(status) || (isWeb && !response.body)) {
    if (!isWeb) response.body.dump().catch(() => {});
    res.end();
    return { status, key, attempts };
  }
  // A streamed answer (no declared length: SSE, chunked) shows its headers at once.
  if (isWeb || response.headers["content-length"] === undefined) res.flushHeaders();
  const source = isWeb ? Readable.fromWeb(response.body) : rawBody(response);
  // A body that breaks while the caller still listens counts against the key.
  const broke = status >= 200 && status < 300 ? () => streamBroke(client, reply) : undefined;
  await relay(source, res, broke);
  return { status, key, attempts };
}

/**
 * Writes `source` to `res` chunk by chunk as it arrives, pausing it while `res` is full; resolves
 * once `res` has closed. What `pipe` does, with four listeners instead of pipe's dozen per call
 * (stream.pipeline also builds an AbortController and a DOMException per call).
 */
function relay(source, res, broke) {
  return new Promise((resolve) => {
    if (res.destroyed) {
      // The caller left before the answer came: its close has been and gone.
      source.destroy();
      return resolve();
    }
    const resume = () => source.resume();
    source.on("data", (chunk) => {
      if (!res.write(chunk)) {
        source.pause();
        res.once("drain", resume);
      }
    });
    source.once("end", () => res.end());
    source.once("error", () => {
      if (!res.destroyed && broke) broke();
      res.destroy();
    });
    res.once("close", () => {
      if (!res.writableFinished) source.destroy();
      resolve();
    });
  });
}
