//! Provider rate-limit headers, read into one report per response.
//!
//! OpenAI and Groq send `x-ratelimit-remaining-*` with Go-duration resets (`6m0s`, `7.66s`),
//! Anthropic sends `anthropic-ratelimit-*-remaining` with RFC 3339 resets, the IETF draft and
//! many others send `ratelimit-remaining`/`ratelimit-reset` in seconds, and `retry-after`
//! is seconds or an HTTP-date (`retry-after-ms` is milliseconds).

use http::HeaderMap;

/// The furthest ahead any time a provider (or a shared snapshot) gives is believed: 30 days.
///
/// A reset or `retry-after` further out is read as this horizon. No real limit resets later
/// than a month, and a bounded horizon keeps every time the core stores within a few years of
/// the clock, so time arithmetic cannot overflow and every time can be formatted as a date.
pub const TIME_HORIZON_MS: u64 = 30 * 24 * 3600 * 1000;

/// The largest counter value reported: JS numbers are exact up to 2^53 − 1.
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// Longest header value parsed as a number, duration or date; longer ones are ignored.
const MAX_VALUE_LEN: usize = 64;

/// A delay from a provider, capped at the horizon.
pub fn clamp_delay(ms: u64) -> u64 {
    ms.min(TIME_HORIZON_MS)
}

/// An absolute time from outside, capped at `now` plus the horizon.
pub fn clamp_at(at_ms: u64, now_ms: u64) -> u64 {
    at_ms.min(now_ms.saturating_add(TIME_HORIZON_MS))
}

/// Seconds (integer or decimal, non-negative, finite) as whole milliseconds rounded up,
/// saturating (an `f64` to `u64` cast saturates).
fn seconds_to_ms(secs: f64) -> Option<u64> {
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64)
}

/// What one response said about its key's limits. Times are epoch milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsReport {
    pub remaining_requests: Option<u64>,
    pub requests_reset_at: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub tokens_reset_at: Option<u64>,
    /// Delay the provider asked for before the next try.
    pub retry_after_ms: Option<u64>,
}

/// Every response header the core reads. A binding that copies headers out of its host's
/// response object copies only these (reading all of them costs more in Node's fetch).
pub const LIMIT_HEADERS: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-remaining",
    "ratelimit-reset",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
];

/// A response's headers as the limit readers look in them: with the first letters of the names
/// present, so a name whose first letter is absent is not looked for (an answer mostly carries
/// one provider's family: `x-ratelimit-…`, `anthropic-…`).
struct Present<'a> {
    map: &'a HeaderMap,
    firsts: u32,
}

/// `name`'s first byte as a bit (names are lower case; the same first byte gives the same bit).
fn first_bit(name: &str) -> u32 {
    name.as_bytes().first().map_or(0, |b| 1 << (b & 31))
}

impl<'a> Present<'a> {
    fn new(map: &'a HeaderMap) -> Self {
        Self { map, firsts: map.keys().fold(0, |bits, n| bits | first_bit(n.as_str())) }
    }
}

fn header<'a>(h: &Present<'a>, name: &str) -> Option<&'a str> {
    // Tests run every header kind in debug builds, so a name missing from the list fails them.
    debug_assert!(LIMIT_HEADERS.contains(&name), "{name} is read but not in LIMIT_HEADERS");
    if h.firsts & first_bit(name) == 0 {
        return None;
    }
    let h = h.map;
    // A binding passes only the limit headers, mostly none to a few: comparing names is
    // cheaper there than a lookup, which parses and hashes `name` each time.
    let value = if h.len() <= 8 { h.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v) } else { h.get(name) };
    value.and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| v.len() <= MAX_VALUE_LEN)
}

/// A remaining count, at most [`MAX_COUNT`] (it is reported to JS as a number).
fn number(h: &Present<'_>, name: &str) -> Option<u64> {
    let v = header(h, name)?;
    let n = v.parse::<u64>().ok().or_else(|| v.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))?;
    Some(n.min(MAX_COUNT))
}

pub(crate) fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Reads every limit header this crate knows.
pub fn read_limits(h: &HeaderMap, now_ms: u64) -> LimitsReport {
    if h.is_empty() {
        return LimitsReport::default(); // the binding passes only limit headers: often none
    }
    let h = &Present::new(h);
    let go_reset = |name| header(h, name).and_then(parse_go_duration).map(|d| now_ms.saturating_add(clamp_delay(d)));
    let rfc_reset = |name| header(h, name).and_then(parse_rfc3339_ms).map(|at| clamp_at(at, now_ms));
    let delta_or_epoch = |name| header(h, name).and_then(|v| parse_seconds_or_epoch(v, now_ms)).map(|at| clamp_at(at, now_ms));

    let remaining_requests = number(h, "x-ratelimit-remaining-requests")
        .or_else(|| number(h, "anthropic-ratelimit-requests-remaining"))
        .or_else(|| number(h, "ratelimit-remaining"))
        .or_else(|| number(h, "x-ratelimit-remaining"));
    let requests_reset_at = go_reset("x-ratelimit-reset-requests")
        .or_else(|| rfc_reset("anthropic-ratelimit-requests-reset"))
        .or_else(|| delta_or_epoch("ratelimit-reset"))
        .or_else(|| delta_or_epoch("x-ratelimit-reset"));
    let remaining_tokens = min_opt(
        number(h, "x-ratelimit-remaining-tokens"),
        min_opt(
            number(h, "anthropic-ratelimit-tokens-remaining"),
            min_opt(number(h, "anthropic-ratelimit-input-tokens-remaining"), number(h, "anthropic-ratelimit-output-tokens-remaining")),
        ),
    );
    let tokens_reset_at = max_opt(
        go_reset("x-ratelimit-reset-tokens"),
        max_opt(
            rfc_reset("anthropic-ratelimit-tokens-reset"),
            max_opt(rfc_reset("anthropic-ratelimit-input-tokens-reset"), rfc_reset("anthropic-ratelimit-output-tokens-reset")),
        ),
    );
    let retry_after_ms = header(h, "retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f >= 0.0)
        .map(|f| f.ceil() as u64)
        .or_else(|| header(h, "retry-after").and_then(|v| parse_retry_after(v, now_ms)))
        .map(clamp_delay);
    LimitsReport { remaining_requests, requests_reset_at, remaining_tokens, tokens_reset_at, retry_after_ms }
}

/// `retry-after`: delay in seconds (integer or decimal) or an HTTP-date; returns a delay in ms,
/// at most [`TIME_HORIZON_MS`]. A date in the past (even before 1970) is no delay.
pub fn parse_retry_after(v: &str, now_ms: u64) -> Option<u64> {
    if let Ok(secs) = v.parse::<f64>() {
        return seconds_to_ms(secs).map(clamp_delay);
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Some(clamp_delay(at_ms.saturating_sub(now_ms)))
}

/// Go's `time.Duration` text (`1h2m3.5s`, `450ms`, `20us`, `0s`), or a bare number of seconds.
/// Returns milliseconds, rounded up so a reset is never reported early; huge values saturate
/// (callers cap them at [`TIME_HORIZON_MS`]).
pub fn parse_go_duration(v: &str) -> Option<u64> {
    if let Ok(secs) = v.parse::<f64>() {
        return seconds_to_ms(secs);
    }
    let mut rest = v;
    let mut total_ms = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at_checked(num_len)?;
        let n: f64 = num.parse().ok()?; // an empty number fails here
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at_checked(unit_len)?;
        rest = tail;
        let scale = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total_ms += n * scale;
    }
    (total_ms.is_finite()).then(|| total_ms.ceil() as u64)
}

/// RFC 3339 timestamp to epoch ms (uncapped; [`read_limits`] caps it). A time before 1970 is 0.
pub fn parse_rfc3339_ms(v: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(v.trim_end_matches('Z')).ok().or_else(|| humantime::parse_rfc3339(v).ok())?;
    Some(t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// A reset given as seconds from now, or (when it is clearly a date) as epoch seconds.
fn parse_seconds_or_epoch(v: &str, now_ms: u64) -> Option<u64> {
    let n: f64 = v.parse().ok().filter(|f: &f64| f.is_finite() && *f >= 0.0)?;
    let ms = seconds_to_ms(n)?;
    if n > 1_000_000_000.0 {
        Some(ms)
    } else {
        Some(now_ms.saturating_add(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("6m0s"), Some(360_000));
        assert_eq!(parse_go_duration("7.66s"), Some(7_660));
        assert_eq!(parse_go_duration("2m59.56s"), Some(179_560));
        assert_eq!(parse_go_duration("17ms"), Some(17));
        assert_eq!(parse_go_duration("1h"), Some(3_600_000));
        assert_eq!(parse_go_duration("0s"), Some(0));
        assert_eq!(parse_go_duration("1.5"), Some(1_500));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn openai_and_groq_headers() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1m30s"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-tokens", "6ms"),
        ]);
        let r = read_limits(&h, 1_000);
        assert_eq!(r.remaining_requests, Some(0));
        assert_eq!(r.requests_reset_at, Some(91_000));
        assert_eq!(r.remaining_tokens, Some(149_984));
        assert_eq!(r.tokens_reset_at, Some(1_006));
        assert_eq!(r.retry_after_ms, None);
    }

    #[test]
    fn anthropic_headers() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "4"),
            ("anthropic-ratelimit-requests-reset", "2024-06-01T00:00:30Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "900"),
            ("anthropic-ratelimit-output-tokens-remaining", "120"),
            ("anthropic-ratelimit-output-tokens-reset", "2024-06-01T00:00:10Z"),
        ]);
        let r = read_limits(&h, 1_717_200_000_000);
        assert_eq!(r.remaining_requests, Some(4));
        assert_eq!(r.requests_reset_at, Some(1_717_200_030_000));
        assert_eq!(r.remaining_tokens, Some(120));
        assert_eq!(r.tokens_reset_at, Some(1_717_200_010_000));
    }

    #[test]
    fn retry_after_forms() {
        let now = 1_717_200_000_000; // 2024-06-01T00:00:00Z
        assert_eq!(read_limits(&headers(&[("retry-after", "20")]), now).retry_after_ms, Some(20_000));
        assert_eq!(read_limits(&headers(&[("retry-after", "0.5")]), now).retry_after_ms, Some(500));
        assert_eq!(read_limits(&headers(&[("retry-after", "Sat, 01 Jun 2024 00:00:42 GMT")]), now).retry_after_ms, Some(42_000));
        assert_eq!(read_limits(&headers(&[("retry-after-ms", "1234.5"), ("retry-after", "9")]), now).retry_after_ms, Some(1_235));
        assert_eq!(read_limits(&headers(&[("retry-after", "whenever")]), now).retry_after_ms, None);
    }

    #[test]
    fn ietf_style_reset_in_seconds_or_epoch() {
        let r = read_limits(&headers(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "12")]), 5_000);
        assert_eq!((r.remaining_requests, r.requests_reset_at), (Some(3), Some(17_000)));
        let r = read_limits(&headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1717200000")]), 1_717_100_000_000);
        assert_eq!((r.remaining_requests, r.requests_reset_at), (Some(0), Some(1_717_200_000_000)));
    }

    #[test]
    fn provider_times_are_capped_at_the_horizon() {
        let now = 1_717_200_000_000;
        let cap = now + TIME_HORIZON_MS;
        let ra = |pairs: &[(&'static str, &str)]| read_limits(&headers(pairs), now).retry_after_ms;
        assert_eq!(ra(&[("retry-after", "1e12")]), Some(TIME_HORIZON_MS));
        assert_eq!(ra(&[("retry-after", "1e17")]), Some(TIME_HORIZON_MS));
        assert_eq!(ra(&[("retry-after", "1e400")]), None);
        assert_eq!(ra(&[("retry-after-ms", "1e16")]), Some(TIME_HORIZON_MS));
        assert_eq!(ra(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]), Some(TIME_HORIZON_MS));
        assert_eq!(ra(&[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]), Some(0));
        let r = read_limits(&headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "99999999h")]), now);
        assert_eq!(r.requests_reset_at, Some(cap));
        let r = read_limits(
            &headers(&[("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", "99999999999999999999999999999h1s")]),
            now,
        );
        assert_eq!(r.tokens_reset_at, Some(cap));
        let r = read_limits(
            &headers(&[("anthropic-ratelimit-requests-remaining", "0"), ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z")]),
            now,
        );
        assert_eq!(r.requests_reset_at, Some(cap));
        let r = read_limits(&headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "1e300")]), now);
        assert_eq!(r.requests_reset_at, Some(cap));
        let r = read_limits(&headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "999999999")]), u64::MAX);
        assert_eq!(r.requests_reset_at, Some(u64::MAX));
        let r = read_limits(&headers(&[("ratelimit-remaining", "99999999999999999999999")]), now);
        assert_eq!(r.remaining_requests, Some(MAX_COUNT));
    }
}
