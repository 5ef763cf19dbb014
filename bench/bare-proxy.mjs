// The baseline for proxy mode: a bare node:http reverse proxy with keep-alive that puts one of
// the keys (in turn) on each request. No pool, no failover, no checks.
// Usage: node bench/bare-proxy.mjs <port> <upstream base URL> <key,key,…>  (prints READY <url>)
import http from "node:http";

const [, , port, upstream, keys] = process.argv;
const up = new URL(upstream);
const list = keys.split(",");
const agent = new http.Agent({ keepAlive: true });
let next = 0;
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, host: up.host, authorization: `Bearer ${list[next++ % list.length]}` };
  const out = http.request({ agent, hostname: up.hostname, port: up.port, path: req.url, method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  out.on("error", () => res.headersSent ? res.destroy() : res.writeHead(502).end());
  req.pipe(out);
});
server.listen(Number(port), "127.0.0.1", () => console.log(`READY http://127.0.0.1:${server.address().port}`));
