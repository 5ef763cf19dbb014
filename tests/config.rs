//! Config parsing and validation: every rule of the contract, with the field named.

use poolswitch::core::*;

fn parse(json: &str) -> Result<PoolConfig, ConfigError> {
    PoolConfig::from_json(json)
}

fn check(json: &str) -> Result<config::ValidConfig, ConfigError> {
    parse(json)?.validate()
}

fn fails(json: &str, field: &str, words: &str) {
    let err = check(json).expect_err(json);
    assert_eq!(err.field, field, "{json}: {err}");
    assert!(err.problem.contains(words), "{json}: {err}");
    assert!(err.to_string().contains(field));
}

const BASE: &str = r#""upstream_base_url":"https://api.openai.com""#;

#[test]
fn three_key_formats_and_defaults() {
    let c = check(&format!(
        r#"{{{BASE},"keys":["sk-aaa",{{"id":"free-2","value":"sk-bbb","monthly_quota":100}},{{"id":"paid","value":"sk-ccc","metadata":{{"tier":"pro"}},"weight":3}},"sk-ddd"]}}"#
    ))
    .unwrap();
    let ids: Vec<&str> = c.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["key-1", "free-2", "paid", "key-4"]);
    assert_eq!(c.keys[1].monthly_quota, Some(100));
    assert_eq!((c.keys[2].weight, c.keys[2].metadata.as_ref().unwrap()["tier"].as_str()), (3, Some("pro")));
    assert_eq!((c.strategy, c.retry_attempts, c.cooldown_ms), (Strategy::QuotaFailover, 3, 3_600_000));
    assert_eq!((c.auth_header.as_str(), c.auth_scheme.as_deref()), ("authorization", Some("Bearer")));
    let methods: Vec<&str> = c.retryable_methods.iter().map(|m| m.as_str()).collect();
    assert_eq!(methods, ["GET", "HEAD", "OPTIONS", "DELETE", "POST"]);
}

#[test]
fn camel_case_and_snake_case_are_both_accepted() {
    let camel = check(r#"{"upstreamBaseUrl":"https://x.com","keys":[{"id":"a","value":"k1","monthlyQuota":5}],"retryAttempts":1,"cooldownSeconds":60,"authHeaderName":"x-api-key","authScheme":null,"requestTimeoutMs":900,"rateLimitPerSecond":2.5,"retryableMethods":["get"],"defaultHeaders":{"anthropic-version":"2023-06-01"},"queryAuthParam":"key","strategy":"round_robin"}"#).unwrap();
    let snake = check(r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"k1","monthly_quota":5}],"retry_attempts":1,"cooldown_seconds":60,"auth_header_name":"x-api-key","auth_scheme":null,"request_timeout_ms":900,"rate_limit_per_second":2.5,"retryable_methods":["get"],"default_headers":{"anthropic-version":"2023-06-01"},"query_auth_param":"key","strategy":"round_robin"}"#).unwrap();
    assert_eq!(format!("{camel:?}"), format!("{snake:?}"));
    assert_eq!((camel.auth_scheme, camel.request_timeout_ms, camel.keys[0].monthly_quota), (None, Some(900), Some(5)));
    assert_eq!(camel.retryable_methods, vec![http::Method::GET]);
}

#[test]
fn every_rule_names_its_field() {
    fails(r#"{"upstream_base_url":"https://x.com","keys":[]}"#, "keys", "at least one");
    fails(r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"k1"},{"id":"a","value":"k2"}]}"#, "keys[1].id", "duplicate");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k1","k1"]}"#, "keys[1].value", "twice");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["  "]}"#, "keys[0].value", "empty");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["sk-a\u0000b"]}"#, "keys[0].value", "control");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["sk-a\nb"]}"#, "keys[0].value", "control");
    fails(r#"{"upstream_base_url":"https://x.com","keys":[{"id":"","value":"k"}]}"#, "keys[0].id", "printable");
    fails(r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","weight":0}]}"#, "keys[0].weight", "between");
    fails(r#"{"upstream_base_url":"ftp://x.com","keys":["k"]}"#, "upstream_base_url", "http");
    fails(r#"{"upstream_base_url":"api.openai.com","keys":["k"]}"#, "upstream_base_url", "absolute");
    fails(r#"{"upstream_base_url":"https://u:p@x.com","keys":["k"]}"#, "upstream_base_url", "credentials");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":1000}"#, "retry_attempts", "between");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"cooldown_seconds":0}"#, "cooldown_seconds", "between");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"request_timeout_ms":0}"#, "request_timeout_ms", "between");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"rate_limit_per_second":-1}"#, "rate_limit_per_second", "above 0");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"auth_header_name":"bad header"}"#, "auth_header_name", "header name");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retryable_methods":["GE T"]}"#, "retryable_methods", "not an HTTP method");
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"default_headers":{"Authorization":"x"}}"#,
        "default_headers",
        "auth header",
    );
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"backoff_max_ms":1}"#, "backoff_max_ms", "at least");
}

#[test]
fn serde_errors_name_the_field() {
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"strategy":"fastest"}"#).unwrap_err();
    assert_eq!(err.field, "strategy");
    assert!(err.problem.contains("unknown variant `fastest`") && err.problem.contains("round_robin"), "{err}");
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":-2}"#).unwrap_err();
    assert_eq!(err.field, "retry_attempts");
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retryAttemps":2}"#).unwrap_err();
    assert!(err.problem.contains("unknown field `retryAttemps`"), "{err}");
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":[42]}"#).unwrap_err();
    assert_eq!(err.field, "keys[0]");
    assert!(err.problem.contains("a key string or an object"), "{err}");
    let err = parse(r#"{"keys":["k"]}"#).unwrap_err();
    assert!(err.problem.contains("missing field `upstream_base_url`"), "{err}");
}

#[test]
fn errors_about_keys_never_quote_the_key() {
    for json in [
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","monthly_quota":"sk-secret-2"}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","valu":"sk-secret-2"}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":["sk-secret-1","sk-secret-1"]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":["sk-secret-1\n"]}"#,
    ] {
        let err = check(json).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}

#[test]
fn debug_of_a_config_hides_key_values() {
    let c = parse(r#"{"upstream_base_url":"https://x.com","keys":["sk-secret-1"]}"#).unwrap();
    assert!(!format!("{c:?} {:?}", c.validate().unwrap()).contains("sk-secret-1"));
}
