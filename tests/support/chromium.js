// Headless Chromium for the browser tests (Debian's chromium, driven by playwright-core), and
// the loopback static server its pages load from.
import http from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html", ".wasm": "application/wasm", ".json": "application/json" };

/** Launches headless Chromium (`CHROMIUM_PATH`, else /usr/bin/chromium), quiet and offline. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * Serves files on 127.0.0.1 from `mounts` (`{ urlPrefix: dir }`, the first matching prefix wins;
 * a bare directory path serves `index`). Resolves to { url, requested, close }: `requested`
 * lists the decoded paths asked for.
 */
export async function serveFiles(mounts, index = "index.html") {
  const requested = [];
  const site = http.createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requested.push(path);
    const [prefix, dir] = Object.entries(mounts).find(([p]) => path.startsWith(p)) ?? [];
    if (!dir) return res.writeHead(404).end();
    const file = normalize(join(dir, path.slice(prefix.length) || index));
    if (!file.startsWith(dir)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${site.address().port}`, requested, close: () => site.close() };
}
