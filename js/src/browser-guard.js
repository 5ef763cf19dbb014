// Keys given to a client in a web page are readable by anyone who opens that page (devtools, the
// bundle, the network panel). Like the openai SDK, the client refuses to run in a browser unless
// the caller says it knows (`dangerouslyAllowBrowser: true`): e.g. keys the user typed in
// themselves, or a gateway token rather than provider keys.

/** True in a page's main thread (Web Workers, Deno, Node, Bun and edge runtimes have no document). */
function inBrowserPage() {
  return typeof window !== "undefined" && typeof window.document !== "undefined" && typeof navigator !== "undefined";
}

/** Throws unless `allowed` is true or the host is not a browser page; `makeError(message, fields)`. */
export function refuseBrowserUnlessAllowed(allowed, makeError) {
  if (allowed !== undefined && typeof allowed !== "boolean") {
    throw makeError("invalid config: dangerouslyAllowBrowser must be a boolean", { kind: "invalid_config", field: "dangerouslyAllowBrowser", problem: "must be a boolean" });
  }
  if (allowed === true || !inBrowserPage()) return;
  throw makeError(
    "poolswitch-wasm refuses to run in a browser: every key given to it is readable by whoever loads the page. " +
      "Keep the keys on a server (proxy mode: `npx poolswitch-wasm serve`) or, if exposing them is intended " +
      "(keys the user entered, a gateway token), pass `dangerouslyAllowBrowser: true`.",
    { kind: "invalid_config", field: "dangerouslyAllowBrowser", problem: "must be true to run in a browser" },
  );
}
