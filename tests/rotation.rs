//! The request loop (the async driver, `PoolClient`) against a scripted provider on virtual
//! time: what the scenario list (tests/scenarios/scenarios.json) cannot say with real short
//! waits on every host (hours of cooldown, exact sleeps, recovery, snapshots), and the driver's
//! own duties. Plain rotation and failover are in the list, not here.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use http::{HeaderName, HeaderValue, Method};
use poolswitch::core::*;
use support::*;

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn least_used_prefers_the_key_with_fewest_requests() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| ok("{}"));
    let mut cfg = config(&KEYS3);
    cfg.strategy = Strategy::LeastUsed;
    let c = shared(&cfg, &t, &time);
    // Pre-load key a with history from another instance.
    c.merge_state(&PoolSnapshot { keys: vec![KeySnapshot { id: "a".into(), total_requests: 5, successes: 5, ..Default::default() }] });
    for _ in 0..4 {
        send(&c, &time, get("/models")).unwrap();
    }
    assert_eq!(t.key_ids(), ids(&["b", "c", "b", "c"]));
}

#[test]
fn random_and_weighted_spread_over_keys() {
    for (strategy, weights) in [(Strategy::Random, [1, 1, 1]), (Strategy::Weighted, [1, 3, 6])] {
        let time = VirtualTime::new();
        let t = ScriptedTransport::new(&time, &KEYS3, |_, _| ok("{}"));
        let mut cfg = config(&KEYS3);
        cfg.strategy = strategy;
        for (k, w) in cfg.keys.iter_mut().zip(weights) {
            k.weight = Some(w);
        }
        let c = shared(&cfg, &t, &time);
        for _ in 0..1000 {
            send(&c, &time, get("/m")).unwrap();
        }
        let total: u32 = weights.iter().sum();
        for ((id, _), w) in KEYS3.iter().zip(weights) {
            let n = t.key_ids().iter().filter(|k| k == id).count() as f64;
            let expected = 1000.0 * w as f64 / total as f64;
            assert!((n - expected).abs() < expected * 0.25 + 15.0, "{strategy:?}: key {id} got {n}, expected ~{expected}");
        }
    }
}

#[test]
fn quota_failover_prefers_most_remaining_quota() {
    let time = VirtualTime::new();
    // Each key reports its remaining requests; b has the most.
    let t = ScriptedTransport::new(&time, &KEYS3, |call, _| {
        let remaining = match call.key_id.as_str() {
            "a" => "10",
            "b" => "500",
            _ => "50",
        };
        with_headers(200, "{}", &[("x-ratelimit-remaining-requests", remaining), ("x-ratelimit-reset-requests", "1h")])
    });
    let c = shared(&config(&KEYS3), &t, &time);
    for _ in 0..6 {
        send(&c, &time, get("/m")).unwrap();
    }
    // Unknown keys count as plenty, so each is tried once; then b wins on its word.
    assert_eq!(t.key_ids()[3..], ids(&["b", "b", "b"]));
    assert_eq!(key_status(&c.status(), "b").estimated_remaining_quota, Some(500));
}

#[test]
fn monthly_quota_feeds_the_estimate_and_the_choice() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |_, _| ok("{}"));
    let mut cfg = config(&KEYS3[..2]);
    cfg.keys[0].monthly_quota = Some(2);
    cfg.keys[1].monthly_quota = Some(100);
    let c = shared(&cfg, &t, &time);
    send(&c, &time, get("/m")).unwrap();
    assert_eq!(t.key_ids(), ids(&["b"]));
    assert_eq!(key_status(&c.status(), "b").estimated_remaining_quota, Some(99));
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(2));
}

#[test]
fn monthly_quota_counts_this_utc_month_and_survives_a_snapshot() {
    let time = VirtualTime::new(); // 2024-06-01T00:00:00Z
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"));
    let mut cfg = config(&KEYS3[..1]);
    cfg.keys[0].monthly_quota = Some(10);
    let c = shared(&cfg, &t, &time);
    for _ in 0..3 {
        send(&c, &time, get("/m")).unwrap();
    }
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(7));
    let snap = c.export_state();
    assert_eq!((snap.keys[0].month, snap.keys[0].month_successes), (Some(202_406), 3));

    // A restarted instance picks the month's use up from the snapshot.
    let restarted = shared(&cfg, &t, &time);
    restarted.import_state(&snap);
    assert_eq!(key_status(&restarted.status(), "a").estimated_remaining_quota, Some(7));

    // July starts over; June's use no longer counts, and a June delta does not add to July.
    time.advance(30 * 86_400_000);
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(10));
    send(&c, &time, get("/m")).unwrap();
    c.merge_state(&snap);
    let a = c.export_state().keys.remove(0);
    assert_eq!((a.month, a.month_successes, a.successes), (Some(202_407), 1, 7));
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(9));
}

#[test]
fn merged_limits_take_the_newest_report() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| {
        with_headers(200, "{}", &[("x-ratelimit-remaining-requests", "3"), ("x-ratelimit-reset-requests", "1h")])
    });
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    send(&c, &time, get("/m")).unwrap();
    let older = KeySnapshot {
        id: "a".into(),
        remaining_requests: Some(1),
        requests_reset_at: Some(START_MS + 3_600_000),
        limits_observed_at: Some(START_MS - 1),
        ..Default::default()
    };
    c.merge_state(&PoolSnapshot { keys: vec![older.clone()] });
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(3));
    time.advance(10);
    let newer = KeySnapshot { remaining_requests: Some(50), limits_observed_at: Some(START_MS + 10), ..older };
    c.merge_state(&PoolSnapshot { keys: vec![newer] });
    assert_eq!(key_status(&c.status(), "a").estimated_remaining_quota, Some(50));
}

#[test]
fn injects_bearer_header_and_replaces_the_callers_own() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"));
    let mut cfg = config(&KEYS3[..1]);
    cfg.default_headers.insert("x-client".into(), "poolswitch".into());
    let c = shared(&cfg, &t, &time);
    let req = post("/chat").with_header(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer dummy"));
    send(&c, &time, req).unwrap();
    let call = &t.calls()[0];
    assert_eq!(call.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(call.headers["authorization"], "Bearer sk-aaa-secret");
    assert_eq!(call.headers["x-client"], "poolswitch");
    assert_eq!(call.url, "https://api.example.com/v1/chat");
    assert_eq!(call.body, br#"{"model":"m"}"#);
}

/// One key sent raw in `x-api-key` (Anthropic style), read back by the scripted provider.
fn raw_header_pool(time: &VirtualTime) -> (ScriptedTransport, Rc<TestClient>) {
    let t = ScriptedTransport::new(time, &KEYS3[..1], |_, _| ok("{}"))
        .reading_key(|h, _| h.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
    let mut cfg = config(&KEYS3[..1]);
    cfg.auth_header_name = "x-api-key".into();
    cfg.auth_scheme = None;
    let c = shared(&cfg, &t, time);
    (t, c)
}

#[test]
fn raw_header_and_query_auth() {
    let time = VirtualTime::new();
    let (t, c) = raw_header_pool(&time);
    send(&c, &time, get("/messages")).unwrap();
    assert_eq!(t.calls()[0].key_id, "a");
    assert!(t.calls()[0].headers.get("authorization").is_none());

    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"))
        .reading_key(|_, url| url.split_once("key=").map(|(_, k)| k.split('&').next().unwrap_or_default().to_owned()));
    let mut cfg = config(&KEYS3[..1]);
    cfg.query_auth_param = Some("key".into());
    let c = shared(&cfg, &t, &time);
    let mut req = get("/models/gemini:generateContent?key=callers-own");
    req.query.push(("alt".into(), "sse".into()));
    send(&c, &time, req).unwrap();
    let call = &t.calls()[0];
    assert_eq!(call.key_id, "a");
    assert_eq!(call.url, "https://api.example.com/v1/models/gemini:generateContent?alt=sse&key=sk-aaa-secret");
    assert!(call.headers.get("authorization").is_none());
}

// Failing over at once, the key's state and the failover event are in the scenario list
// ("quota_exhausted fails over at once and cools the key for cooldownSeconds"); here the driver
// takes no sleep for it, and the key comes back after a cooldown no real-time host can wait out.
#[test]
fn an_exhausted_key_returns_after_cooldown_seconds_through_the_async_driver() {
    let time = VirtualTime::new();
    let t =
        ScriptedTransport::new(&time, &KEYS3, |call, _| if call.key_id == "a" { status(429, OPENAI_QUOTA) } else { ok(r#"{"ok":true}"#) });
    let mut cfg = config(&KEYS3);
    cfg.strategy = Strategy::RoundRobin;
    cfg.cooldown_seconds = 600;
    let c = shared(&cfg, &t, &time);
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = events.clone();
    c.set_listener(Some(Rc::new(move |e: &PoolEvent| sink.borrow_mut().push(e.clone()))));

    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.key_id.as_str(), reply.attempts), (200, "b", 2));
    assert_eq!(time.elapsed(), 0, "failover after a key fault must not sleep");
    assert_eq!(key_status(&c.status(), "a").cooldown_until, Some(START_MS + 600_000));

    for _ in 0..4 {
        send(&c, &time, post("/chat")).unwrap();
    }
    assert_eq!(t.key_ids().iter().filter(|k| *k == "a").count(), 1, "an exhausted key is skipped");

    time.advance(600_000);
    send(&c, &time, post("/chat")).unwrap();
    send(&c, &time, post("/chat")).unwrap();
    assert!(t.key_ids().iter().filter(|k| *k == "a").count() >= 2, "the key returns after its cooldown");
    assert!(events.borrow().iter().any(|e| matches!(e, PoolEvent::Recovered { key_id } if key_id == "a")));
}

#[test]
fn retry_after_sets_the_rate_limit_cooldown() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, n| {
        if call.key_id == "a" && n == 0 {
            with_headers(429, OPENAI_RATE, &[("retry-after", "7")])
        } else {
            ok("{}")
        }
    });
    let mut cfg = config(&KEYS3[..2]);
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    send(&c, &time, get("/m")).unwrap();
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.state, a.cooldown_until, a.rate_limit_count), (KeyState::Cooling, Some(START_MS + 7_000), 1));
    time.advance(7_000);
    assert_eq!(key_status(&c.status(), "a").state, KeyState::Healthy);
}

#[test]
fn single_key_waits_for_retry_after_then_succeeds() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, n| {
        if n == 0 {
            with_headers(
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
                &[("retry-after-ms", "2500")],
            )
        } else {
            ok("{}")
        }
    });
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let reply = send(&c, &time, get("/m")).unwrap();
    assert_eq!((reply.response.status, reply.attempts), (200, 2));
    assert_eq!(time.elapsed(), 2_500, "backs off exactly as long as the provider asked");
    assert_eq!(t.calls()[1].at_ms - t.calls()[0].at_ms, 2_500);
}

#[test]
fn gives_back_the_last_rejection_with_the_earliest_return_time() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| status(429, OPENAI_QUOTA));
    let mut cfg = config(&KEYS3);
    cfg.cooldown_seconds = 3600;
    let c = shared(&cfg, &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.outcome, reply.attempts), (429, Outcome::QuotaExhausted, 3));
    assert_eq!(reply.retry_at_ms, Some(START_MS + 3_600_000));
    assert_eq!(time.elapsed(), 0, "a wait beyond max_wait_ms is not taken");

    let err = send(&c, &time, post("/chat")).unwrap_err();
    assert_eq!(err, PoolError::NoHealthyKeys { retry_at_ms: Some(START_MS + 3_600_000) });
    assert!(err.to_string().contains("2024-06-01T01:00:00"), "{err}");
    assert_eq!(t.calls().len(), 3, "no call is made while every key rests");
}

#[test]
fn invalid_key_is_quarantined_until_re_enabled() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, _| if call.key_id == "a" { status(401, OPENAI_BAD_KEY) } else { ok("{}") });
    let mut cfg = config(&KEYS3[..2]);
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    for _ in 0..3 {
        assert_eq!(send(&c, &time, get("/m")).unwrap().key_id, "b");
    }
    time.advance(100 * 24 * 3_600_000);
    send(&c, &time, get("/m")).unwrap();
    assert_eq!(t.key_ids(), ids(&["a", "b", "b", "b", "b"]));
    assert_eq!(key_status(&c.status(), "a").state, KeyState::Invalid);
    c.set_enabled("a", true).unwrap();
    assert_eq!(key_status(&c.status(), "a").state, KeyState::Healthy);
}

#[test]
fn server_errors_retry_with_backoff_without_blaming_the_key() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, n| if n < 2 { status(500, "oops") } else { ok("{}") });
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.attempts), (200, 3));
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.state, a.cooldown_until, a.failover_count), (KeyState::Healthy, None, 0));
    // Backoff 250·2^(n-1) with equal jitter: between 125+250 and 250+500 ms in all.
    assert!((375..=750).contains(&time.elapsed()), "slept {} ms", time.elapsed());
}

#[test]
fn overloaded_retries_run_out_and_return_the_last_response() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| {
        status(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
    });
    let mut cfg = config(&KEYS3);
    cfg.retry_attempts = 2;
    let c = shared(&cfg, &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.outcome, reply.attempts), (529, Outcome::Overloaded, 3));
    assert!(c.status().keys.iter().all(|k| k.state == KeyState::Healthy));
}

#[test]
fn client_errors_and_too_large_return_at_once() {
    let time = VirtualTime::new();
    let too_large = r#"{"error":{"message":"Request too large for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Requested 20000.","type":"tokens","code":"rate_limit_exceeded"}}"#;
    let t = ScriptedTransport::new(&time, &KEYS3, move |call, _| {
        if call.url.ends_with("big") {
            status(429, too_large)
        } else {
            status(400, r#"{"error":{"message":"bad param"}}"#)
        }
    });
    let c = shared(&config(&KEYS3), &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.outcome, reply.attempts), (400, Outcome::ClientError, 1));
    let reply = send(&c, &time, post("/big")).unwrap();
    assert_eq!((reply.response.status, reply.outcome, reply.attempts), (429, Outcome::TooLarge, 1));
    assert_eq!(t.calls().len(), 2);
    assert!(c.status().keys.iter().all(|k| k.state == KeyState::Healthy && k.cooldown_until.is_none()));
}

#[test]
fn network_errors_resend_only_retryable_methods() {
    // A failure to connect sent nothing: any method is resent, preferably on another key.
    let time = VirtualTime::new();
    let t =
        ScriptedTransport::new(&time, &KEYS3[..2], |call, n| if call.key_id == "a" && n == 0 { Answer::ConnectError } else { ok("{}") });
    let c = shared(&config(&KEYS3[..2]), &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.attempts), (200, 2));
    assert_ne!(t.calls()[0].key_id, t.calls()[1].key_id, "the retry prefers another key");
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.network_error_count, a.error_count, a.last_error.as_deref()), (1, 1, Some("network")));

    // Sent with no answer: a POST (not idempotent, not in the default list) is not resent ...
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |_, n| if n == 0 { Answer::NetworkError { delay_ms: 0 } } else { ok("{}") });
    let c = shared(&config(&KEYS3[..2]), &t, &time);
    let err = send(&c, &time, post("/chat")).unwrap_err();
    assert!(matches!(err, PoolError::Network { .. }), "{err:?}");
    assert_eq!(t.calls().len(), 1, "a POST is not resent after an ambiguous failure");
    assert!(!err.to_string().contains("sk-"), "{err}");
    // ... a GET is (key b fails on its first call too, then a answers),
    assert_eq!(send(&c, &time, get("/m")).unwrap().attempts, 2);
    // ... and a POST is when the caller opts in.
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, n| {
        if call.key_id == "a" && n == 0 {
            Answer::NetworkError { delay_ms: 0 }
        } else {
            ok("{}")
        }
    });
    let mut cfg = config(&KEYS3[..2]);
    cfg.retryable_methods = vec!["GET".into(), "POST".into()];
    let c = shared(&cfg, &t, &time);
    assert_eq!(send(&c, &time, post("/chat")).unwrap().attempts, 2);
}

#[test]
fn a_rejected_request_is_resent_for_any_method() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, _| if call.key_id == "a" { status(429, OPENAI_RATE) } else { ok("{}") });
    let mut cfg = config(&KEYS3[..2]);
    cfg.retryable_methods = vec![];
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    let reply = send(&c, &time, Request::new(Method::PATCH, "/thing")).unwrap();
    assert_eq!((reply.key_id.as_str(), reply.attempts), ("b", 2));
}

#[test]
fn attempts_time_out_through_the_sleeper() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| Answer::Hang);
    let mut cfg = config(&KEYS3[..1]);
    cfg.request_timeout_ms = Some(5_000);
    cfg.retry_attempts = 1;
    let c = shared(&cfg, &t, &time);
    let err = send(&c, &time, get("/m")).unwrap_err();
    assert_eq!(err, PoolError::Timeout { key_id: "a".into(), after_ms: 5_000 });
    assert_eq!(t.calls().len(), 2);
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.total_requests, a.error_count, a.in_flight, a.last_error.as_deref()), (2, 2, 0, Some("timeout")));

    let mut req = get("/m");
    req.timeout_ms = Some(50);
    let before = time.elapsed();
    assert!(matches!(send(&c, &time, req).unwrap_err(), PoolError::Timeout { after_ms: 50, .. }));
    assert!(time.elapsed() - before < 5_000);
}

#[test]
fn a_key_the_provider_calls_empty_is_skipped_without_a_wasted_call() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, _| {
        if call.key_id == "a" {
            with_headers(200, "{}", &[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "30s")])
        } else {
            ok("{}")
        }
    });
    let mut cfg = config(&KEYS3[..2]);
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    for _ in 0..5 {
        send(&c, &time, get("/m")).unwrap();
    }
    assert_eq!(t.key_ids(), ids(&["a", "b", "b", "b", "b"]));
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.state, a.cooldown_until, a.estimated_remaining_quota), (KeyState::Exhausted, Some(START_MS + 30_000), Some(0)));
    time.advance(30_000);
    send(&c, &time, get("/m")).unwrap();
    assert_eq!(t.key_ids().last().unwrap(), "a");
}

#[test]
fn rate_limit_per_second_passes_over_busy_keys_then_waits() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |_, _| ok("{}"));
    let mut cfg = config(&KEYS3[..2]);
    cfg.rate_limit_per_second = Some(1.0);
    let c = shared(&cfg, &t, &time);
    for _ in 0..4 {
        send(&c, &time, get("/m")).unwrap();
    }
    let calls = t.calls();
    assert_eq!(calls.iter().map(|c| c.at_ms - START_MS).collect::<Vec<_>>(), vec![0, 0, 1000, 1000]);
    assert_ne!(calls[0].key_id, calls[1].key_id);
}

#[test]
fn waits_for_a_cooling_key_when_it_returns_within_max_wait() {
    let time = VirtualTime::new();
    let t =
        ScriptedTransport::new(
            &time,
            &KEYS3[..2],
            |_, n| if n == 0 { with_headers(429, OPENAI_RATE, &[("retry-after", "3")]) } else { ok("{}") },
        );
    let c = shared(&config(&KEYS3[..2]), &t, &time);
    let reply = send(&c, &time, get("/m")).unwrap();
    assert_eq!((reply.response.status, reply.attempts), (200, 3));
    assert_eq!(time.elapsed(), 3_000, "slept only once both keys were cooling, until the first returned");
}

#[test]
fn counters_stay_exact_under_many_interleaved_requests() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |call, n| {
        let delay_ms = (n as u64 * 37 + call.key_id.len() as u64 * 11) % 90;
        match n % 7 {
            3 => Answer::Respond { status: 429, headers: vec![("retry-after", "1".into())], body: OPENAI_RATE.into(), delay_ms },
            5 => Answer::Respond { status: 503, headers: vec![], body: "busy".into(), delay_ms },
            6 => Answer::NetworkError { delay_ms },
            _ => Answer::Respond { status: 200, headers: vec![], body: "{}".into(), delay_ms },
        }
    });
    let mut cfg = config(&KEYS3);
    cfg.strategy = Strategy::LeastUsed;
    let c = shared(&cfg, &t, &time);
    let futures = (0..300)
        .map(|_| {
            let c = c.clone();
            Box::pin(async move { c.request(post("/chat")).await.map(|r| r.response.status) })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<u16, PoolError>>>>
        })
        .collect();
    let results = run_all(&time, futures);
    let status = c.status();
    assert_eq!(status.total_requests as usize, t.calls().len());
    for k in &status.keys {
        assert_eq!(k.total_requests, k.successes + k.error_count, "key {}", k.id);
        assert_eq!(k.in_flight, 0);
        let seen = t.calls().iter().filter(|c| c.key_id == k.id).count() as u64;
        assert_eq!(k.total_requests, seen, "key {}", k.id);
    }
    let served = results.iter().filter(|r| matches!(r, Ok(200u16))).count() as u64;
    assert_eq!(served, status.successes);
    assert!(served > 200, "most requests are served: {served}");
    assert!(results.iter().all(|r| !matches!(r, Err(PoolError::InvalidRequest(_) | PoolError::NoHealthyKeys { retry_at_ms: None }))));
}

#[test]
fn key_values_never_appear_in_errors_status_events_or_debug() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |call, _| match call.key_id.as_str() {
        "a" => status(401, OPENAI_BAD_KEY),
        "b" => Answer::NetworkError { delay_ms: 0 },
        _ => status(429, OPENAI_QUOTA),
    });
    let mut cfg = config(&KEYS3);
    cfg.query_auth_param = Some("key".into()); // the transport error quotes the URL, key included
    let t = t.reading_key(|_, url| url.split_once("key=").map(|(_, k)| k.to_owned()));
    let c = shared(&cfg, &t, &time);
    let seen = Rc::new(RefCell::new(String::new()));
    let sink = seen.clone();
    c.set_listener(Some(Rc::new(move |e: &PoolEvent| sink.borrow_mut().push_str(&format!("{e:?} {}", serde_json::to_string(e).unwrap())))));
    let mut texts = vec![];
    for _ in 0..4 {
        match send(&c, &time, post("/chat")) {
            Ok(r) => texts.push(format!("{:?}", r.response.headers)),
            Err(e) => texts.push(format!("{e} {e:?}")),
        }
    }
    texts.push(serde_json::to_string(&c.status()).unwrap());
    texts.push(format!("{:?}", c.status()));
    texts.push(serde_json::to_string(&c.export_state()).unwrap());
    texts.push(format!("{:?}", cfg));
    texts.push(seen.borrow().clone());
    let all = texts.join("\n");
    assert!(t.calls().len() >= 3);
    for (_, value) in KEYS3 {
        assert!(!all.contains(value), "key leaked in: {all}");
    }
}

#[test]
fn paths_that_leave_the_origin_are_refused_before_a_key_is_attached() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| ok("{}"));
    let c = shared(&config(&KEYS3), &t, &time);
    for path in ["https://evil.example.net/v1/chat", "//evil.example.net/v1", "/../../admin", "/v1/%2e%2e/x", "http://api.example.com/v1/x"]
    {
        let err = send(&c, &time, get(path)).unwrap_err();
        assert!(matches!(err, PoolError::InvalidRequest(_)), "{path}: {err:?}");
    }
    assert!(t.calls().is_empty());
    assert_eq!(c.status().total_requests, 0);
    send(&c, &time, get("https://api.example.com/v1/models")).unwrap();
    assert_eq!(t.calls()[0].url, "https://api.example.com/v1/models");
}

#[test]
fn keys_can_be_added_removed_and_disabled_at_run_time() {
    let time = VirtualTime::new();
    let keys = [("a", "sk-aaa-secret"), ("b", "sk-bbb-secret"), ("new", "sk-new-secret")];
    let t = ScriptedTransport::new(&time, &keys, |_, _| ok("{}"));
    let mut cfg = config(&keys[..2]);
    cfg.strategy = Strategy::RoundRobin;
    let c = shared(&cfg, &t, &time);
    assert_eq!(c.add_key(&KeyConfig::named("new", "sk-new-secret")).unwrap(), "new");
    assert!(c.add_key(&KeyConfig::named("new", "sk-other")).unwrap_err().problem.contains("duplicate"));
    assert!(c.add_key(&KeyConfig::named("x", "sk-aaa-secret")).is_err());
    c.set_enabled("a", false).unwrap();
    c.remove_key("b").unwrap();
    assert_eq!(c.remove_key("b").unwrap_err(), PoolError::UnknownKey("b".into()));
    for _ in 0..2 {
        send(&c, &time, get("/m")).unwrap();
    }
    assert_eq!(t.key_ids(), ids(&["new", "new"]));
    let status = c.status();
    assert_eq!(
        status.keys.iter().map(|k| (k.id.as_str(), k.state)).collect::<Vec<_>>(),
        vec![("a", KeyState::Disabled), ("new", KeyState::Healthy)]
    );
    assert!(c.remove_key("a").is_ok());
    assert!(matches!(c.remove_key("new"), Err(PoolError::InvalidRequest(_))));
}

#[test]
fn a_plain_key_added_after_a_removal_gets_a_free_id() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| ok("{}"));
    let cfg = PoolConfig::new("https://api.example.com/v1", KEYS3.iter().map(|(_, v)| KeyConfig::plain(*v)).collect());
    let c = shared(&cfg, &t, &time);
    c.remove_key("key-1").unwrap();
    assert_eq!(c.add_key(&KeyConfig::plain("sk-new-secret")).unwrap(), "key-4");
    let ids: Vec<String> = c.status().keys.into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["key-2", "key-3", "key-4"]);
}

#[test]
fn state_exports_imports_and_merges() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..2], |call, _| if call.key_id == "a" { status(429, OPENAI_QUOTA) } else { ok("{}") });
    let c1 = shared(&config(&KEYS3[..2]), &t, &time);
    send(&c1, &time, get("/m")).unwrap();
    let snap = c1.export_state();
    let json = serde_json::to_string(&snap).unwrap();
    let back: PoolSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);

    // A second instance learns that a is exhausted without spending a call on it.
    let c2 = shared(&config(&KEYS3[..2]), &t, &time);
    c2.import_state(&snap);
    send(&c2, &time, get("/m")).unwrap();
    assert_eq!(t.key_ids(), ids(&["a", "b", "b"]));

    // Merging adds counters and keeps the later cooldown.
    c2.merge_state(&snap);
    let a = key_status(&c2.status(), "a").clone();
    assert_eq!((a.total_requests, a.error_count), (2, 2));
    assert_eq!(a.cooldown_until, key_status(&c1.status(), "a").cooldown_until);
    let later = PoolSnapshot {
        keys: vec![KeySnapshot {
            id: "a".into(),
            cooldown_until: Some(START_MS + 9_999_999),
            cooldown_reason: Some("quota_exhausted".into()),
            ..Default::default()
        }],
    };
    c2.merge_state(&later);
    assert_eq!(key_status(&c2.status(), "a").cooldown_until, Some(START_MS + 9_999_999));
}

#[test]
fn a_listener_may_call_back_into_the_client() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |call, _| if call.key_id == "a" { status(429, OPENAI_QUOTA) } else { ok("{}") });
    let c = shared(&config(&KEYS3), &t, &time);
    let weak = Rc::downgrade(&c);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    c.set_listener(Some(Rc::new(move |e: &PoolEvent| {
        let healthy = weak.upgrade().map(|c| c.status().healthy_keys).unwrap_or_default();
        sink.borrow_mut().push((serde_json::to_value(e).unwrap()["type"].as_str().unwrap().to_owned(), healthy));
    })));
    send(&c, &time, get("/m")).unwrap();
    let kinds: Vec<String> = seen.borrow().iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(kinds, ids(&["request", "cooldown", "failover", "request", "success"]));
    assert_eq!(seen.borrow()[2].1, 2, "status seen from the listener reflects the cooldown");
}

#[test]
fn callers_credentials_are_dropped_whatever_the_auth_header() {
    let time = VirtualTime::new();
    let (t, c) = raw_header_pool(&time);
    let req = get("/m")
        .with_header(HeaderName::from_static("authorization"), HeaderValue::from_static("Bearer sdk-dummy"))
        .with_header(HeaderName::from_static("x-goog-api-key"), HeaderValue::from_static("other-dummy"));
    send(&c, &time, req).unwrap();
    let h = &t.calls()[0].headers;
    assert_eq!(t.calls()[0].key_id, "a");
    assert!(h.get("authorization").is_none() && h.get("x-goog-api-key").is_none(), "{h:?}");
}

#[test]
fn a_stream_error_counts_against_its_key_and_is_an_event() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"));
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    c.set_listener(Some(Rc::new(move |e: &PoolEvent| sink.borrow_mut().push(e.clone()))));
    send(&c, &time, get("/m")).unwrap();
    c.record_stream_error("a").unwrap();
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.stream_error_count, a.successes, a.last_error.as_deref()), (1, 1, Some("stream_interrupted")));
    assert!(seen.borrow().contains(&PoolEvent::StreamError { key_id: "a".into() }));
    assert_eq!(c.record_stream_error("zz"), Err(PoolError::UnknownKey("zz".into())));
}

#[test]
fn a_dropped_request_books_its_attempt_as_cancelled() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| Answer::Hang);
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let c2 = c.clone();
    let t2 = time.clone();
    // The caller gives up after 100 ms: the request future is dropped mid-attempt.
    let outcome = run(&time, async move {
        futures_lite::future::or(async { Some(c2.request(get("/m")).await) }, async {
            t2.sleep_for(100).await;
            None
        })
        .await
    });
    assert!(outcome.is_none());
    let a = key_status(&c.status(), "a").clone();
    assert_eq!((a.total_requests, a.error_count, a.in_flight, a.last_error.as_deref()), (1, 1, 0, Some("cancelled")));
}

#[test]
fn round_robin_continues_from_imported_state() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3, |_, _| ok("{}"));
    let mut cfg = config(&KEYS3);
    cfg.strategy = Strategy::RoundRobin;
    let first = shared(&cfg, &t, &time);
    send(&first, &time, get("/m")).unwrap();
    time.advance(1);
    send(&first, &time, get("/m")).unwrap();
    // A new instance (another worker, a fresh wasm instance) picks up where the first left off.
    let second = shared(&cfg, &t, &time);
    second.import_state(&first.export_state());
    time.advance(1);
    send(&second, &time, get("/m")).unwrap();
    assert_eq!(t.key_ids(), ids(&["a", "b", "c"]));
}

#[test]
fn a_snapshot_delta_counts_only_the_new_work() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"));
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    send(&c, &time, get("/m")).unwrap();
    let base = c.export_state();
    send(&c, &time, get("/m")).unwrap();
    send(&c, &time, get("/m")).unwrap();
    let delta = c.export_state().since(&base);
    assert_eq!((delta.keys[0].total_requests, delta.keys[0].successes), (2, 2));
}

#[test]
fn header_names_from_callers_are_typed() {
    // A caller header survives; the auth header cannot be smuggled in under another case.
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| ok("{}"));
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    let req = get("/m")
        .with_header(HeaderName::from_static("x-trace"), HeaderValue::from_static("1"))
        .with_header(HeaderName::from_static("authorization"), HeaderValue::from_static("Bearer stolen"));
    send(&c, &time, req).unwrap();
    let h = &t.calls()[0].headers;
    assert_eq!((h["x-trace"].to_str().unwrap(), h["authorization"].to_str().unwrap()), ("1", "Bearer sk-aaa-secret"));
}

#[test]
fn a_deadline_bounds_the_whole_call_through_the_async_driver() {
    // One key answering 429 Retry-After: 30 would hold the call 30 s; the deadline ends it at
    // once with the rejection and the time the key returns.
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| with_headers(429, OPENAI_RATE, &[("retry-after", "30")]));
    let mut cfg = config(&KEYS3[..1]);
    cfg.deadline_ms = Some(5_000);
    let c = shared(&cfg, &t, &time);
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.attempts, reply.retry_at_ms), (429, 1, Some(START_MS + 30_000)));
    assert_eq!(time.elapsed(), 0);

    // A hanging upstream: the deadline ends the attempt when no timeout is set.
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| Answer::Hang);
    let c = shared(&cfg, &t, &time);
    let before = time.elapsed();
    let err = send(&c, &time, get("/m")).unwrap_err();
    assert_eq!(err, PoolError::Timeout { key_id: "a".into(), after_ms: 5_000 });
    assert_eq!(time.elapsed() - before, 5_000);
    assert_eq!(key_status(&c.status(), "a").in_flight, 0);
}

#[test]
fn a_failover_with_no_key_left_names_none() {
    let time = VirtualTime::new();
    let keys = [("a", "sk-aaa-secret")];
    let t = ScriptedTransport::new(&time, &keys, |_, _| status(429, OPENAI_QUOTA));
    let c = shared(&config(&keys), &t, &time);
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = events.clone();
    c.set_listener(Some(Rc::new(move |e: &PoolEvent| sink.borrow_mut().push(e.clone()))));
    let reply = send(&c, &time, post("/chat")).unwrap();
    assert_eq!((reply.response.status, reply.key_id.as_str()), (429, "a"));
    let failovers: Vec<_> = events.borrow().iter().filter(|e| matches!(e, PoolEvent::Failover { .. })).cloned().collect();
    assert_eq!(failovers, [PoolEvent::Failover { from_key_id: "a".into(), to_key_id: None, reason: Outcome::QuotaExhausted, attempt: 1 }]);
}

#[test]
fn a_request_may_set_its_own_retry_attempts() {
    let time = VirtualTime::new();
    let t = ScriptedTransport::new(&time, &KEYS3[..1], |_, _| status(500, "oops"));
    let c = shared(&config(&KEYS3[..1]), &t, &time);
    // The config allows 3 retries; this request allows none, the next one 1.
    let mut none = post("/chat");
    none.retry_attempts = Some(0);
    assert_eq!(send(&c, &time, none).unwrap().attempts, 1);
    let mut one = post("/chat");
    one.retry_attempts = Some(1);
    assert_eq!(send(&c, &time, one).unwrap().attempts, 2);
    assert_eq!(send(&c, &time, post("/chat")).unwrap().attempts, 4, "the config's 3 retries otherwise");
    let mut too_many = post("/chat");
    too_many.retry_attempts = Some(1_000);
    let e = send(&c, &time, too_many).unwrap_err();
    assert!(e.to_string().contains("retryAttempts must be between 0 and"), "{e}");
}
