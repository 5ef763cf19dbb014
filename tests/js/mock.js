// Starts the mock provider in its own process (as the benchmarks and WASI tests need too).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Spawns `js/mock-provider.js` on a free loopback port; resolves to { url, stop }. */
export function startMock(args = []) {
  const child = spawn(process.execPath, [`${ROOT}/js/mock-provider.js`, "--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buffered = "";
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`mock provider exited with ${code}`)));
    child.stdout.on("data", (d) => {
      buffered += d;
      const m = buffered.match(/READY (\S+)/);
      if (m) {
        child.removeAllListeners("exit");
        resolve({
          url: m[1],
          stop: () => new Promise((done) => {
            child.once("exit", done);
            child.kill("SIGTERM");
          }),
        });
      }
    });
  });
}

export { ROOT };
