//! Config error wording: serde's messages ("invalid type: integer `-1`, expected u32",
//! "unknown field `retryAttemps`, expected one of …") rewritten the way the JS ecosystem says
//! them ("expected a whole number between 0 and 100, got -1", "did you mean `retryAttempts`?"),
//! with no value quoted from a field that may hold a secret.

/// Names other SDKs and proxies use for our fields (compared lowercase, without `_`/`-`).
const ALIASES: &[(&str, &str)] = &[
    ("maxretries", "retry_attempts"),
    ("retries", "retry_attempts"),
    ("maxattempts", "retry_attempts"),
    ("attempts", "retry_attempts"),
    ("timeout", "request_timeout_ms"),
    ("timeoutms", "request_timeout_ms"),
    ("requesttimeout", "request_timeout_ms"),
    ("deadline", "deadline_ms"),
    ("baseurl", "upstream_base_url"),
    ("url", "upstream_base_url"),
    ("upstream", "upstream_base_url"),
    ("upstreamurl", "upstream_base_url"),
    ("apikeys", "keys"),
    ("apikey", "keys"),
    ("key", "keys"),
    ("headers", "default_headers"),
    ("cooldown", "cooldown_seconds"),
    ("cooldownms", "cooldown_seconds"),
    ("ratelimit", "rate_limit_per_second"),
    ("rps", "rate_limit_per_second"),
    ("maxwait", "max_wait_ms"),
    ("authheader", "auth_header_name"),
    ("header", "auth_header_name"),
    ("scheme", "auth_scheme"),
    ("queryparam", "query_auth_param"),
    ("backoff", "backoff_base_ms"),
    ("name", "id"),
    ("key", "value"),
    ("secret", "value"),
    ("quota", "monthly_quota"),
];

/// Lowercase, without `_` and `-`: `retry_attempts`, `retryAttempts`, `retry-attempts` agree.
/// ASCII case, as in [`camel`]: every field name is ASCII.
fn fold(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

/// `retry_attempts` → `retryAttempts`, `keys[1].monthly_quota` → `keys[1].monthlyQuota`.
/// ASCII case only: field names are ASCII, and Unicode case tables would grow the wasm.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest unknown name compared (longer ones are no typo of a field name).
const MAX_NAME_LEN: usize = 64;

/// The known name closest to `unknown`: an alias from another SDK, or a small edit away.
/// Spelled the way the caller spells (snake_case if they used `_`, camelCase otherwise).
pub(crate) fn suggest(unknown: &str, known: &[&str]) -> Option<String> {
    if unknown.len() > MAX_NAME_LEN {
        return None;
    }
    let folded = fold(unknown);
    let by_alias =
        ALIASES.iter().filter(|(alias, _)| *alias == folded).map(|(_, to)| *to).find(|to| known.iter().any(|k| fold(k) == fold(to)));
    let by_distance = || {
        known
            .iter()
            .map(|k| (strsim::levenshtein(&folded, &fold(k)), *k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 4))
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    };
    let name = by_alias.or_else(by_distance)?;
    // serde lists every accepted spelling; answer in the caller's style when the field has it.
    let snake = unknown.contains('_');
    let spellings = || known.iter().filter(|k| fold(k) == fold(name));
    Some(match spellings().find(|k| k.contains('_') == snake) {
        Some(k) => (*k).to_owned(),
        None if snake => name.to_owned(),
        None => camel(name),
    })
}

/// Backticked words in serde's text, in order: `unknown field `a`, expected one of `b`, `c``.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn leaf(field: &str) -> &str {
    let last = field.rsplit('.').next().unwrap_or(field);
    last.split('[').next().unwrap_or(last)
}

fn parent(field: &str) -> &str {
    match field.rfind('.') {
        Some(i) => field.get(..i).unwrap_or(field),
        None => "config",
    }
}

/// Fields whose values may be secrets: never quoted back.
fn is_secret_path(field: &str) -> bool {
    field.starts_with("keys") || field.contains("default_headers") || field.contains("defaultHeaders")
}

/// serde's name for an expected type, in JS words.
fn expected_words(expected: &str, field: &str) -> String {
    let whole = matches!(expected, "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize");
    if whole || matches!(expected, "f32" | "f64") {
        if let Some((min, max)) = super::config::number_range(leaf(field)) {
            let kind = if whole { "a whole number" } else { "a number" };
            return format!("{kind} between {min} and {max}");
        }
    }
    match expected {
        _ if whole => "a whole number at least 0".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        e if e.starts_with("struct ") => "an object".to_owned(),
        e => e.to_owned(),
    }
}

/// serde's description of what it got, in JS words; only the kind when the field is secret.
fn got_words(unexpected: &str, secret: bool) -> String {
    let literal = ticked(unexpected).first().map(|s| s.to_string()).unwrap_or_default();
    let kind = match unexpected {
        u if u.starts_with("integer") || u.starts_with("floating point") => "a number",
        u if u.starts_with("string") || u.starts_with("character") => "a string",
        u if u.starts_with("boolean") => "a boolean",
        "unit value" | "null" | "Option value" => return "null".to_owned(),
        "sequence" => return "an array".to_owned(),
        "map" => return "an object".to_owned(),
        u => return u.to_owned(),
    };
    if secret {
        return kind.to_owned();
    }
    // A string is never quoted back: the caller cannot know every field that may hold a secret.
    if literal.is_empty() || kind == "a string" {
        kind.to_owned()
    } else {
        literal
    }
}

/// Drops serde_json's ` at line 1 column 23` from a message about a value (kept on syntax errors).
fn without_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(i) => text.get(..i).unwrap_or(text),
        None => text,
    }
}

/// Rewrites one serde error at `field` into `(field, problem)`.
pub(crate) fn describe(field: &str, serde_text: &str) -> (String, String) {
    let secret = is_secret_path(field);
    let text = without_position(serde_text);
    if let Some(rest) = text.strip_prefix("unknown field ") {
        let names = ticked(rest);
        let unknown = names.first().copied().unwrap_or_default();
        let known = names.get(1..).unwrap_or_default();
        let hint = suggest(unknown, known);
        // The path may or may not already end in the unknown name.
        let owner = if leaf(field) == unknown { parent(field) } else { field };
        // A name far from every field might be a pasted secret: named only when it is clearly a typo.
        if (secret || known.contains(&"value")) && hint.is_none() {
            return (owner.to_owned(), format!("has a field that is not known (expected one of {})", list(known)));
        }
        let at = if owner == "config" { unknown.to_owned() } else { format!("{owner}.{unknown}") };
        let problem = match hint {
            Some(h) => format!("is not a known field; did you mean `{h}`?"),
            None => format!("is not a known field (expected one of {})", list(known)),
        };
        return (at, problem);
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let names = ticked(rest);
        let got = names.first().copied().unwrap_or_default();
        let known = names.get(1..).unwrap_or_default();
        let hint = suggest(got, known).map(|h| format!("; did you mean `{h}`?")).unwrap_or_default();
        let got = if secret { String::new() } else { format!(", got `{got}`") };
        return (field.to_owned(), format!("expected one of {}{got}{hint}", list(known)));
    }
    if let Some(rest) = text.strip_prefix("missing field ") {
        let name = ticked(rest).first().copied().unwrap_or_default().to_owned();
        let at = if field == "config" { name } else { format!("{field}.{name}") };
        return (at, "is required".to_owned());
    }
    if let Some(rest) = text.strip_prefix("duplicate field ") {
        let name = ticked(rest).first().copied().unwrap_or_default().to_owned();
        let at = if field == "config" { name } else { format!("{field}.{name}") };
        return (at, "is given twice".to_owned());
    }
    let typed = text.strip_prefix("invalid type: ").or_else(|| text.strip_prefix("invalid value: "));
    if let Some((unexpected, expected)) = typed.and_then(|t| t.split_once(", expected ")) {
        let got = got_words(unexpected, secret);
        let mut problem = format!("expected {}, got {got}", expected_words(expected, field));
        if secret && got == "a number" && matches!(leaf(field), "keys" | "value") {
            problem.push_str(" (a key made of digits must be quoted as a string)");
        }
        return (field.to_owned(), problem);
    }
    // Our own messages and serde_json's syntax errors (which carry a position, not a value).
    let problem = if secret { scrub_quoted(serde_text) } else { serde_text.to_owned() };
    (field.to_owned(), problem)
}

/// serde's list of accepted names, one spelling per field (camelCase, as JS callers write it).
fn list(names: &[&str]) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let folded = fold(n);
        if seen.contains(&folded) {
            continue;
        }
        let camel_spelling = names.iter().find(|k| fold(k) == folded && !k.contains('_')).unwrap_or(n);
        out.push(format!("`{camel_spelling}`"));
        seen.push(folded);
    }
    out.join(", ")
}

/// Anything quoted (`"…"` or `` `…` ``) replaced, for messages about fields that may hold secrets.
fn scrub_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside: Option<char> = None;
    for c in text.chars() {
        match inside {
            Some(q) if c == q => {
                out.push(c);
                inside = None;
            }
            Some(_) => {}
            None if c == '"' || c == '`' => {
                out.push(c);
                out.push_str("<redacted>");
                inside = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["upstream_base_url", "keys", "retry_attempts", "request_timeout_ms", "cooldown_seconds", "max_wait_ms"];

    #[test]
    fn suggests_typos_and_other_sdks_names() {
        assert_eq!(suggest("retryAttemps", FIELDS).as_deref(), Some("retryAttempts"));
        assert_eq!(suggest("retry_attemps", FIELDS).as_deref(), Some("retry_attempts"));
        assert_eq!(suggest("maxRetries", FIELDS).as_deref(), Some("retryAttempts"));
        assert_eq!(suggest("timeout", FIELDS).as_deref(), Some("requestTimeoutMs"));
        assert_eq!(suggest("baseURL", FIELDS).as_deref(), Some("upstreamBaseUrl"));
        assert_eq!(suggest("zzzzzz", FIELDS), None);
        assert_eq!(suggest(&"x".repeat(10_000), FIELDS), None);
    }

    #[test]
    fn rewrites_serde_wording() {
        let (f, p) = describe("retry_attempts", "invalid value: integer `-1`, expected u32 at line 1 column 9");
        assert_eq!((f.as_str(), p.as_str()), ("retry_attempts", "expected a whole number between 0 and 100, got -1"));
        let (f, p) = describe("keys[0]", "invalid type: integer `12345`, expected a key string or an object");
        assert_eq!(f, "keys[0]");
        assert!(!p.contains("12345") && p.contains("quoted"), "{p}");
        let (f, p) = describe("config", "unknown field `retryAttemps`, expected one of `keys`, `retry_attempts`");
        assert_eq!((f.as_str(), p.as_str()), ("retryAttemps", "is not a known field; did you mean `retryAttempts`?"));
        let (f, p) = describe("keys[0]", "unknown field `sk-live-123456`, expected one of `id`, `value`");
        assert_eq!(f, "keys[0]");
        assert!(!p.contains("sk-live"), "{p}");
        assert_eq!(scrub_quoted("bad `sk-1` and \"sk-2\""), "bad `<redacted>` and \"<redacted>\"");
    }
}
