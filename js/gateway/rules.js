// The proxy rules of the core (src/core/proxy, exported by src/js/proxy.rs) for the Node gateway,
// from a wasm of their own (built with the `node-proxy` feature): the same definitions the WASI
// gateway links natively. Pure functions; the client's own wasm instance is separate.
//
// A forwarded request is the hot path: its route and header rules are applied here from the
// core's tables, read once at load, so it crosses into this wasm not at all (each crossing
// copies every header name and value both ways). tests/js/forward.test.js checks these against
// the core's own functions.
import { readFileSync } from "node:fs";
import { initSync, proxyKeyIdHeader, proxyTables } from "./wasm/poolswitch.js";

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

const { prefix, hopByHop, requestOnly, decodedOnly } = proxyTables();
const DROP_REQUEST = new Set([...hopByHop, ...requestOnly]);
const DROP_RESPONSE = new Set(hopByHop);
const DROP_DECODED = new Set([...hopByHop, ...decodedOnly]);

/** Whether `target` is forwarded (the core's `Route::Forward`): origin-form, not under the prefix. */
export const isForwarded = (target) => target.charCodeAt(0) === 47 && !target.startsWith(prefix);

// ASCII-only lower case, as the core compares (toLowerCase would also fold e.g. U+212A to "k").
const asciiLower = (s) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
// Spaces and tabs around a list element (HTTP's OWS), as the core trims.
const trimOws = (s) => s.replace(/^[ \t]+|[ \t]+$/g, "");

// Callers send the same few Connection values ("keep-alive", "close") again and again.
const listedCache = new Map();

/** The names a `Connection` header lists (lower case); they are hop-by-hop for that message. */
function listedNames(value) {
  let names = listedCache.get(value);
  if (names === undefined) {
    names = new Set();
    for (const token of value.split(",")) names.add(asciiLower(trimOws(token)));
    if (listedCache.size >= 64) listedCache.clear();
    listedCache.set(value, names);
  }
  return names;
}

// Header names arrive from Node's and undici's HTTP parsers (and fetch's Headers), which accept
// only tokens (ASCII), so toLowerCase is the core's ASCII case folding for them.
function connectionOf(flat) {
  let value;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i].length === 10 && flat[i].toLowerCase() === "connection") value = value === undefined ? flat[i + 1] : `${value},${flat[i + 1]}`;
  }
  return value === undefined ? null : listedNames(value);
}

/**
 * The request headers that go upstream, from flat `[name, value, …]` (Node's `rawHeaders`), as
 * `[name, value]` pairs with lower-case names: the core's `proxyRequestHeaders`.
 */
export function requestHeaders(flat) {
  const listed = connectionOf(flat);
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    if (!DROP_REQUEST.has(name) && !(listed && listed.has(name))) out.push([name, flat[i + 1]]);
  }
  return out;
}

/**
 * Appends to `out` the response headers that go back, from flat `[name, value, …]`;
 * `bodyDecoded`: fetch has undone the content encoding. The core's `proxyResponseHeaders`.
 */
export function responseHeaders(flat, bodyDecoded, out = []) {
  const listed = connectionOf(flat);
  const drop = bodyDecoded ? DROP_DECODED : DROP_RESPONSE;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    if (!drop.has(name) && !(listed && listed.has(name))) out.push(flat[i], flat[i + 1]);
  }
  return out;
}

/**
 * The same for undici's header record (lower-case names, a repeated header as an array): what
 * goes back is appended to `out` as flat `[name, value, …]`, with no list built in between.
 */
export function responseHeadersOfRecord(record, out = []) {
  const connection = record.connection;
  const listed = connection === undefined ? null : listedNames(Array.isArray(connection) ? connection.join(",") : connection);
  for (const name in record) {
    if (DROP_RESPONSE.has(name) || (listed && listed.has(name))) continue;
    const value = record[name];
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
}

// Key ids are few (the config's, and those added since), so each one's header is encoded once.
const keyIdHeaders = new Map();

/** The `x-poolswitch-key-id` value for a key id (the core's encoding, remembered). */
export function keyIdHeader(id) {
  let value = keyIdHeaders.get(id);
  if (value === undefined) {
    if (keyIdHeaders.size >= 1024) keyIdHeaders.clear();
    value = proxyKeyIdHeader(id);
    keyIdHeaders.set(id, value);
  }
  return value;
}
