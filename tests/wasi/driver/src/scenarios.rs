//! The scenarios. Each registers fresh keys with the mock and checks what the pool does.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

wit_bindgen::generate!({
    inline: "package poolswitch:driver; world driver { import poolswitch:client/client@0.1.0; }",
    path: "../../../wit",
    world: "poolswitch:driver/driver",
    generate_all,
});

use poolswitch::client::client::Pool;
use poolswitch::client::types::{Config, Error, KeyConfig, KeyState, Outcome, Request, Strategy};

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// A named scenario, given the mock provider's URL.
pub type Scenario = (&'static str, fn(&str) -> Check);

pub const ALL: &[Scenario] = &[
    ("round robin rotates keys in order", round_robin),
    ("quota exhausted fails over at once and cools the key", quota_failover),
    ("a rejected key leaves rotation", invalid_key),
    ("with one key, retry-after is waited out", retry_after),
    ("upstream errors and an exhausted pool are typed errors", exhausted),
    ("bad config names the field", bad_config),
    ("paths that leave the origin are refused before any call", origin_pinning),
    ("headers, query and body reach the upstream", echo),
    ("no key value in status or state", secrets),
    ("state exports and imports", state),
];

fn http(method: &str, url: &str, body: Option<String>) -> Result<Value, String> {
    wstd::runtime::block_on(async {
        let req = http::Request::builder().method(method).uri(url).header("content-type", "application/json");
        // Without content nothing is written, only `finish` (see src/component/host.rs).
        let body = match body {
            Some(text) => wstd::http::Body::from(text),
            None => wstd::http::Body::from_http_body(wstd::http::body::util::Empty::<wstd::http::body::Bytes>::new()),
        };
        let req = req.body(body).map_err(|e| e.to_string())?;
        let mut res = wstd::http::Client::new().send(req).await.map_err(|e| e.to_string())?;
        let text = res.body_mut().str_contents().await.map_err(|e| e.to_string())?.to_owned();
        serde_json::from_str(&text).map_err(|e| e.to_string())
    })
}

static RUN: AtomicU32 = AtomicU32::new(0);

/// Fresh keys at the mock: returns their configs and the prefix of their ids in its log.
fn keys(mock: &str, specs: &[(&str, Value)]) -> Result<(Vec<KeyConfig>, String), String> {
    // No process ids on WASI: the clock tells runs apart.
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let run = format!("wasi{started}x{}-", RUN.fetch_add(1, Ordering::SeqCst));
    let mut registered = serde_json::Map::new();
    let mut configs = Vec::new();
    for (id, spec) in specs {
        let value = format!("sk-{run}{id}-secret");
        let mut spec = spec.clone();
        spec["id"] = json!(format!("{run}{id}"));
        registered.insert(value.clone(), spec);
        configs.push(KeyConfig { id: Some(id.to_string()), value, monthly_quota: None, weight: None, metadata_json: None });
    }
    http("POST", &format!("{mock}/__mock/keys"), Some(Value::Object(registered).to_string()))?;
    Ok((configs, run))
}

fn calls(mock: &str, run: &str) -> Result<Vec<String>, String> {
    let all = http("GET", &format!("{mock}/__mock/calls"), None)?;
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["keyId"].as_str())
        .filter_map(|k| k.strip_prefix(run))
        .map(str::to_owned)
        .collect())
}

fn config(mock: &str, keys: Vec<KeyConfig>) -> Config {
    Config {
        upstream_base_url: mock.to_owned(),
        keys,
        strategy: None,
        retry_attempts: None,
        cooldown_seconds: None,
        auth_header_name: None,
        auth_scheme: None,
        query_auth_param: None,
        request_timeout_ms: None,
        rate_limit_per_second: None,
        retryable_methods: None,
        default_headers: Vec::new(),
        backoff_base_ms: None,
        backoff_max_ms: None,
        max_wait_ms: None,
    }
}

fn pool(c: Config) -> Result<Pool, String> {
    Pool::create(&c).map_err(|e| format!("create failed: {e:?}"))
}

fn round_robin(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({})), ("b", json!({})), ("c", json!({}))])?;
    let p = pool(Config { strategy: Some(Strategy::RoundRobin), ..config(mock, ks) })?;
    let mut served = Vec::new();
    for _ in 0..4 {
        let r = p.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
        ensure!(r.status == 200, "status {}", r.status);
        served.push(r.key_id);
    }
    ensure!(served == ["a", "b", "c", "a"], "served by {served:?}");
    let seen = calls(mock, &run)?;
    ensure!(seen == ["a", "b", "c", "a"], "provider saw {seen:?}");
    Ok(())
}

fn quota_failover(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({ "script": ["quota"] })), ("b", json!({}))])?;
    let p = pool(Config { strategy: Some(Strategy::RoundRobin), cooldown_seconds: Some(600), ..config(mock, ks) })?;
    let body = br#"{"model":"m","messages":[]}"#.to_vec();
    let r = p.post("/v1/chat/completions", &[("content-type".into(), "application/json".into())], &body).map_err(|e| format!("{e:?}"))?;
    ensure!((r.key_id.as_str(), r.attempts) == ("b", 2), "served by {} after {} attempts", r.key_id, r.attempts);
    let text = String::from_utf8_lossy(&r.body).to_string();
    ensure!(text.contains(&format!("served by {run}b")), "body {text}");
    let s = p.status();
    let a = &s.keys[0];
    ensure!(matches!(a.state, KeyState::Exhausted) && a.failover_count == 1, "key a: {a:?}");
    ensure!(a.cooldown_until.unwrap_or(0) >= a.last_used_at.unwrap_or(u64::MAX) + 599_000, "cooldown {a:?}");
    p.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
    let seen = calls(mock, &run)?;
    ensure!(seen == ["a", "b", "b"], "provider saw {seen:?}");
    Ok(())
}

fn invalid_key(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({ "script": ["invalid"] })), ("b", json!({}))])?;
    let p = pool(Config { strategy: Some(Strategy::RoundRobin), ..config(mock, ks) })?;
    for _ in 0..3 {
        let r = p.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
        ensure!(r.key_id == "b", "served by {}", r.key_id);
    }
    ensure!(calls(mock, &run)? == ["a", "b", "b", "b"], "provider saw {:?}", calls(mock, &run));
    ensure!(matches!(p.status().keys[0].state, KeyState::Invalid), "a is not invalid");
    p.set_key_enabled("a", true).map_err(|e| format!("{e:?}"))?;
    ensure!(matches!(p.status().keys[0].state, KeyState::Healthy), "a not enabled again");
    Ok(())
}

fn retry_after(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({ "script": ["rate_limit:300"] }))])?;
    let p = pool(config(mock, ks))?;
    let r = p.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
    ensure!(r.attempts == 2, "attempts {}", r.attempts);
    ensure!(calls(mock, &run)? == ["a", "a"], "calls");
    Ok(())
}

fn exhausted(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({ "script": ["bad_request", "quota"] })), ("b", json!({ "script": ["quota"] }))])?;
    let p = pool(Config { strategy: Some(Strategy::RoundRobin), cooldown_seconds: Some(600), ..config(mock, ks) })?;
    match p.get("/v1/models", &[]) {
        Err(Error::Upstream(u)) => {
            ensure!(u.status == 400 && matches!(u.outcome, Outcome::ClientError) && u.attempts == 1, "{u:?}");
            ensure!(String::from_utf8_lossy(&u.body).contains("required property"), "body");
        }
        other => return Err(format!("expected a 400: {other:?}")),
    }
    let retry_at = match p.get("/v1/models", &[]) {
        Err(Error::Upstream(u)) if matches!(u.outcome, Outcome::QuotaExhausted) => u.retry_at_ms.ok_or("no retry-at")?,
        other => return Err(format!("expected quota exhausted: {other:?}")),
    };
    match p.get("/v1/models", &[]) {
        Err(Error::NoHealthyKeys(Some(at))) => ensure!(at == retry_at, "retry at {at} vs {retry_at}"),
        other => return Err(format!("expected no healthy keys: {other:?}")),
    }
    ensure!(calls(mock, &run)?.len() == 3, "calls");
    Ok(())
}

fn bad_config(mock: &str) -> Check {
    let (ks, _) = keys(mock, &[("a", json!({}))])?;
    let cases = [
        (config(mock, vec![]), "keys"),
        (config("ftp://example.com", ks.clone()), "upstream_base_url"),
        (config(mock, [ks.clone(), ks.clone()].concat()), "keys[1].id"),
        (Config { retry_attempts: Some(1000), ..config(mock, ks.clone()) }, "retry_attempts"),
    ];
    for (c, field) in cases {
        match Pool::create(&c) {
            Err(Error::InvalidConfig(e)) => ensure!(e.field == field && !e.problem.contains("secret"), "{e:?} for {field}"),
            Err(other) => return Err(format!("{field}: {other:?}")),
            Ok(_) => return Err(format!("{field}: accepted")),
        }
    }
    Ok(())
}

fn origin_pinning(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({}))])?;
    let p = pool(config(mock, ks))?;
    for path in ["https://evil.example.net/v1", "//evil.example.net/x", "/v1/../../x"] {
        ensure!(matches!(p.get(path, &[]), Err(Error::InvalidRequest(_))), "{path} was not refused");
    }
    ensure!(calls(mock, &run)?.is_empty(), "a call reached the provider");
    Ok(())
}

fn echo(mock: &str) -> Check {
    let (ks, _) = keys(mock, &[("a", json!({}))])?;
    let c = Config {
        auth_header_name: Some("x-api-key".into()),
        auth_scheme: Some(String::new()),
        default_headers: vec![("anthropic-version".into(), "2023-06-01".into())],
        ..config(mock, ks)
    };
    let p = pool(c)?;
    let req = Request {
        method: "PUT".into(),
        path: "/v1/echo".into(),
        query: vec![("beta".into(), "1".into())],
        headers: vec![("x-trace".into(), "t".into())],
        body: Some(b"hello".to_vec()),
        timeout_ms: Some(5000),
    };
    let r = p.request(&req).map_err(|e| format!("{e:?}"))?;
    let echo: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    ensure!(echo["method"] == "PUT" && echo["body"] == "hello" && echo["query"] == json!({ "beta": "1" }), "{echo}");
    ensure!(echo["headers"]["x-trace"] == "t" && echo["headers"]["anthropic-version"] == "2023-06-01", "{echo}");
    ensure!(echo["keyId"].as_str().is_some_and(|k| k.ends_with("-a")), "{echo}");
    Ok(())
}

fn secrets(mock: &str) -> Check {
    let (ks, _) = keys(mock, &[("a", json!({ "script": ["invalid"] })), ("b", json!({}))])?;
    let values: Vec<String> = ks.iter().map(|k| k.value.clone()).collect();
    let p = pool(config(mock, ks))?;
    p.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
    let text = format!("{:?} {}", p.status(), p.export_state());
    ensure!(values.iter().all(|v| !text.contains(v.as_str())), "a key value leaked");
    Ok(())
}

fn state(mock: &str) -> Check {
    let (ks, run) = keys(mock, &[("a", json!({ "script": ["quota"] })), ("b", json!({}))])?;
    let first = pool(Config { strategy: Some(Strategy::RoundRobin), ..config(mock, ks.clone()) })?;
    first.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
    let second = pool(Config { strategy: Some(Strategy::RoundRobin), ..config(mock, ks) })?;
    second.import_state(&first.export_state()).map_err(|e| format!("{e:?}"))?;
    second.get("/v1/models", &[]).map_err(|e| format!("{e:?}"))?;
    ensure!(calls(mock, &run)? == ["a", "b", "b"], "the second pool did not know a was exhausted");
    ensure!(matches!(second.import_state("{not json"), Err(Error::InvalidConfig(_))), "bad state accepted");
    Ok(())
}
