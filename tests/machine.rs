//! The request machine's policy, driven by hand: plain function calls and plain numbers for
//! time, no executor, no transport. Each test plays the host: it carries out the actions the
//! machine asks for and reports results with the time.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use poolswitch::core::*;

const T0: u64 = 1_717_200_000_000; // 2024-06-01T00:00:00Z
const KEYS: [(&str, &str); 3] = [("a", "sk-aaa-secret"), ("b", "sk-bbb-secret"), ("c", "sk-ccc-secret")];
const QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
const RATE: &str = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
const BAD_KEY: &str = r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;

/// Jitter at its lowest: a backoff is exactly half its ceiling.
struct LowRng;
impl Rng for LowRng {
    fn next_u64(&self) -> u64 {
        0
    }
}

fn config(n: usize) -> PoolConfig {
    let mut c = PoolConfig::new("https://api.example.com/v1", KEYS[..n].iter().map(|(i, v)| KeyConfig::named(*i, *v)).collect());
    c.strategy = Strategy::RoundRobin;
    c
}

fn pool(c: &PoolConfig) -> Shared<LowRng> {
    Shared::new(c, LowRng).expect("valid config")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
    }
    h
}

/// What one round of polls asked for, in order, read back as plain values.
#[derive(Debug, Clone, PartialEq)]
enum Did {
    Send(u32, String),
    Peek(u32),
    Discard(u32),
    Done(Result<Finished, PoolError>),
}

fn key_of(request: &HttpRequest) -> String {
    let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    KEYS.iter().find(|(_, v)| auth.ends_with(v)).map(|(i, _)| i.to_string()).unwrap_or_default()
}

fn drain(call: &mut Call, s: &mut Shared<LowRng>, now: u64) -> Vec<Did> {
    let mut out = Vec::new();
    while let Some(action) = call.poll(s, now) {
        out.push(match action {
            Action::Send { attempt, request, .. } => Did::Send(attempt, key_of(&request)),
            Action::Peek { attempt, .. } => Did::Peek(attempt),
            Action::Discard { attempt } => Did::Discard(attempt),
            Action::Done(r) => Did::Done(r),
        });
    }
    out
}

fn send(attempt: u32, key: &str) -> Did {
    Did::Send(attempt, key.to_owned())
}

fn done(attempt: u32, key: &str, attempts: u32, outcome: Outcome, retry_at_ms: Option<u64>) -> Did {
    Did::Done(Ok(Finished { attempt, key_id: key.to_owned(), attempts, outcome, retry_at_ms }))
}

/// Reports an error answer: its head, then its body when the machine asks to peek.
fn reject(
    call: &mut Call,
    s: &mut Shared<LowRng>,
    attempt: u32,
    now: u64,
    status: u16,
    h: &[(&'static str, &str)],
    body: &str,
) -> Vec<Did> {
    assert!(call.handle_response(s, attempt, now, status, &headers(h)));
    assert_eq!(drain(call, s, now), [Did::Peek(attempt)]);
    assert!(call.handle_peeked(s, attempt, now, body.as_bytes()));
    drain(call, s, now)
}

fn ok(call: &mut Call, s: &mut Shared<LowRng>, attempt: u32, now: u64) -> Vec<Did> {
    assert!(call.handle_response(s, attempt, now, 200, &HeaderMap::new()));
    drain(call, s, now)
}

fn start(s: &Shared<LowRng>, req: Request, now: u64) -> Call {
    Call::start(s, req, now).expect("a valid request")
}

fn get() -> Request {
    Request::new(Method::GET, "/m")
}

fn post() -> Request {
    Request::new(Method::POST, "/chat").with_body("{}")
}

fn status(s: &Shared<LowRng>, id: &str, now: u64) -> KeyStatus {
    s.status(now).keys.into_iter().find(|k| k.id == id).expect("key")
}

#[test]
fn key_faults_fail_over_in_order_at_once_releasing_each_rejection() {
    let mut s = pool(&config(3));
    let mut call = start(&s, post(), T0);
    assert_eq!(drain(&mut call, &mut s, T0), [send(1, "a")]);
    assert_eq!(reject(&mut call, &mut s, 1, T0 + 5, 429, &[], QUOTA), [send(2, "b")]);
    assert_eq!(call.poll_timeout(), None, "failing over after a key fault never waits");
    // The first rejection is released once a later one replaces it as the answer so far.
    assert_eq!(reject(&mut call, &mut s, 2, T0 + 9, 401, &[], BAD_KEY), [Did::Discard(1), send(3, "c")]);
    assert_eq!(ok(&mut call, &mut s, 3, T0 + 12), [Did::Discard(2), done(3, "c", 3, Outcome::Success, None)]);
    assert!(call.is_done());
    assert_eq!(drain(&mut call, &mut s, T0 + 12), []);
    let (a, b) = (status(&s, "a", T0 + 12), status(&s, "b", T0 + 12));
    assert_eq!((a.state, a.cooldown_until), (KeyState::Exhausted, Some(T0 + 5 + 3_600_000)));
    assert_eq!(b.state, KeyState::Invalid);
}

#[test]
fn transient_errors_back_off_then_retry_and_run_out() {
    let mut cfg = config(1);
    cfg.retry_attempts = 2;
    let mut s = pool(&cfg);
    let mut call = start(&s, get(), T0);
    assert_eq!(drain(&mut call, &mut s, T0), [send(1, "a")]);
    assert_eq!(reject(&mut call, &mut s, 1, T0, 500, &[], "oops"), []);
    // Retry 1: half of 250 ms (lowest jitter).
    assert_eq!(call.poll_timeout(), Some(T0 + 125));
    call.handle_timeout(&mut s, T0 + 100); // early: nothing happens
    assert_eq!(drain(&mut call, &mut s, T0 + 100), []);
    call.handle_timeout(&mut s, T0 + 125);
    assert_eq!(drain(&mut call, &mut s, T0 + 125), [send(2, "a")]);
    assert_eq!(reject(&mut call, &mut s, 2, T0 + 125, 529, &[], "busy"), [Did::Discard(1)]);
    assert_eq!(call.poll_timeout(), Some(T0 + 125 + 250), "retry 2: half of 500 ms");
    call.handle_timeout(&mut s, T0 + 375);
    assert_eq!(drain(&mut call, &mut s, T0 + 375), [send(3, "a")]);
    // Retries spent: the last answer is given back.
    assert_eq!(reject(&mut call, &mut s, 3, T0 + 375, 500, &[], "oops"), [Did::Discard(2), done(3, "a", 3, Outcome::ServerError, None)]);
    assert_eq!(status(&s, "a", T0 + 400).state, KeyState::Healthy, "a 5xx does not blame the key");
}

#[test]
fn waits_only_when_no_other_key_can_serve_and_then_for_the_first_to_return() {
    let mut s = pool(&config(2));
    let mut call = start(&s, get(), T0);
    assert_eq!(drain(&mut call, &mut s, T0), [send(1, "a")]);
    assert_eq!(reject(&mut call, &mut s, 1, T0, 429, &[("retry-after", "3")], RATE), [send(2, "b")]);
    assert_eq!(reject(&mut call, &mut s, 2, T0 + 10, 429, &[("retry-after", "5")], RATE), [Did::Discard(1)]);
    assert_eq!(call.poll_timeout(), Some(T0 + 3_000), "until a returns");
    call.handle_timeout(&mut s, T0 + 3_000);
    assert_eq!(drain(&mut call, &mut s, T0 + 3_000), [send(3, "a")]);
    assert_eq!(ok(&mut call, &mut s, 3, T0 + 3_000), [Did::Discard(2), done(3, "a", 3, Outcome::Success, None)]);
}

#[test]
fn a_providers_retry_after_is_honoured_exactly() {
    let mut s = pool(&config(1));
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(reject(&mut call, &mut s, 1, T0, 503, &[("retry-after-ms", "2500")], "overloaded"), []);
    assert_eq!(call.poll_timeout(), Some(T0 + 2_500));
    // A Retry-After past maxWaitMs is not shortened: the answer is given back instead.
    let mut cfg = config(1);
    cfg.max_wait_ms = 1_000;
    let mut s = pool(&cfg);
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(reject(&mut call, &mut s, 1, T0, 503, &[("retry-after", "30")], "overloaded"), [done(1, "a", 1, Outcome::Overloaded, None)]);
}

#[test]
fn all_keys_cooling_ends_with_the_time_the_first_returns() {
    let mut s = pool(&config(2));
    let mut call = start(&s, post(), T0);
    drain(&mut call, &mut s, T0);
    reject(&mut call, &mut s, 1, T0, 429, &[], QUOTA);
    let cooled = T0 + 3_600_000;
    assert_eq!(
        reject(&mut call, &mut s, 2, T0, 429, &[], QUOTA),
        [Did::Discard(1), done(2, "b", 2, Outcome::QuotaExhausted, Some(cooled))]
    );
    // The next call makes no attempt at all.
    let mut call = start(&s, post(), T0 + 1);
    assert_eq!(drain(&mut call, &mut s, T0 + 1), [Did::Done(Err(PoolError::NoHealthyKeys { retry_at_ms: Some(cooled) }))]);
    assert_eq!(s.status(T0 + 1).total_requests, 2);
}

#[test]
fn a_deadline_bounds_waits_for_cooling_keys() {
    // One key answering 429 Retry-After: 30 with a 5 s deadline: the rejection comes back at
    // once, with the time the key returns, instead of after 30 s.
    let mut cfg = config(1);
    cfg.deadline_ms = Some(5_000);
    let mut s = pool(&cfg);
    let mut call = start(&s, post(), T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(
        reject(&mut call, &mut s, 1, T0 + 20, 429, &[("retry-after", "30")], RATE),
        [done(1, "a", 1, Outcome::RateLimited, Some(T0 + 30_020))]
    );
    // Per request too, shorter than the config's.
    let mut s = pool(&config(1));
    let mut req = post();
    req.deadline_ms = Some(1_000);
    let mut call = start(&s, req, T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(
        reject(&mut call, &mut s, 1, T0, 429, &[("retry-after", "2")], RATE),
        [done(1, "a", 1, Outcome::RateLimited, Some(T0 + 2_000))]
    );
}

#[test]
fn a_deadline_ends_an_attempt_in_flight_and_its_backoff_is_not_taken() {
    let mut cfg = config(2);
    cfg.deadline_ms = Some(2_000);
    let mut s = pool(&cfg);
    let mut call = start(&s, get(), T0);
    let first = call.poll(&mut s, T0);
    let Some(Action::Send { request, .. }) = first else { panic!("{first:?}") };
    assert!(request.cancellable, "an attempt the machine may end must be abortable");
    assert_eq!(call.poll_timeout(), Some(T0 + 2_000));
    call.handle_timeout(&mut s, T0 + 2_000);
    assert_eq!(
        drain(&mut call, &mut s, T0 + 2_000),
        [Did::Discard(1), Did::Done(Err(PoolError::Timeout { key_id: "a".into(), after_ms: 2_000 }))]
    );
    let a = status(&s, "a", T0 + 2_000);
    assert_eq!((a.total_requests, a.error_count, a.in_flight, a.last_error.as_deref()), (1, 1, 0, Some("timeout")));
}

#[test]
fn the_attempt_timeout_covers_a_stalled_error_body() {
    let mut cfg = config(2);
    cfg.request_timeout_ms = Some(1_000);
    let mut s = pool(&cfg);
    let mut call = start(&s, post(), T0);
    drain(&mut call, &mut s, T0);
    // The 429's head arrives, its body never does.
    assert!(call.handle_response(&mut s, 1, T0 + 100, 429, &headers(&[("retry-after", "20")])));
    assert_eq!(drain(&mut call, &mut s, T0 + 100), [Did::Peek(1)]);
    assert_eq!(status(&s, "a", T0 + 100).in_flight, 1);
    assert_eq!(call.poll_timeout(), Some(T0 + 1_000));
    call.handle_timeout(&mut s, T0 + 1_000);
    // Classified on what arrived (a 429 with Retry-After), the key is freed and cooled, and
    // the call fails over.
    assert_eq!(drain(&mut call, &mut s, T0 + 1_000), [send(2, "b")]);
    let a = status(&s, "a", T0 + 1_000);
    assert_eq!((a.in_flight, a.state, a.cooldown_until), (0, KeyState::Cooling, Some(T0 + 21_000)));
    // The body that turns up late is refused: the machine no longer waits for it.
    assert!(!call.handle_peeked(&mut s, 1, T0 + 1_500, RATE.as_bytes()));
    assert_eq!(ok(&mut call, &mut s, 2, T0 + 1_600), [Did::Discard(1), done(2, "b", 2, Outcome::Success, None)]);
}

#[test]
fn an_error_body_read_is_bounded_even_with_no_timeout() {
    let mut s = pool(&config(1));
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(call.poll_timeout(), None, "no timeout configured: the head may take its time");
    call.handle_response(&mut s, 1, T0 + 50, 400, &HeaderMap::new());
    assert_eq!(call.poll_timeout(), Some(T0 + 50 + machine::PEEK_WAIT_MS));
}

#[test]
fn max_wait_and_the_deadline_bound_rate_shaping_waits() {
    // 0.01 requests per second per key: the next token is 100 s away; maxWaitMs is 1 s.
    let mut cfg = config(1);
    cfg.rate_limit_per_second = Some(0.01);
    cfg.max_wait_ms = 1_000;
    let mut s = pool(&cfg);
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    ok(&mut call, &mut s, 1, T0);
    let mut call = start(&s, get(), T0);
    assert_eq!(drain(&mut call, &mut s, T0), [Did::Done(Err(PoolError::NoHealthyKeys { retry_at_ms: Some(T0 + 100_000) }))]);

    // 1 per second, within maxWaitMs but past the deadline.
    let mut cfg = config(1);
    cfg.rate_limit_per_second = Some(1.0);
    let mut s = pool(&cfg);
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    ok(&mut call, &mut s, 1, T0);
    let mut req = get();
    req.deadline_ms = Some(500);
    let mut call = start(&s, req, T0);
    assert_eq!(drain(&mut call, &mut s, T0), [Did::Done(Err(PoolError::NoHealthyKeys { retry_at_ms: Some(T0 + 1_000) }))]);
    // Without the deadline it waits for the token, and spends no retry on it.
    let mut call = start(&s, get(), T0);
    assert_eq!(drain(&mut call, &mut s, T0), []);
    assert_eq!(call.poll_timeout(), Some(T0 + 1_000));
}

#[test]
fn connect_failures_are_resent_for_any_method_ambiguous_ones_only_for_retryable_methods() {
    let mut s = pool(&config(2));
    let mut call = start(&s, post(), T0);
    drain(&mut call, &mut s, T0);
    assert!(call.handle_failure(&mut s, 1, T0, &TransportError::connect("connection refused")));
    assert_eq!(drain(&mut call, &mut s, T0), [Did::Discard(1)]);
    assert_eq!(call.poll_timeout(), Some(T0 + 125));
    call.handle_timeout(&mut s, T0 + 125);
    assert_eq!(drain(&mut call, &mut s, T0 + 125), [send(2, "b")]);

    let mut call = start(&s, post(), T0);
    drain(&mut call, &mut s, T0);
    assert!(call.handle_failure(&mut s, 1, T0, &TransportError::new("socket hang up")));
    let network = PoolError::Network { key_id: "a".into(), message: "socket hang up".into() };
    assert_eq!(drain(&mut call, &mut s, T0), [Did::Discard(1), Did::Done(Err(network))]);

    // PUT is idempotent: resent by default.
    let mut call = start(&s, Request::new(Method::PUT, "/x").with_body("{}"), T0);
    drain(&mut call, &mut s, T0);
    call.handle_failure(&mut s, 1, T0, &TransportError::new("socket hang up"));
    assert_eq!(drain(&mut call, &mut s, T0), [Did::Discard(1)]);
    assert!(call.poll_timeout().is_some());
}

#[test]
fn reports_the_machine_does_not_wait_for_are_refused_and_change_nothing() {
    let mut s = pool(&config(2));
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    assert!(!call.handle_response(&mut s, 2, T0, 200, &HeaderMap::new()), "wrong attempt");
    assert!(!call.handle_peeked(&mut s, 1, T0, b"{}"), "a peek that was not asked for");
    call.handle_timeout(&mut s, T0 + 999_999); // no timer: nothing happens
    assert!(!call.is_done());
    assert_eq!(ok(&mut call, &mut s, 1, T0), [done(1, "a", 1, Outcome::Success, None)]);
    assert!(!call.handle_response(&mut s, 1, T0, 200, &HeaderMap::new()), "a second report for the same attempt");
    assert!(!call.handle_failure(&mut s, 1, T0, &TransportError::new("late")));
    assert_eq!(s.status(T0).keys.iter().map(|k| k.total_requests).sum::<u64>(), 1);
}

#[test]
fn a_cancelled_call_books_its_attempt_as_cancelled() {
    let mut s = pool(&config(1));
    let mut call = start(&s, get(), T0);
    drain(&mut call, &mut s, T0);
    assert_eq!(status(&s, "a", T0).in_flight, 1);
    call.cancel(&mut s, T0 + 10);
    assert!(call.is_done());
    assert_eq!(drain(&mut call, &mut s, T0 + 10), []);
    let a = status(&s, "a", T0 + 10);
    assert_eq!((a.total_requests, a.successes + a.error_count, a.in_flight, a.last_error.as_deref()), (1, 1, 0, Some("cancelled")));
}

#[test]
fn requests_no_upstream_should_get_are_refused_before_a_key_is_touched() {
    let s = pool(&config(1));
    let mut bad = vec![
        Request::new(Method::CONNECT, "/m"),
        Request::new(Method::TRACE, "/m"),
        Request::new(Method::GET, "/m").with_body("x"),
        Request::new(Method::HEAD, "/m").with_body(""),
    ];
    for (timeout, deadline) in [(Some(0), None), (Some(3_600_001), None), (None, Some(0))] {
        let mut r = get();
        r.timeout_ms = timeout;
        r.deadline_ms = deadline;
        bad.push(r);
    }
    for req in bad {
        let text = format!("{req:?}");
        let err = Call::start(&s, req, T0).expect_err(&text);
        assert_eq!(err.kind(), "invalid_request", "{text}");
    }
    assert_eq!(s.status(T0).total_requests, 0);
    let mut r = Request::new(Method::DELETE, "/m");
    r.timeout_ms = Some(3_600_000);
    assert!(Call::start(&s, r, T0).is_ok());
}

#[test]
fn every_send_ends_in_a_discard_or_the_answer_under_random_answers() {
    // A small deterministic fuzz of the driver contract: whatever the answers, each attempt is
    // released exactly once and the books balance.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cfg = config(3);
    cfg.request_timeout_ms = Some(2_000);
    cfg.deadline_ms = Some(20_000);
    cfg.rate_limit_per_second = Some(5.0);
    let mut s = pool(&cfg);
    let mut now = T0;
    for _ in 0..400 {
        let req = if next() % 2 == 0 { get() } else { post() };
        let mut call = start(&s, req, now);
        let mut open: Vec<u32> = Vec::new();
        let mut ended = false;
        for _ in 0..200 {
            for did in drain(&mut call, &mut s, now) {
                match did {
                    Did::Send(n, _) => open.push(n),
                    Did::Discard(n) => open.retain(|a| *a != n),
                    Did::Peek(_) => {}
                    Did::Done(r) => {
                        if let Ok(f) = r {
                            assert_eq!(open, [f.attempt]);
                        } else {
                            assert_eq!(open, [] as [u32; 0]);
                        }
                        ended = true;
                    }
                }
            }
            if ended {
                break;
            }
            now += next() % 300;
            let attempt = *open.last().unwrap_or(&0);
            match next() % 6 {
                0 => drop(call.handle_response(&mut s, attempt, now, 200, &HeaderMap::new())),
                1 => drop(call.handle_response(&mut s, attempt, now, 429, &headers(&[("retry-after", "1")]))),
                2 => drop(call.handle_failure(&mut s, attempt, now, &TransportError::connect("refused"))),
                3 => drop(call.handle_peeked(&mut s, attempt, now, RATE.as_bytes())),
                4 => drop(call.handle_response(&mut s, attempt, now, 503, &HeaderMap::new())),
                _ => call.handle_timeout(&mut s, call.poll_timeout().unwrap_or(now).max(now)),
            }
            now = now.max(call.poll_timeout().unwrap_or(0).min(now + 500));
        }
        if !ended {
            call.cancel(&mut s, now);
        }
        let st = s.status(now);
        for k in &st.keys {
            assert_eq!(k.in_flight, 0, "{}", k.id);
            assert_eq!(k.total_requests, k.successes + k.error_count, "{}", k.id);
        }
    }
}
