// The load generator for proxy comparisons: node:http with keep-alive (fetch in the generator
// would cost more than some of the proxies it measures). One function per target.
import http from "node:http";

/** A function that POSTs `body` to `base + path` and resolves once the whole answer is read. */
export function httpPoster(base, path, headers, body) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const { hostname, port } = new URL(base);
  const payload = Buffer.from(body);
  const all = { ...headers, "content-length": String(payload.length) };
  const post = (resolve, reject, retry) => {
    const req = http.request({ agent, hostname, port, path, method: "POST", headers: all }, (res) => {
      res.on("data", () => {});
      res.once("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${base} answered ${res.statusCode}`))));
      res.once("error", reject);
    });
    req.on("error", (e) => {
      // A kept-alive socket the server closed while idle (between rounds) is sent on once
      // more, as Node's docs advise (request.reusedSocket).
      if (retry && req.reusedSocket && e.code === "ECONNRESET") post(resolve, reject, false);
      else reject(e);
    });
    req.end(payload);
  };
  return () => new Promise((resolve, reject) => post(resolve, reject, true));
}
