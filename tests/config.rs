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
    assert_eq!(methods, ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
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
    fails(r#"{"upstream_base_url":"https://x.com","keys":["sk-ключ"]}"#, "keys[0].value", "printable ASCII");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["sk-\u00e9t\u00e9"]}"#, "keys[0].value", "printable ASCII");
    fails(r#"{"upstream_base_url":"https://x.com","keys":["sk a"]}"#, "keys[0].value", "no spaces");
    fails(r#"{"upstream_base_url":"https://x.com","keys":[{"id":"","value":"k"}]}"#, "keys[0].id", "printable");
    fails(r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","weight":0}]}"#, "keys[0].weight", "between");
    fails(r#"{"upstream_base_url":"ftp://x.com","keys":["k"]}"#, "upstream_base_url", "http");
    fails(r#"{"upstream_base_url":"api.openai.com","keys":["k"]}"#, "upstream_base_url", "absolute");
    fails(r#"{"upstream_base_url":"https://u:p@x.com","keys":["k"]}"#, "upstream_base_url", "credentials");
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":1000}"#,
        "retry_attempts",
        "expected a whole number between 0 and 100, got 1000",
    );
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":-1}"#,
        "retry_attempts",
        "expected a whole number between 0 and 100, got -1",
    );
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":1.5}"#,
        "retry_attempts",
        "expected a whole number between 0 and 100, got 1.5",
    );
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"cooldown_seconds":1e30}"#, "cooldown_seconds", "between 1 and 31622400");
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"maxWaitMs":"soon"}"#,
        "maxWaitMs",
        "expected a whole number between 0 and 3600000, got a string",
    );
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","monthly_quota":1e300}]}"#,
        "keys[0].monthly_quota",
        "between 0 and 9007199254740991",
    );
    fails(
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"default_headers":{"x-a":"caf\u00e9"}}"#,
        "default_headers",
        "printable ASCII",
    );
    fails(r#"{"upstream_base_url":"https://x.com","keys":["k"],"auth_scheme":"B\u00e9arer"}"#, "auth_scheme", "one word");
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
    assert!(err.problem.contains("got `fastest`") && err.problem.contains("round_robin"), "{err}");
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retry_attempts":-2}"#).unwrap_err();
    assert_eq!(err.field, "retry_attempts");
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"retryAttemps":2}"#).unwrap_err();
    assert_eq!((err.field.as_str(), err.problem.as_str()), ("retryAttemps", "is not a known field; did you mean `retryAttempts`?"));
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":[42]}"#).unwrap_err();
    assert_eq!(err.field, "keys[0]");
    assert!(err.problem.contains("a key string or an object") && err.problem.contains("quoted"), "{err}");
    let err = parse(r#"{"keys":["k"]}"#).unwrap_err();
    assert_eq!((err.field.as_str(), err.problem.as_str()), ("upstream_base_url", "is required"));
}

#[test]
fn unknown_fields_are_named_with_the_nearest_known_one() {
    for (given, nearest) in [
        ("retryAttemps", "retryAttempts"),
        ("retry_attemps", "retry_attempts"),
        ("maxRetries", "retryAttempts"),
        ("max_retries", "retry_attempts"),
        ("timeout", "requestTimeoutMs"),
        ("baseURL", "upstreamBaseUrl"),
        ("cooldownSecs", "cooldownSeconds"),
        ("headers", "defaultHeaders"),
    ] {
        let err = parse(&format!(r#"{{"upstream_base_url":"https://x.com","keys":["k"],"{given}":1}}"#)).unwrap_err();
        assert_eq!(err.field, given);
        assert_eq!(err.problem, format!("is not a known field; did you mean `{nearest}`?"));
    }
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","monthlyQuotta":1}]}"#).unwrap_err();
    assert_eq!((err.field.as_str(), err.problem.as_str()), ("keys[0].monthlyQuotta", "is not a known field; did you mean `monthlyQuota`?"));
    let err = parse(r#"{"upstream_base_url":"https://x.com","keys":["k"],"zzzzzz":1}"#).unwrap_err();
    assert!(
        err.problem.starts_with("is not a known field (expected one of `upstreamBaseUrl`, `keys`, `strategy`, `retryAttempts`,"),
        "{err}"
    );
}

#[test]
fn metadata_is_bounded_in_depth_and_size() {
    let deep = |n: usize| {
        format!(r#"{{"upstream_base_url":"https://x.com","keys":[{{"value":"k","metadata":{}1{}}}]}}"#, r#"{"a":"#.repeat(n), "}".repeat(n))
    };
    check(&deep(config::METADATA_MAX_DEPTH)).expect("32 levels are fine");
    fails(&deep(config::METADATA_MAX_DEPTH + 1), "keys[0].metadata", "deeper than 32");
    // Far deeper than serde_json's own limit: refused as a parse error, not a stack overflow.
    let err = parse(&deep(100_000)).unwrap_err();
    assert!(err.problem.contains("recursion limit"), "{err}");
    let big = format!(r#"{{"upstream_base_url":"https://x.com","keys":[{{"value":"k","metadata":{{"a":"{}"}}}}]}}"#, "x".repeat(20_000));
    fails(&big, "keys[0].metadata", "16384 bytes");
    // Status hands metadata to JS: an integer it cannot hold exactly would make status() throw.
    let huge = r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","metadata":{"n":[18446744073709551615]}}]}"#;
    fails(huge, "keys[0].metadata", "2^53");
    check(r#"{"upstream_base_url":"https://x.com","keys":[{"value":"k","metadata":{"n":9007199254740991,"f":1e300,"m":-5}}]}"#).unwrap();
}

#[test]
fn errors_about_keys_never_quote_the_key() {
    for json in [
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","monthly_quota":"sk-secret-2"}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","valu":"sk-secret-2"}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":["sk-secret-1","sk-secret-1"]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":["sk-secret-1\n"]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","sk-secret-2":1}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[{"id":"a","value":"sk-secret-1","weight":"sk-secret-2"}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":["k"],"default_headers":{"x-other":["sk-secret-2"]}}"#,
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

#[test]
fn a_key_of_digits_is_never_echoed() {
    for json in [
        r#"{"upstream_base_url":"https://x.com","keys":[1234567890]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[{"value":1234567890}]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[-1234567890]}"#,
        r#"{"upstream_base_url":"https://x.com","keys":[1234567890.5]}"#,
    ] {
        let err = parse(json).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("1234567890"), "{text}");
        assert!(text.contains("quoted as a string"), "{text}");
    }
    // The same for a key added on its own (the JS `addKey`, the proxy's `POST /keys`).
    for json in ["1234567890", r#"{"value":1234567890}"#, r#"{"value":"k","weight":"sk-secret-1"}"#, r#"{"value":"k","sk-secret-1":1}"#] {
        let de = &mut serde_json::Deserializer::from_str(json);
        let err = ConfigError::from_serde(serde_path_to_error::deserialize::<_, KeyConfig>(de).unwrap_err());
        let text = format!("{err} {err:?}");
        assert!(!text.contains("1234567890") && !text.contains("secret"), "{text}");
    }
}
