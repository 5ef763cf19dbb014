// The upstream transport over a `fetch` function: the host's own (browsers, workerd, WASI
// hosts) or one the caller injects. Every transport has the same shape:
//   send(method, url, headers, body, signal) -> Promise<{ status, header(name), response }>
//                          what task.js drives the request machine with
//   text(response)         -> Promise<string>  a 2xx body the pool reads itself
//   header(response, name) -> string | null
//   toResponse(response)   -> a standard Response (client.fetch, stream: true, error answers)
//   discard(response)      frees a response the caller will not get
// Here `response` is the fetch Response itself.
import { fetchSender } from "../task.js";

/** A transport that sends with `fetchFn(url, init)`. */
export function fetchTransport(fetchFn) {
  return {
    send: fetchSender(fetchFn),
    text: (response) => response.text(),
    header: (response, name) => response.headers.get(name),
    toResponse: (response) => response,
    discard(response) {
      if (response && response.body && !response.bodyUsed) response.body.cancel().catch(() => {});
    },
  };
}
