//! The wire between the wasm pool and its JS driver (`js/src/task.js`): the one place that
//! says how the request machine's actions travel to JS and how JS reports back.
//!
//! A *step* is JSON text: `[task, record, record, …]`, the task it belongs to first, then one
//! record per action, each an array led by a numeric op code:
//!
//! | record                                                     | the driver must                              |
//! |------------------------------------------------------------|----------------------------------------------|
//! | `[SEND, attempt, method, url, cancellable, {name: value, …}, keyId]` | send (the body is the caller's, kept in JS) |
//! | `[PEEK, attempt, limit]`                                   | read up to `limit` bytes of that error body   |
//! | `[DISCARD, attempt]`                                       | abort it, stop reading, release its response  |
//! | `[TIMER, ms]`                                              | (re)set the task's one timer; `-1` clears it  |
//! | `[DONE, attempt, keyId, attempts, outcome, retryAt\|null]` | resolve with that attempt's response          |
//! | `[FAIL, kind, message, keyId\|null, retryAt\|null, afterMs\|null]` | reject with that error            |
//!
//! JS reports with typed arguments (`sent(task, attempt, status)`, `failed(task, attempt,
//! failure, message)`, `peeked(task, attempt, bytes)`, `fired(task)`); header and query pairs
//! cross as a JSON array of strings (`undefined` or `""` for none). A response's rate-limit
//! headers go just before its `sent`, one `limit(index, value)` each ([`limit_header`], at
//! most [`MAX_LIMITS`]): no string of them is assembled in JS, and names need no parsing. The
//! pool holds them for the next `sent` of any task, so the driver makes these calls back to
//! back with that `sent`; a driver that fails between them cancels its task, which drops
//! them. JSON carries every string a
//! caller may legally send, so no value is refused for the encoding's sake, and `JSON.parse`
//! is among the fastest things V8 does. [`constants`] gives JS every number above, once.
//!
//! The common answer skips the step: when `sent` ends the call with a plain success on the
//! attempt it reports (the step would be `[DONE, attempt, keyId, attempts, "success", null]`,
//! after DISCARDs of earlier attempts at most, which the end of a call releases anyway),
//! `sent` returns `attempts` (≥ 1) instead, and the driver resolves with the key id its SEND
//! record carried. Otherwise it returns 0 and the step is taken with `takeStep()`. No string
//! crosses and nothing is parsed for a request that succeeds.

use http::{HeaderName, HeaderValue};

use crate::core::limits::LIMIT_HEADERS;
use crate::core::{Action, FailureKind, Finished, Outcome, PoolError};

/// Bumped whenever a record's layout changes; the driver refuses a wasm of another version.
pub const VERSION: u32 = 4;

/// Op codes: the first element of every record.
pub mod op {
    pub const SEND: u8 = 1;
    pub const PEEK: u8 = 2;
    pub const DISCARD: u8 = 3;
    pub const TIMER: u8 = 4;
    pub const DONE: u8 = 5;
    pub const FAIL: u8 = 6;
}

/// What `failed(…, failure, …)` says about a send that got no response.
pub mod failure {
    /// Nothing was sent (DNS, connection refused, connect timeout).
    pub const CONNECT: u8 = 1;
    /// It may have been received.
    pub const AMBIGUOUS: u8 = 2;
}

/// The failure kind a driver reported; anything unknown counts as ambiguous (the safe side).
pub fn failure_kind(code: u8) -> FailureKind {
    match code {
        failure::CONNECT => FailureKind::Connect,
        _ => FailureKind::Ambiguous,
    }
}

/// Everything the driver needs to know of the wire, as JSON: version, op codes, failure
/// kinds and the response headers the core reads (the driver copies only those).
pub fn constants() -> String {
    serde_json::json!({
        "version": VERSION,
        "op": { "send": op::SEND, "peek": op::PEEK, "discard": op::DISCARD, "timer": op::TIMER, "done": op::DONE, "fail": op::FAIL },
        "failure": { "connect": failure::CONNECT, "ambiguous": failure::AMBIGUOUS },
        "limitHeaders": LIMIT_HEADERS,
        "success": Outcome::Success.as_str(),
    })
    .to_string()
}

/// What `sent` returns instead of a step when `actions` end the call with a plain success on
/// `attempt` (see the module's header): the call's attempt count.
pub fn plain_success(actions: &[Action], attempt: u32) -> Option<u32> {
    let (last, before) = actions.split_last()?;
    if !before.iter().all(|a| matches!(a, Action::Discard { .. })) {
        return None;
    }
    match last {
        Action::Done(Ok(d)) if d.attempt == attempt && d.outcome == Outcome::Success && d.retry_at_ms.is_none() => Some(d.attempts.max(1)),
        _ => None,
    }
}

/// A header value as text: values came from UTF-8 text (the caller's, the config's, the key's).
fn text_of(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// What happens to the task's timer in this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    Keep,
    /// Fire in this many ms.
    Set(u64),
    Clear,
}

/// One step of task `task`: its actions and its timer.
pub struct Step {
    out: Vec<u8>,
}

impl Step {
    pub fn new(task: u32) -> Self {
        let mut step = Self { out: Vec::with_capacity(160) };
        step.out.push(b'[');
        step.digits(u64::from(task));
        step
    }

    fn string(&mut self, s: &str) {
        // What JSON escapes: quotes, backslashes and control characters. Most strings (URLs,
        // ids, header values) have none and are copied as they are.
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.out.push(b'"');
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'"');
        } else {
            // serde_json escapes them; nothing is refused.
            let _ = serde_json::to_writer(&mut self.out, s);
        }
    }

    fn value(&mut self, value: &HeaderValue) {
        match value.to_str() {
            Ok(v) => self.string(v),
            Err(_) => self.string(&text_of(value)),
        }
    }

    /// `,n`.
    fn num(&mut self, n: u64) {
        self.out.push(b',');
        self.digits(n);
    }

    /// A number's digits, written without the formatting machinery (this runs on every step).
    fn digits(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        while let Some(d) = at.checked_sub(1).and_then(|i| digits.get_mut(i)) {
            *d = b'0' + (rest % 10) as u8;
            at -= 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.out.extend_from_slice(digits.get(at..).unwrap_or_default());
    }

    /// `,[op`: a record's start.
    fn record(&mut self, op: u8) {
        self.out.extend_from_slice(b",[");
        self.digits(u64::from(op));
    }

    fn opt(&mut self, n: Option<u64>) {
        match n {
            Some(n) => self.num(n),
            None => self.out.extend_from_slice(b",null"),
        }
    }

    pub fn action(&mut self, action: &Action) {
        match action {
            Action::Send { attempt, key_id, request } => {
                self.record(op::SEND);
                self.num(u64::from(*attempt));
                self.out.push(b',');
                self.string(request.method.as_str());
                self.out.push(b',');
                self.string(&request.url);
                self.num(u64::from(request.cancellable));
                // The headers as the record fetch and undici take, a repeated name's values
                // joined as fetch joins them: JSON.parse builds it (a `__proto__` name is an
                // own property there, never the prototype).
                self.out.extend_from_slice(b",{");
                // One walk of the map: a repeated name's values come one after another.
                let mut entries = request.headers.iter().peekable();
                let mut first = true;
                while let Some((name, value)) = entries.next() {
                    if !first {
                        self.out.push(b',');
                    }
                    first = false;
                    self.string(name.as_str());
                    self.out.push(b':');
                    if entries.peek().is_some_and(|(next, _)| *next == name) {
                        let mut joined = text_of(value);
                        while let Some((_, more)) = entries.next_if(|(next, _)| *next == name) {
                            joined.push_str(", ");
                            joined.push_str(&text_of(more));
                        }
                        self.string(&joined);
                    } else {
                        self.value(value);
                    }
                }
                self.out.extend_from_slice(b"},");
                self.string(key_id);
                self.out.push(b']');
            }
            Action::Peek { attempt, limit } => {
                self.record(op::PEEK);
                self.num(u64::from(*attempt));
                self.num(u64::try_from(*limit).unwrap_or(u64::MAX));
                self.out.push(b']');
            }
            Action::Discard { attempt } => {
                self.record(op::DISCARD);
                self.num(u64::from(*attempt));
                self.out.push(b']');
            }
            Action::Done(Ok(done)) => self.done(done),
            Action::Done(Err(e)) => self.fail(e),
        }
    }

    fn done(&mut self, d: &Finished) {
        self.record(op::DONE);
        self.num(u64::from(d.attempt));
        self.out.push(b',');
        self.string(&d.key_id);
        self.num(u64::from(d.attempts));
        self.out.push(b',');
        self.string(d.outcome.as_str());
        self.opt(d.retry_at_ms);
        self.out.push(b']');
    }

    fn fail(&mut self, e: &PoolError) {
        let (key_id, retry_at, after_ms) = match e {
            PoolError::Network { key_id, .. } => (Some(key_id.as_str()), None, None),
            PoolError::Timeout { key_id, after_ms } => (Some(key_id.as_str()), None, Some(*after_ms)),
            PoolError::NoHealthyKeys { retry_at_ms } => (None, *retry_at_ms, None),
            _ => (None, None, None),
        };
        self.record(op::FAIL);
        self.out.push(b',');
        self.string(e.kind());
        self.out.push(b',');
        self.string(&e.to_string());
        match key_id {
            Some(id) => {
                self.out.push(b',');
                self.string(id);
            }
            None => self.out.extend_from_slice(b",null"),
        }
        self.opt(retry_at);
        self.opt(after_ms);
        self.out.push(b']');
    }

    pub fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::Keep => {}
            Timer::Set(ms) => {
                self.record(op::TIMER);
                self.num(ms);
                self.out.push(b']');
            }
            Timer::Clear => {
                self.record(op::TIMER);
                self.out.extend_from_slice(b",-1]");
            }
        }
    }

    pub fn finish(mut self) -> String {
        self.out.push(b']');
        // Only JSON text and escaped strings were written.
        String::from_utf8(self.out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// `["name", "value", …]` pairs from JS (headers, query); `""` is none.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>, PoolError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    // from_slice, as the core's body parsing does: one instance of serde_json's parser in the wasm.
    let flat: Vec<String> =
        serde_json::from_slice(text.as_bytes()).map_err(|_| PoolError::InvalidRequest("name/value pairs must be strings".to_owned()))?;
    if flat.len() % 2 != 0 {
        return Err(PoolError::InvalidRequest("name/value pairs must come in twos".to_owned()));
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(n), Some(v)) = (it.next(), it.next()) {
        out.push((n, v));
    }
    Ok(out)
}

/// The most rate-limit headers one response reports (every name of [`LIMIT_HEADERS`] a few
/// times over): a driver that reports more is not heard past it.
pub const MAX_LIMITS: usize = 64;

/// One rate-limit header of a response as the driver reports it: `index` names it in
/// [`LIMIT_HEADERS`], so names need no parsing or checking. None for an index not in the list
/// or a value that is not a valid header value: the response itself is still good.
pub fn limit_header(index: u32, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let name = LIMIT_HEADERS.get(usize::try_from(index).ok()?)?;
    Some((HeaderName::from_static(name), HeaderValue::from_str(value).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{HttpRequest, Outcome};
    use http::HeaderMap;
    use http::Method;
    use serde_json::{json, Value};

    fn step(actions: &[Action], timer: Timer) -> Value {
        let mut s = Step::new(7);
        for a in actions {
            s.action(a);
        }
        s.timer(timer);
        serde_json::from_str(&s.finish()).expect("a step is JSON")
    }

    /// Every string a caller may legally send, including the old format's separators.
    const AWKWARD: &str = "a\u{1e}b\u{1f}c \"q\" \\ é 日本 \t";
    /// The same, as far as a header value may go (no control characters but tab).
    const HEADER_AWKWARD: &str = "\"q\" \\ é 日本 \t ,;";

    #[test]
    fn every_record_round_trips_with_any_legal_value() {
        let mut headers = HeaderMap::new();
        headers.append("x-note", HeaderValue::from_str(HEADER_AWKWARD).unwrap());
        headers.append("x-note", HeaderValue::from_static("two"));
        let mut auth = HeaderValue::from_static("Bearer sk-test");
        auth.set_sensitive(true);
        headers.append("authorization", auth);
        let url = format!("https://api.example.com/v1/x?q={}", "%1E%1F");
        let request = HttpRequest { method: Method::PATCH, url: url.clone(), headers, body: None, cancellable: true };
        let done = Finished {
            attempt: 3,
            key_id: AWKWARD.to_owned(),
            attempts: 3,
            outcome: Outcome::RateLimited,
            retry_at_ms: Some(1_717_200_030_000),
        };
        let actions = [
            Action::Send { attempt: 2, key_id: AWKWARD.to_owned(), request },
            Action::Peek { attempt: 2, limit: 65_536 },
            Action::Discard { attempt: 1 },
            Action::Done(Ok(done)),
        ];
        let v = step(&actions, Timer::Set(1_500));
        assert_eq!(
            v,
            json!([
                7,
                [op::SEND, 2, "PATCH", url, 1, { "x-note": format!("{HEADER_AWKWARD}, two"), "authorization": "Bearer sk-test" }, AWKWARD],
                [op::PEEK, 2, 65_536],
                [op::DISCARD, 1],
                [op::DONE, 3, AWKWARD, 3, "rate_limited", 1_717_200_030_000u64],
                [op::TIMER, 1_500]
            ])
        );
    }

    #[test]
    fn only_a_plain_success_on_the_reported_attempt_skips_the_step() {
        let done =
            |attempt, outcome, retry_at_ms| Action::Done(Ok(Finished { attempt, key_id: "k".into(), attempts: 2, outcome, retry_at_ms }));
        assert_eq!(plain_success(&[done(2, Outcome::Success, None)], 2), Some(2));
        // Earlier attempts' discards may come first: the end of the call releases them.
        assert_eq!(plain_success(&[Action::Discard { attempt: 1 }, done(2, Outcome::Success, None)], 2), Some(2));
        assert_eq!(plain_success(&[], 2), None);
        assert_eq!(plain_success(&[done(1, Outcome::Success, None)], 2), None, "another attempt's answer");
        assert_eq!(plain_success(&[done(2, Outcome::RateLimited, None)], 2), None);
        assert_eq!(plain_success(&[done(2, Outcome::Success, Some(5))], 2), None);
        assert_eq!(plain_success(&[Action::Discard { attempt: 2 }], 2), None);
        assert_eq!(plain_success(&[Action::Peek { attempt: 1, limit: 1 }, done(2, Outcome::Success, None)], 2), None);
        assert_eq!(plain_success(&[Action::Done(Err(PoolError::NoHealthyKeys { retry_at_ms: None }))], 2), None);
        let c: Value = serde_json::from_str(&constants()).unwrap();
        assert_eq!(c["success"], json!("success"));
    }

    #[test]
    fn failures_carry_their_kind_and_fields_and_the_timer_can_be_kept_or_cleared() {
        let v = step(&[Action::Done(Err(PoolError::Timeout { key_id: "k".into(), after_ms: 50 }))], Timer::Clear);
        assert_eq!(v, json!([7, [op::FAIL, "timeout", "timed out after 50 ms on key k", "k", null, 50], [op::TIMER, -1]]));
        let v = step(&[Action::Done(Err(PoolError::NoHealthyKeys { retry_at_ms: None }))], Timer::Keep);
        assert_eq!(v[1][0], json!(op::FAIL));
        assert_eq!((&v[1][1], &v[1][3], &v[1][4]), (&json!("no_healthy_keys"), &Value::Null, &Value::Null));
        assert_eq!(step(&[], Timer::Keep), json!([7]));
        // Numbers are written digit by digit: both ends of the range.
        assert_eq!(step(&[], Timer::Set(0)), json!([7, [op::TIMER, 0]]));
        assert_eq!(step(&[], Timer::Set(u64::MAX)), json!([7, [op::TIMER, u64::MAX]]));
        assert_eq!(Step::new(0).finish(), "[0]");
        assert_eq!(Step::new(u32::MAX).finish(), format!("[{}]", u32::MAX));
    }

    #[test]
    fn pairs_from_js_carry_separators_and_refuse_what_is_not_pairs() {
        let text = serde_json::to_string(&["q", AWKWARD, "x", ""]).unwrap();
        assert_eq!(pairs(&text).unwrap(), [("q".to_owned(), AWKWARD.to_owned()), ("x".to_owned(), String::new())]);
        assert_eq!(pairs("").unwrap(), []);
        for bad in ["[\"odd\"]", "[1,2]", "{}", "not json", "[\"a\",null]"] {
            assert_eq!(pairs(bad).unwrap_err().kind(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn limit_headers_cross_by_index_and_skip_what_is_not_one() {
        let index = |name: &str| LIMIT_HEADERS.iter().position(|n| *n == name).unwrap() as u32;
        let (name, value) = limit_header(index("retry-after"), "3").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("retry-after", "3"));
        assert!(limit_header(LIMIT_HEADERS.len() as u32, "3").is_none());
        assert!(limit_header(u32::MAX, "3").is_none());
        for bad in ["a\nb", "\u{7f}", "x\r"] {
            assert!(limit_header(0, bad).is_none(), "{bad:?}");
        }
        // Every name of the list is one `from_static` accepts (it panics on any other).
        for (i, name) in LIMIT_HEADERS.iter().enumerate() {
            assert_eq!(limit_header(i as u32, "1").unwrap().0.as_str(), *name);
        }
    }

    #[test]
    fn constants_name_every_code_once() {
        let c: Value = serde_json::from_str(&constants()).unwrap();
        assert_eq!(c["version"], json!(VERSION));
        let codes: Vec<u64> = c["op"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).collect();
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!((codes.len(), unique.len()), (6, 6));
        assert_eq!(c["limitHeaders"].as_array().unwrap().len(), LIMIT_HEADERS.len());
        assert_eq!(
            (failure_kind(failure::CONNECT), failure_kind(failure::AMBIGUOUS), failure_kind(99)),
            (FailureKind::Connect, FailureKind::Ambiguous, FailureKind::Ambiguous)
        );
    }
}
