//! Hostile input from a provider or a shared snapshot, end to end through the client on
//! virtual time: every time is capped at the horizon, nothing panics, status stays readable.

mod support;

use poolswitch::core::limits::{MAX_COUNT, TIME_HORIZON_MS};
use poolswitch::core::*;
use support::*;

const CAP: u64 = START_MS + TIME_HORIZON_MS;

/// Status and every error text of the client can be produced, and every time in it is capped.
fn assert_readable(c: &std::rc::Rc<TestClient>, now: u64) {
    let status = c.status();
    for k in &status.keys {
        assert!(k.cooldown_until.is_none_or(|t| t <= now + TIME_HORIZON_MS), "{k:?}");
        assert!(k.last_used_at.is_none_or(|t| t <= now), "{k:?}");
        for n in [k.total_requests, k.successes, k.error_count, k.failover_count, k.rate_limit_count, k.in_flight] {
            assert!(n <= MAX_COUNT, "{k:?}");
        }
    }
    assert!(status.total_requests <= MAX_COUNT && status.successes <= MAX_COUNT);
    serde_json::to_string(&status).expect("status serializes");
}

/// One key answers a 429 with these headers, then 200s; the other key always 200.
fn rate_limited_by(headers: &'static [(&'static str, &'static str)]) {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], move |call, n| {
        if call.key_id == "a" && n == 0 {
            with_headers(429, OPENAI_RATE, headers)
        } else {
            ok("{}")
        }
    });
    let mut cfg = config(&KEYS3[..2]);
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    let reply = send(&c, &time, get("/m")).unwrap();
    assert_eq!(reply.response.status, 200, "failed over to b");
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.state, a.cooldown_until), (KeyState::Cooling, Some(CAP)), "{headers:?}");
    for _ in 0..4 {
        send(&c, &time, get("/m")).unwrap();
    }
    assert_eq!(t.key_ids().iter().filter(|k| *k == "a").count(), 1, "a cooling key is not reused: {headers:?}");
    assert_readable(&c, time.now());
}

#[test]
fn huge_retry_after_cools_the_key_for_the_horizon() {
    rate_limited_by(&[("retry-after", "1e12")]);
    rate_limited_by(&[("retry-after-ms", "1e16")]);
    // 1e17 s is past u64 milliseconds: it used to wrap around and the key was reused at once.
    rate_limited_by(&[("retry-after", "1e17")]);
    rate_limited_by(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]);
}

#[test]
fn a_single_key_rate_limited_for_ages_fails_with_a_readable_error() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| with_headers(429, OPENAI_RATE, &[("retry-after", "1e12")]));
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let reply = send(&c, &time, get("/m")).unwrap();
    assert_eq!((reply.response.status, reply.retry_at_ms), (429, Some(CAP)));
    let err = send(&c, &time, get("/m")).unwrap_err();
    assert_eq!(err, PoolError::NoHealthyKeys { retry_at_ms: Some(CAP) });
    assert!(err.to_string().contains("2024-07-01T00:00:00"), "{err}");
    assert_readable(&c, time.now());
}

#[test]
fn far_resets_on_a_success_are_capped() {
    for headers in [
        &[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "99999999h")][..],
        &[("anthropic-ratelimit-requests-remaining", "0"), ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z")],
        &[("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", "99999999999999999999999999999h1s")],
        &[("ratelimit-remaining", "0"), ("ratelimit-reset", "1e300")],
    ] {
        let time = VirtualTime::new();
        let headers: Vec<(&'static str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let t = ScriptedTransport::new(&time, &KEYS3[..1], move |_, _| Answer::Respond {
            status: 200,
            headers: headers.clone(),
            body: "{}".into(),
            delay_ms: 0,
        });
        let c = shared(&config(&KEYS3[..1]), &t, &time);
        send(&c, &time, get("/m")).unwrap();
        assert_eq!(key_status(&c.status(), "a").cooldown_until, Some(CAP));
        let err = send(&c, &time, get("/m")).unwrap_err();
        assert_eq!(err, PoolError::NoHealthyKeys { retry_at_ms: Some(CAP) });
        assert!(!err.to_string().is_empty());
        assert_readable(&c, time.now());
    }
}

#[test]
fn an_http_date_before_the_epoch_is_no_wait() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, n| match n {
        0 => with_headers(429, OPENAI_RATE, &[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        _ => ok("{}"),
    });
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    assert_eq!(send(&c, &time, get("/m")).unwrap().response.status, 200);
    assert_readable(&c, time.now());
}

fn hostile_snapshot() -> PoolSnapshot {
    PoolSnapshot::from_json_text(
        r#"{"keys":[{"id":"a","totalRequests":18446744073709551615,"successes":18446744073709551615,"errors":9000000000000000,
        "cooldownUntil":9000000000000000,"cooldownReason":"rate_limited","lastUsedAt":18446744073709551615,
        "requestsResetAt":18446744073709551615,"remainingRequests":0,"tokensResetAt":9000000000000000,"remainingTokens":0}]}"#,
    )
    .expect("a snapshot of valid types")
}

#[test]
fn a_hostile_snapshot_is_clamped_on_import_and_merge() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |_, _| ok("{}"));
    let c = shared(&config(&KEYS3[..2]), &t, &time);
    c.import_state(&hostile_snapshot());
    assert_readable(&c, time.now());
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.state, a.cooldown_until, a.total_requests), (KeyState::Cooling, Some(CAP), MAX_COUNT));
    c.merge_state(&hostile_snapshot());
    c.merge_state(&hostile_snapshot());
    assert_readable(&c, time.now());
    // The other key keeps serving; counters saturate rather than wrap.
    for _ in 0..3 {
        assert_eq!(send(&c, &time, get("/m")).unwrap().key_id, "b");
    }
    assert_readable(&c, time.now());
    let exported = c.export_state();
    assert!(exported.keys.iter().all(|k| k.total_requests <= MAX_COUNT && k.cooldown_until.is_none_or(|t| t <= CAP)));
}

#[test]
fn snapshot_fields_are_checked_by_name() {
    let err = PoolSnapshot::from_json_text(r#"{"keys":[{"id":"a","cooldownUntill":5}]}"#).unwrap_err();
    assert_eq!(err.field, "keys[0].cooldownUntill");
    assert!(err.problem.contains("`cooldownUntil`"), "{err}");
    let err = PoolSnapshot::from_json_text(r#"{"keys":[{"id":"a","errors":-1}]}"#).unwrap_err();
    assert_eq!(err.field, "keys[0].errors");
    let err = PoolSnapshot::from_json_text(r#"{"keys":[{"id":"a","errors":1.5}]}"#).unwrap_err();
    assert_eq!(err.field, "keys[0].errors");
}
