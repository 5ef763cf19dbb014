// The upstream transport over a `fetch` function: the host's own (browsers, workerd, WASI
// hosts) or one the caller injects. Every transport has the same shape:
//   send(method, url, headers, body, signal) -> Promise<{ status, header(name), response }>
//   start(method, url, headers, body, signal, attempt)  the same send, but instead of a
//                          promise it calls attempt.settle(error, reply) exactly once, maybe
//                          before it returns: what task.js drives the request machine with
//   text(response, ms?)    -> Promise<string>  a 2xx body the pool reads itself, within `ms`
//                          when given (rejects with BodyStalled after it, the body released)
//   header(response, name) -> string | null
//   toResponse(response)   -> a standard Response (client.fetch, stream: true, error answers)
//   discard(response)      frees a response the caller will not get
// Here `response` is the fetch Response itself.
import { callbackSender, fetchSender } from "../task.js";

/** A body that stopped arriving: `request()` reads bodies within the request's timeout. */
export class BodyStalled extends Error {}

/**
 * A Response's body as text, within `ms` when given: a provider can send headers and then
 * stall. On expiry the body is cancelled through its reader (a locked body cannot be cancelled
 * otherwise), which frees its connection.
 */
export async function readText(response, ms) {
  if (ms === undefined || !response.body) return response.text();
  const reader = response.body.getReader();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    reader.cancel().catch(() => {});
  }, ms);
  const chunks = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } finally {
    clearTimeout(timer);
  }
  if (expired) throw new BodyStalled(`its body did not arrive within ${ms} ms`);
  const decoder = new TextDecoder();
  let text = "";
  for (const c of chunks) text += decoder.decode(c, { stream: true });
  return text + decoder.decode();
}

/** A transport that sends with `fetchFn(url, init)`. */
export function fetchTransport(fetchFn) {
  const send = fetchSender(fetchFn);
  return {
    send,
    start: callbackSender(send),
    text: readText,
    header: (response, name) => response.headers.get(name),
    toResponse: (response) => response,
    discard(response) {
      if (response && response.body && !response.bodyUsed) response.body.cancel().catch(() => {});
    },
  };
}
