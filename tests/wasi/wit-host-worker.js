// The worker of wit-host.js: runs the host process, writes each call to its stdin and hands each
// answer line back through the port, raising the flag the caller waits on.
import { parentPort, workerData } from "node:worker_threads";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const { command, args, flag, port } = workerData;
const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
let ready = false;

function answer(line) {
  port.postMessage(line);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

createInterface({ input: child.stdout }).on("line", (line) => {
  if (!ready) {
    ready = true;
    parentPort.postMessage(JSON.parse(line).ready ? { ready: true } : { error: `unexpected first line: ${line}` });
  } else {
    answer(line);
  }
});
child.once("exit", (code, signal) => {
  const error = `the host process exited (${signal ?? code})`;
  if (!ready) parentPort.postMessage({ error });
  else answer(JSON.stringify({ trap: error }));
});
// A line is one call; null stops the host.
parentPort.on("message", (line) => {
  if (line !== null) return child.stdin.write(`${line}\n`);
  child.removeAllListeners("exit");
  child.once("exit", () => process.exit(0));
  child.stdin.end();
});
