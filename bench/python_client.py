"""The Python `poolswitch` 0.1.3 AsyncPoolSwitchClient on the benchmark workloads.

usage: python_client.py throughput URL KEYS_JSON CONCURRENCY N ROUNDS
       python_client.py failover URL KEYS_JSON N
Prints one JSON object. Its built-in limiter (default 50 requests/s) is lifted, so the
client itself is measured, not its throttle."""

import asyncio
import json
import sys
import time

from poolswitch import AsyncPoolSwitchClient, PoolSwitchError

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def client(url, keys):
    return AsyncPoolSwitchClient(upstream_base_url=url, keys=keys, strategy="quota_failover", rate_limit_per_second=1e9)


async def throughput(url, keys, concurrency, n, rounds):
    out = []
    async with client(url, keys) as c:
        await c.post("/v1/chat/completions", json=BODY)  # warm-up: connection pool, key pool
        for _ in range(rounds):
            sem = asyncio.Semaphore(concurrency)
            latencies = []

            async def one():
                async with sem:
                    t = time.perf_counter()
                    await c.post("/v1/chat/completions", json=BODY)
                    latencies.append((time.perf_counter() - t) * 1000)

            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            wall = time.perf_counter() - start
            latencies.sort()
            out.append({"rps": n / wall, "p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)]})
    return out


async def failover(url, keys, n):
    ok = errors = 0
    async with client(url, keys) as c:
        for _ in range(n):
            try:
                await c.post("/v1/chat/completions", json=BODY)
                ok += 1
            except PoolSwitchError:
                errors += 1
    return {"ok": ok, "errors": errors}


def main():
    mode, url, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if mode == "throughput":
        result = asyncio.run(throughput(url, keys, int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])))
    else:
        result = asyncio.run(failover(url, keys, int(sys.argv[4])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
