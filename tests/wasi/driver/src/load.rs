//! One round: a pool over three keys, round robin, no retries; 60 GETs and 60 POSTs in turn.

use serde_json::{json, Value};

wit_bindgen::generate!({
    inline: "package poolswitch:driver; world driver { import poolswitch:client/client@0.1.0; }",
    path: "../../../wit",
    world: "poolswitch:driver/driver",
    generate_all,
});

use poolswitch::client::client::Pool;
use poolswitch::client::types::{Config, KeyConfig, Response, Strategy};

pub(crate) const ROUNDS: usize = 3;
const CALLS: usize = 60;
const KEY_IDS: [&str; 3] = ["a", "b", "c"];

/// `{ run, failures: [..], keys: [[id, total, successes, errors, network errors, in flight], ..] }`
pub(crate) fn round(mock: &str, run: &str) -> Value {
    let keys = KEY_IDS
        .iter()
        .map(|id| KeyConfig {
            id: Some((*id).to_owned()),
            value: format!("sk-{run}{id}-secret"),
            monthly_quota: None,
            weight: None,
            metadata_json: None,
        })
        .collect();
    let config = Config {
        upstream_base_url: mock.to_owned(),
        keys,
        strategy: Some(Strategy::RoundRobin),
        retry_attempts: Some(0),
        cooldown_seconds: None,
        auth_header_name: None,
        auth_scheme: None,
        query_auth_param: None,
        request_timeout_ms: None,
        deadline_ms: None,
        rate_limit_per_second: None,
        retryable_methods: None,
        default_headers: Vec::new(),
        backoff_base_ms: None,
        backoff_max_ms: None,
        max_wait_ms: None,
    };
    let pool = match Pool::create(&config) {
        Ok(pool) => pool,
        Err(e) => return json!({ "run": run, "failures": [format!("create: {e:?}")], "keys": [] }),
    };
    let chat = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let json_header = [("content-type".to_owned(), "application/json".to_owned())];
    let mut failures = Vec::new();
    for i in 0..CALLS {
        let get = pool.get("/v1/models", &[]);
        let post = pool.post("/v1/chat/completions", &json_header, chat);
        for (method, result) in [("GET", get), ("POST", post)] {
            match result {
                Ok(Response { status: 200, attempts: 1, .. }) => {}
                Ok(r) => failures.push(format!("{method} {i}: status {} after {} attempts", r.status, r.attempts)),
                Err(e) => failures.push(format!("{method} {i}: {e:?}")),
            }
        }
    }
    let keys: Vec<Value> = pool
        .status()
        .keys
        .into_iter()
        .map(|k| json!([k.id, k.total_requests, k.successes, k.error_count, k.network_error_count, k.in_flight]))
        .collect();
    json!({ "run": run, "failures": failures, "keys": keys })
}
