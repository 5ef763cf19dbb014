//! Classification of real provider response shapes (OpenAI, Anthropic, Gemini, Groq).

use http::{HeaderMap, HeaderValue};
use poolswitch::core::*;

const NOW: u64 = 1_717_200_000_000;

fn verdict(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Classification {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    classify(status, &h, body.as_bytes(), NOW)
}

fn outcome(status: u16, body: &str) -> Outcome {
    verdict(status, body, &[]).outcome
}

#[test]
fn openai_shapes() {
    let rate = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let large = r#"{"error":{"message":"Request too large for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Requested 20000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    let bad_key = r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let bad_param = r#"{"error":{"message":"'messages' is a required property","type":"invalid_request_error","param":null,"code":null}}"#;
    assert_eq!(outcome(429, rate), Outcome::RateLimited);
    assert_eq!(outcome(429, quota), Outcome::QuotaExhausted);
    assert_eq!(outcome(429, large), Outcome::TooLarge);
    assert_eq!(outcome(401, bad_key), Outcome::InvalidKey);
    assert_eq!(outcome(400, bad_param), Outcome::ClientError);
    assert_eq!(outcome(404, r#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#), Outcome::ClientError);
    assert_eq!(outcome(500, r#"{"error":{"message":"The server had an error"}}"#), Outcome::ServerError);
    assert_eq!(outcome(503, "upstream connect error"), Outcome::Overloaded);
    assert_eq!(outcome(200, ""), Outcome::Success);
}

#[test]
fn anthropic_shapes() {
    let e = |t: &str| format!(r#"{{"type":"error","error":{{"type":"{t}","message":"m"}}}}"#);
    assert_eq!(outcome(429, &e("rate_limit_error")), Outcome::RateLimited);
    assert_eq!(outcome(529, &e("overloaded_error")), Outcome::Overloaded);
    assert_eq!(outcome(401, &e("authentication_error")), Outcome::InvalidKey);
    assert_eq!(outcome(403, &e("permission_error")), Outcome::ClientError);
    assert_eq!(outcome(413, &e("request_too_large")), Outcome::TooLarge);
    assert_eq!(outcome(400, &e("invalid_request_error")), Outcome::ClientError);
    let credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
    assert_eq!(outcome(400, credit), Outcome::QuotaExhausted);
    let v = verdict(
        429,
        &e("rate_limit_error"),
        &[
            ("retry-after", "12"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2024-06-01T00:00:12Z"),
        ],
    );
    assert_eq!(v.limits.retry_after_ms, Some(12_000));
    assert_eq!((v.limits.remaining_requests, v.limits.requests_reset_at), (Some(0), Some(NOW + 12_000)));
}

fn gemini_429(quota_id: &str, delay: &str) -> String {
    format!(
        r#"{{"error":{{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"{quota_id}","quotaDimensions":{{"location":"global","model":"gemini-2.0-flash"}},"quotaValue":"15"}}]}},{{"@type":"type.googleapis.com/google.rpc.Help","links":[{{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}}]}},{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}}}"#
    )
}

#[test]
fn gemini_per_minute_is_a_rate_limit_and_per_day_is_quota() {
    let minute = verdict(429, &gemini_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "31s"), &[]);
    assert_eq!((minute.outcome, minute.limits.retry_after_ms), (Outcome::RateLimited, Some(31_000)));
    let day = verdict(429, &gemini_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "5s"), &[]);
    assert_eq!(day.outcome, Outcome::QuotaExhausted);
    let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
    assert_eq!(outcome(400, bad_key), Outcome::InvalidKey);
    let plain = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    assert_eq!(outcome(429, plain), Outcome::RateLimited);
}

#[test]
fn groq_headers_with_go_durations() {
    let body = r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` on tokens per minute (TPM): Limit 6000, Used 5990, Requested 120. Please try again in 1.1s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
    let v = verdict(
        429,
        body,
        &[
            ("retry-after", "2"),
            ("x-ratelimit-remaining-requests", "14399"),
            ("x-ratelimit-reset-requests", "2m59.56s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "7.66s"),
        ],
    );
    assert_eq!(v.outcome, Outcome::RateLimited);
    assert_eq!(v.limits.retry_after_ms, Some(2_000));
    assert_eq!((v.limits.remaining_requests, v.limits.requests_reset_at), (Some(14_399), Some(NOW + 179_560)));
    assert_eq!((v.limits.remaining_tokens, v.limits.tokens_reset_at), (Some(0), Some(NOW + 7_660)));
}

#[test]
fn retry_after_as_http_date_and_generic_wording() {
    let v = verdict(429, "Too Many Requests", &[("retry-after", "Sat, 01 Jun 2024 00:01:00 GMT")]);
    assert_eq!((v.outcome, v.limits.retry_after_ms), (Outcome::RateLimited, Some(60_000)));
    assert_eq!(outcome(429, r#"{"message":"Monthly quota exceeded for this key"}"#), Outcome::QuotaExhausted);
    assert_eq!(outcome(402, r#"{"error":{"message":"Insufficient Balance"}}"#), Outcome::QuotaExhausted);
    assert_eq!(outcome(429, "<html>not json</html>"), Outcome::RateLimited);
}

#[test]
fn classes_drive_the_loop() {
    assert!(Outcome::RateLimited.is_key_fault() && Outcome::QuotaExhausted.is_key_fault() && Outcome::InvalidKey.is_key_fault());
    assert!(Outcome::Overloaded.is_transient() && Outcome::ServerError.is_transient());
    assert!(!Outcome::ClientError.is_key_fault() && !Outcome::TooLarge.is_transient());
}

#[test]
fn hostile_error_bodies_classify_within_bounds() {
    for depth in [1_000, 100_000] {
        for (open, close) in [("[", "]"), (r#"{"error":"#, "}")] {
            let body = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            assert_eq!(outcome(429, &body), Outcome::RateLimited, "nested {depth}");
            assert_eq!(outcome(500, &body), Outcome::ServerError);
            // Cut off part-way, as a bounded peek would leave it.
            assert_eq!(outcome(429, &body[..body.len() / 2]), Outcome::RateLimited);
        }
    }
    // Only the first ERROR_BODY_LIMIT bytes count: quota wording after them is not seen.
    let padded = format!("{}insufficient_quota", " ".repeat(classify::ERROR_BODY_LIMIT));
    assert_eq!(outcome(429, &padded), Outcome::RateLimited);
    assert_eq!(outcome(429, "insufficient_quota"), Outcome::QuotaExhausted);
    // Not UTF-8, and a retryDelay far beyond the horizon.
    assert_eq!(classify(429, &HeaderMap::new(), &[0xff, 0xfe, 0x00], NOW).outcome, Outcome::RateLimited);
    let gemini = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"99999999999999999999s"}]}}"#;
    let v = verdict(429, gemini, &[]);
    assert_eq!(v.limits.retry_after_ms, Some(limits::TIME_HORIZON_MS));
}
