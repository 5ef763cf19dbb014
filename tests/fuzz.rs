//! Property tests over every parser of outside data in the core: config (JSON values and
//! text), rate-limit and retry headers, error bodies, snapshots, key redaction and time
//! formatting. Each asserts: no panic, results bounded (times within the horizon, counters
//! within 2^53 − 1), and no key value in any error text.
//!
//! `cargo test --test fuzz` runs the default 256 cases per property. A long run:
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` (see SECURITY.md).

mod support;

use http::{HeaderMap, HeaderName, HeaderValue};
use poolswitch::core::error::format_epoch_ms;
use poolswitch::core::limits::{read_limits, LIMIT_HEADERS, MAX_COUNT, TIME_HORIZON_MS};
use poolswitch::core::secret::{redact, REDACT_ANYWHERE_LEN};
use poolswitch::core::{classify, config, limits, ApiKey, ConfigError, KeySnapshot, PoolConfig, PoolError, PoolSnapshot};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::*;

/// Field names the config knows (both spellings), a few near misses and other SDKs' names.
const CONFIG_NAMES: &[&str] = &[
    "upstream_base_url",
    "upstreamBaseUrl",
    "keys",
    "strategy",
    "retry_attempts",
    "retryAttempts",
    "cooldown_seconds",
    "cooldownSeconds",
    "auth_header_name",
    "authScheme",
    "query_auth_param",
    "requestTimeoutMs",
    "rate_limit_per_second",
    "retryableMethods",
    "default_headers",
    "backoffBaseMs",
    "backoff_max_ms",
    "maxWaitMs",
    "retryAttemps",
    "maxRetries",
    "timeout",
    "id",
    "value",
    "monthly_quota",
    "weight",
    "metadata",
];

/// Every key value generated carries this marker, so a leak is found by searching for it.
const MARK: &str = "SECRETKEY";

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u64..200).prop_map(Value::from),
        Just(json!(9e15)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        "[ -~]{0,12}".prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
        prop::sample::select(vec!["round_robin", "weighted", "https://api.example.com/v1", "ftp://x", "GET", "Bearer", "x-api-key"])
            .prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// Any JSON value, nested up to 6 levels, with object keys drawn mostly from the config's names.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![prop::sample::select(CONFIG_NAMES).prop_map(str::to_owned), "[a-zA-Z_]{1,10}"], inner),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A key as a config may give it: a marked string, a marked number, or an object around one.
fn key_entry() -> impl Strategy<Value = (Value, String)> {
    prop_oneof![
        "[!-~]{0,20}".prop_map(|s| {
            let v = format!("{MARK}{s}");
            (Value::String(v.clone()), v)
        }),
        "\\PC{0,6}".prop_map(|s| {
            let v = format!("{MARK}{s}");
            (Value::String(v.clone()), v)
        }),
        (10_000_000_000u64..u64::MAX).prop_map(|n| (Value::from(n), n.to_string())),
        ("[!-~]{1,10}", json_value(), json_value()).prop_map(|(s, extra, meta)| {
            let v = format!("{MARK}{s}");
            (json!({"id": "k", "value": v, "weight": extra, "metadata": meta}), v)
        }),
        (10_000_000_000u64..u64::MAX, json_value()).prop_map(|(n, extra)| (json!({"value": n, "monthlyQuota": extra}), n.to_string())),
    ]
}

/// A config object: mostly the right fields with any values, plus stray ones.
fn config_value() -> impl Strategy<Value = (Value, Vec<String>)> {
    (
        prop::collection::vec(key_entry(), 0..4),
        prop::collection::vec((prop::sample::select(CONFIG_NAMES), json_value()), 0..6),
        any::<bool>(),
    )
        .prop_map(|(keys, fields, with_base)| {
            let secrets = keys.iter().map(|(_, s)| s.clone()).collect();
            let mut o = Map::new();
            if with_base {
                o.insert("upstreamBaseUrl".into(), json!("https://api.example.com/v1"));
            }
            o.insert("keys".into(), Value::Array(keys.into_iter().map(|(v, _)| v).collect()));
            for (name, value) in fields {
                o.insert(name.to_owned(), value);
            }
            (Value::Object(o), secrets)
        })
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "key {s:?} leaked into {text:?}");
    }
    assert!(!text.contains(MARK), "a key leaked into {text:?}");
}

fn check_config(value: &Value, secrets: &[String]) {
    let parsed = serde_path_to_error::deserialize::<_, PoolConfig>(value).map_err(ConfigError::from_serde);
    let valid = parsed.and_then(|c| c.validate());
    match valid {
        Ok(c) => {
            assert!(c.retry_attempts <= 100 && c.cooldown_ms <= 366 * 24 * 3600 * 1000 && c.max_wait_ms <= 3_600_000);
            assert!(c.keys.iter().all(|k| k.value.expose().bytes().all(|b| b.is_ascii_graphic())));
            assert!(c.keys.iter().all(|k| k.monthly_quota.is_none_or(|q| q <= MAX_COUNT)));
            assert_no_secret(&format!("{c:?}"), secrets);
        }
        Err(e) => assert_no_secret(&format!("{e} {e:?}"), secrets),
    }
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,30}",
        "-?[0-9]{0,20}\\.?[0-9]{0,10}([eE][-+]?[0-9]{1,3})?",
        "([0-9]{1,12}(\\.[0-9]{1,4})?(h|m|s|ms|us|ns|µs)){1,4}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        "(Mon|Thu|Fri|Sun), [0-9]{2} (Jan|Feb|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        "[ -~]{0,80}",
        Just("1e17".to_owned()),
        Just("99999999h".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
    ]
}

fn header_map() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((prop::sample::select(LIMIT_HEADERS), header_value()), 0..8).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(HeaderName::from_static(name), v);
            }
        }
        h
    })
}

fn now_ms() -> impl Strategy<Value = u64> {
    prop_oneof![Just(START_MS), any::<u64>(), 0u64..4_000_000_000_000, Just(u64::MAX)]
}

fn assert_limits_bounded(l: &limits::LimitsReport, now: u64) {
    let cap = now.saturating_add(TIME_HORIZON_MS);
    assert!(l.remaining_requests.is_none_or(|n| n <= MAX_COUNT) && l.remaining_tokens.is_none_or(|n| n <= MAX_COUNT), "{l:?}");
    assert!(l.retry_after_ms.is_none_or(|d| d <= TIME_HORIZON_MS), "{l:?}");
    assert!(l.requests_reset_at.is_none_or(|t| t <= cap), "{l:?}");
    assert!(l.tokens_reset_at.is_none_or(|t| t <= cap), "{l:?}");
}

fn error_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        json_value().prop_map(|v| json!({"error": v}).to_string().into_bytes()),
        (json_value(), header_value()).prop_map(|(v, d)| {
            json!({"error": {"code": 429, "message": v, "details": [{"retryDelay": d, "reason": "RATE_LIMIT_EXCEEDED", "violations": [{"quotaId": "PerDay"}]}]}})
                .to_string()
                .into_bytes()
        }),
        (1usize..200_000, prop::sample::select(vec!["[", "{\"error\":", "{\"a\":["])).prop_map(|(n, open)| open.repeat(n).into_bytes()),
    ]
}

fn snapshot() -> impl Strategy<Value = PoolSnapshot> {
    let opt = || prop::option::of(any::<u64>());
    let key = (
        prop::sample::select(vec!["a", "b", "nope"]),
        prop::array::uniform6(any::<u64>()),
        (opt(), opt(), opt(), opt(), opt(), opt()),
        prop::option::of(prop::sample::select(vec!["rate_limited", "quota_exhausted", "invalid_key", "weird"])),
        any::<bool>(),
        prop::option::of("\\PC{0,300}"),
    )
        .prop_map(|(id, c, t, reason, invalid, last_error)| KeySnapshot {
            id: id.to_owned(),
            total_requests: c[0],
            successes: c[1],
            errors: c[2],
            failovers: c[3],
            rate_limits: c[4],
            stream_errors: c[5],
            cooldown_until: t.0,
            cooldown_reason: reason.map(str::to_owned),
            invalid,
            remaining_requests: t.1,
            requests_reset_at: t.2,
            remaining_tokens: t.3,
            tokens_reset_at: t.4,
            last_used_at: t.5,
            last_error,
            limits_observed_at: t.3,
            month: t.4.map(|m| m as u32),
            month_successes: c[1],
        });
    prop::collection::vec(key, 0..4).prop_map(|keys| PoolSnapshot { keys })
}

proptest! {
    #[test]
    fn config_values_never_panic_nor_leak((value, secrets) in config_value()) {
        check_config(&value, &secrets);
        // The same value as JSON text.
        let text = value.to_string();
        match PoolConfig::from_json(&text).and_then(|c| c.validate()) {
            Ok(_) => {}
            Err(e) => assert_no_secret(&format!("{e} {e:?}"), &secrets),
        }
    }

    #[test]
    fn config_text_never_panics(text in "\\PC{0,200}", deep in 0usize..3000) {
        let _ = PoolConfig::from_json(&text);
        let nested = format!(r#"{{"upstreamBaseUrl":"https://x.com","keys":[{{"value":"k","metadata":{{"a":{}1{}}}}}]}}"#, "[".repeat(deep), "]".repeat(deep));
        let result = PoolConfig::from_json(&nested).and_then(|c| c.validate());
        prop_assert_eq!(result.is_ok(), deep < config::METADATA_MAX_DEPTH);
    }

    #[test]
    fn limit_headers_are_bounded(h in header_map(), now in now_ms()) {
        assert_limits_bounded(&read_limits(&h, now), now);
    }

    #[test]
    fn error_bodies_classify_within_bounds(status in 100u16..1000, h in header_map(), body in error_body(), now in now_ms()) {
        let c = classify(status, &h, &body, now);
        assert_limits_bounded(&c.limits, now);
    }

    #[test]
    fn snapshots_are_clamped_on_import_and_merge(first in snapshot(), second in snapshot(), advance in 0u64..100_000_000) {
        let time = VirtualTime::new();
        let t = ScriptedTransport::new(&time, &KEYS3[..2], |_, _| ok("{}"));
        let c = shared(&config(&KEYS3[..2]), &t, &time);
        c.import_state(&first);
        c.merge_state(&second);
        c.merge_state(&second);
        time.advance(advance);
        let status = c.status();
        let now = time.now();
        for k in &status.keys {
            prop_assert!(k.cooldown_until.is_none_or(|t| t <= START_MS + TIME_HORIZON_MS), "{:?}", k);
            prop_assert!(k.last_used_at.is_none_or(|t| t <= now));
            for n in [k.total_requests, k.successes, k.error_count, k.failover_count, k.rate_limit_count, k.stream_error_count] {
                prop_assert!(n <= MAX_COUNT);
            }
        }
        prop_assert!(status.total_requests <= MAX_COUNT);
        serde_json::to_string(&status).unwrap();
        // The pool still serves or fails with a readable error.
        match send(&c, &time, get("/m")) {
            Ok(reply) => prop_assert_eq!(reply.response.status, 200),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        // A snapshot round-trips through JSON text and stays within the bounds.
        let text = serde_json::to_string(&c.export_state()).unwrap();
        let back = PoolSnapshot::from_json_text(&text).unwrap();
        for k in &back.keys {
            for n in [k.total_requests, k.successes, k.errors, k.failovers, k.rate_limits, k.stream_errors] {
                prop_assert!(n <= MAX_COUNT, "{:?}", k);
            }
            prop_assert!(k.remaining_requests.is_none_or(|n| n <= MAX_COUNT) && k.remaining_tokens.is_none_or(|n| n <= MAX_COUNT));
        }
    }

    #[test]
    fn snapshot_text_never_panics(value in json_value()) {
        let wrapped = json!({"keys": [value.clone()]}).to_string();
        let _ = PoolSnapshot::from_json_text(&wrapped);
        let _ = PoolSnapshot::from_json_text(&value.to_string());
    }

    #[test]
    fn redaction_removes_every_key(text in "\\PC{0,60}", keys in prop::collection::vec("[!-~]{1,12}", 1..4), at in 0usize..60) {
        let keys: Vec<ApiKey> = keys.into_iter().map(ApiKey::new).collect();
        // Put the first key into the text as a whole token.
        let cut = (0..=at.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let text = format!("{} {} {}", &text[..cut], keys[0].expose(), &text[cut..]);
        let out = redact(&text, &keys);
        for k in &keys {
            let k = k.expose();
            if k.chars().count() >= REDACT_ANYWHERE_LEN {
                prop_assert!(!out.contains(k), "{} still in {}", k, out);
            }
        }
        // A whole-token key is gone from its place (one of the keys may contain another).
        let first = keys[0].expose();
        let overlapping = keys.iter().skip(1).any(|k| k.expose().contains(first) || first.contains(k.expose()));
        prop_assert!(overlapping || !out.contains(&format!(" {first} ")), "{:?} in {:?}", first, out);
    }

    #[test]
    fn any_time_formats(ms in any::<u64>()) {
        let text = format_epoch_ms(ms);
        prop_assert!(text.starts_with(|c: char| c.is_ascii_digit()));
        let err = PoolError::NoHealthyKeys { retry_at_ms: Some(ms) };
        prop_assert!(err.to_string().contains(&ms.to_string()));
    }
}
