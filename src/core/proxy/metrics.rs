//! Prometheus text exposition (format 0.0.4) of the pool, rendered from its status alone, so
//! both gateways give the same series: the WASI gateway runs every request in a fresh
//! instance and has nothing but the status it reloads from its state file.
//!
//! Every key has one series per metric, and one `poolswitch_key_state` series per possible
//! state (1 for the state it is in), so a change of state never ends one series and starts
//! another.

use std::fmt::Write;

use serde_json::Value;

/// The states a key can be in, as status reports them.
pub const KEY_STATES: [&str; 5] = ["healthy", "cooling", "exhausted", "invalid", "disabled"];

/// Per-key numbers taken from status: (metric, status field, type, help).
const PER_KEY: [(&str, &str, &str, &str); 9] = [
    ("poolswitch_key_requests_total", "totalRequests", "counter", "Upstream attempts made with the key."),
    ("poolswitch_key_successes_total", "successes", "counter", "Attempts the provider answered without a fault of the key."),
    ("poolswitch_key_errors_total", "errorCount", "counter", "Attempts that failed (rate limits, quota, auth, 5xx, network)."),
    ("poolswitch_key_failovers_total", "failoverCount", "counter", "Times a request moved from the key to another."),
    ("poolswitch_key_rate_limits_total", "rateLimitCount", "counter", "Rate-limit answers (429) on the key."),
    ("poolswitch_key_network_errors_total", "networkErrorCount", "counter", "Attempts on the key that got no answer."),
    ("poolswitch_key_stream_errors_total", "streamErrorCount", "counter", "Streams on the key that broke off or carried an error."),
    ("poolswitch_key_in_flight", "inFlight", "gauge", "Attempts on the key now in flight."),
    ("poolswitch_key_remaining_quota", "estimatedRemainingQuota", "gauge", "Requests the key has left, when known."),
];

/// A label value escaped per the exposition format: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn number(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

/// The exposition text for a pool status, as status serializes it (camelCase fields). Missing
/// or non-numeric fields are left out, never guessed.
pub fn render_metrics(status: &Value) -> String {
    let mut out = String::new();
    let keys: &[Value] = status.get("keys").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let ids: Vec<String> = keys.iter().map(|k| escape_label(k.get("id").and_then(Value::as_str).unwrap_or(""))).collect();

    family(&mut out, "poolswitch_keys", "gauge", "Keys in the pool.");
    let _ = writeln!(out, "poolswitch_keys {}", keys.len());
    family(&mut out, "poolswitch_healthy_keys", "gauge", "Keys ready to serve now.");
    let _ = writeln!(out, "poolswitch_healthy_keys {}", number(status.get("healthyKeys")).unwrap_or(0));

    for (metric, field, kind, help) in PER_KEY {
        family(&mut out, metric, kind, help);
        for (key, id) in keys.iter().zip(&ids) {
            if let Some(n) = number(key.get(field)) {
                let _ = writeln!(out, "{metric}{{key=\"{id}\"}} {n}");
            }
        }
    }

    family(&mut out, "poolswitch_key_state", "gauge", "1 for the state the key is in, 0 for the others.");
    for (key, id) in keys.iter().zip(&ids) {
        let state = key.get("state").and_then(Value::as_str).unwrap_or("");
        for s in KEY_STATES {
            let _ = writeln!(out, "poolswitch_key_state{{key=\"{id}\",state=\"{s}\"}} {}", u8::from(s == state));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("team|blue"), "team|blue");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label("été"), "été");
    }

    #[test]
    fn one_series_per_key_and_state() {
        let status = json!({
            "healthyKeys": 1,
            "keys": [
                { "id": "team|blue", "state": "healthy", "totalRequests": 3, "successes": 2, "errorCount": 1, "failoverCount": 1,
                  "rateLimitCount": 0, "networkErrorCount": 0, "streamErrorCount": 0, "inFlight": 0, "estimatedRemainingQuota": null },
                { "id": "q\"\\\n", "state": "cooling", "totalRequests": 1, "estimatedRemainingQuota": 7 }
            ]
        });
        let text = render_metrics(&status);
        assert!(text.contains("poolswitch_keys 2\n"));
        assert!(text.contains("poolswitch_key_requests_total{key=\"team|blue\"} 3\n"));
        assert!(text.contains("poolswitch_key_requests_total{key=\"q\\\"\\\\\\n\"} 1\n"));
        assert!(text.contains("poolswitch_key_remaining_quota{key=\"q\\\"\\\\\\n\"} 7\n"));
        assert!(!text.contains("poolswitch_key_remaining_quota{key=\"team|blue\"}"), "unknown quota is left out");
        assert!(text.contains("poolswitch_key_state{key=\"team|blue\",state=\"healthy\"} 1\n"));
        assert!(text.contains("poolswitch_key_state{key=\"team|blue\",state=\"cooling\"} 0\n"));
        assert!(text.contains("poolswitch_key_state{key=\"q\\\"\\\\\\n\",state=\"cooling\"} 1\n"));
        assert_eq!(text.matches("poolswitch_key_state{").count(), 10);
        // Every sample line is `name{labels} value` or `name value`: no raw line feed inside a label.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("poolswitch_"), "{line}");
        }
    }

    #[test]
    fn a_status_without_keys_still_renders() {
        let text = render_metrics(&json!({}));
        assert!(text.contains("poolswitch_keys 0\n") && text.contains("poolswitch_healthy_keys 0\n"));
    }
}
