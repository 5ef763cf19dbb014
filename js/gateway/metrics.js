// Prometheus text exposition of the pool: counters fed by pool events, gauges read from status.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const label = (v) => String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export class Metrics {
  #requests = new Map(); // "key|outcome" -> count
  #failovers = new Map(); // reason -> count
  #latency = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };

  /** Pool event listener. */
  onEvent = (e) => {
    if (e.type === "success") {
      const outcome = e.status < 400 ? "success" : `status_${e.status}`;
      this.#bump(this.#requests, `${e.keyId}|${outcome}`);
      this.#observe(e.elapsedMs / 1000);
    } else if (e.type === "failover") {
      this.#bump(this.#requests, `${e.fromKeyId}|${e.reason}`);
      this.#bump(this.#failovers, e.reason);
    }
  };

  #bump(map, k) {
    map.set(k, (map.get(k) ?? 0) + 1);
  }

  #observe(seconds) {
    BUCKETS.forEach((b, i) => seconds <= b && this.#latency.counts[i]++);
    this.#latency.sum += seconds;
    this.#latency.count++;
  }

  /** The exposition text for `status` (the pool's status()). */
  render(status) {
    const out = [];
    out.push("# HELP poolswitch_requests_total Requests answered, by key and outcome.", "# TYPE poolswitch_requests_total counter");
    for (const [k, v] of this.#requests) {
      const [key, outcome] = k.split("|");
      out.push(`poolswitch_requests_total{key="${label(key)}",outcome="${label(outcome)}"} ${v}`);
    }
    out.push("# HELP poolswitch_failovers_total Failovers to another key, by reason.", "# TYPE poolswitch_failovers_total counter");
    for (const [reason, v] of this.#failovers) out.push(`poolswitch_failovers_total{reason="${label(reason)}"} ${v}`);
    out.push("# HELP poolswitch_key_upstream_requests_total Upstream calls per key.", "# TYPE poolswitch_key_upstream_requests_total counter");
    for (const k of status.keys) out.push(`poolswitch_key_upstream_requests_total{key="${label(k.id)}"} ${k.totalRequests}`);
    out.push("# HELP poolswitch_key_cooling Whether a key is resting (1) or not (0), by state.", "# TYPE poolswitch_key_cooling gauge");
    for (const k of status.keys) out.push(`poolswitch_key_cooling{key="${label(k.id)}",state="${k.state}"} ${k.state === "healthy" ? 0 : 1}`);
    out.push("# HELP poolswitch_key_estimated_remaining_quota Requests the key has left, when known.", "# TYPE poolswitch_key_estimated_remaining_quota gauge");
    for (const k of status.keys) if (k.estimatedRemainingQuota !== null) out.push(`poolswitch_key_estimated_remaining_quota{key="${label(k.id)}"} ${k.estimatedRemainingQuota}`);
    out.push("# HELP poolswitch_request_duration_seconds Time from request to upstream answer, failovers included.", "# TYPE poolswitch_request_duration_seconds histogram");
    BUCKETS.forEach((b, i) => out.push(`poolswitch_request_duration_seconds_bucket{le="${b}"} ${this.#latency.counts[i]}`));
    out.push(`poolswitch_request_duration_seconds_bucket{le="+Inf"} ${this.#latency.count}`);
    out.push(`poolswitch_request_duration_seconds_sum ${this.#latency.sum}`, `poolswitch_request_duration_seconds_count ${this.#latency.count}`);
    return `${out.join("\n")}\n`;
  }
}
