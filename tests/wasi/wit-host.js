// A WASI host in another process (tests/wasi/python_host.py: Wasmtime embedded in Python), called
// synchronously and shaped like jco's bindings (`client.Pool.create(config)`, methods on the pool,
// a WIT error thrown with `payload`), so one mapping (wit-api.js) drives both hosts. The host's
// calls block like jco's do: a worker thread talks to the process, the caller waits on an Atomics
// flag with a deadline.
import { Worker, MessageChannel, receiveMessageOnPort } from "node:worker_threads";

const kebab = (s) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

// Wire values: u64 as numbers, list<u8> as base64 (see python_host.py).
const replacer = (_, v) => (typeof v === "bigint" ? Number(v) : v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString("base64") } : v);
const reviver = (_, v) => (v && typeof v === "object" && typeof v.$bytes === "string" ? new Uint8Array(Buffer.from(v.$bytes, "base64")) : v);

/** Starts `command args...` (a host speaking python_host.py's protocol); resolves to { client, stop }. */
export async function startHost(command, args, { callTimeoutMs = 120_000, startTimeoutMs = 120_000 } = {}) {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL("./wit-host-worker.js", import.meta.url), { workerData: { command, args, flag, port: port2 }, transferList: [port2] });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command}: not ready within ${startTimeoutMs} ms`)), startTimeoutMs);
    worker.once("message", (m) => (clearTimeout(timer), m.ready ? resolve() : reject(new Error(m.error))));
    worker.once("error", (e) => (clearTimeout(timer), reject(e)));
  });

  function call(name, args) {
    Atomics.store(flag, 0, 0);
    worker.postMessage(JSON.stringify({ call: name, args }, replacer));
    if (Atomics.wait(flag, 0, 0, callTimeoutMs) === "timed-out") throw new Error(`${name}: no answer from the host within ${callTimeoutMs} ms`);
    const reply = JSON.parse(receiveMessageOnPort(port1).message, reviver);
    if (reply.trap !== undefined) throw new Error(`${name}: the host failed: ${reply.trap}`);
    if ("err" in reply) throw Object.assign(new Error(`${name} returned an error`), { payload: reply.err });
    return reply.ok;
  }

  const pool = (resource) =>
    new Proxy({}, { get: (_, method) => (typeof method === "string" ? (...args) => call(`[method]pool.${kebab(method)}`, [resource, ...args]) : undefined) });
  const client = { Pool: { create: (config) => pool(call("[static]pool.create", [config])) } };
  const stop = () => new Promise((resolve) => (worker.once("exit", resolve), worker.postMessage(null)));
  return { client, stop };
}
