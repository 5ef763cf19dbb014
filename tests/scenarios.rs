//! The one scenario list (`tests/scenarios/scenarios.json`) run natively against the request
//! machine: every data scenario is played through `Call::start`/`poll`/`handle_*` with plain
//! numbers for time (a wait moves the clock to the time the machine names) and no executor,
//! against a small in-test provider that follows `js/mock-provider.js`'s rules for the
//! behaviours the data uses. The rules of the steps and expectations are those of the JS
//! interpreter in `tests/scenarios/scenarios.js`: change both together. Every listed scenario
//! runs here or names why not (`skip.native`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use poolswitch::core::shared::deliver;
use poolswitch::core::*;
use serde::Deserialize;
use serde_json::{json, Value};

const LIST: &str = include_str!("scenarios/scenarios.json");
const ORIGIN: &str = "http://127.0.0.1:8080";
/// The same server under another name, as `$otherOrigin` is on the JS hosts.
const OTHER_ORIGIN: &str = "http://localhost:8080";
const T0: u64 = 1_717_200_000_000; // 2024-06-01T00:00:00Z

// ---- The list ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    #[allow(dead_code)]
    about: Vec<String>,
    scenarios: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    code: bool,
    #[serde(default)]
    skip: BTreeMap<String, String>,
    /// Key id → mock behaviour. Ids are in alphabetical order (the JS side checks), so a map
    /// keeps the list's order.
    #[serde(default)]
    keys: BTreeMap<String, Behaviour>,
    config: Option<Value>,
    steps: Option<Vec<Step>>,
}

/// What a key of the mock provider does (js/mock-provider.js: `quota`, `script`).
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Behaviour {
    quota: Option<u64>,
    #[serde(default)]
    script: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Step {
    #[allow(dead_code)]
    about: Option<String>,
    request: Option<String>,
    json: Option<Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, Value>,
    timeout_ms: Option<u64>,
    repeat: Option<u32>,
    concurrent: Option<u32>,
    client: Option<Value>,
    create: Option<Value>,
    add_key: Option<Value>,
    enable_key: Option<String>,
    disable_key: Option<String>,
    remove_key: Option<String>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    error: Option<ErrorExpect>,
    served_by: Option<String>,
    body: Option<Value>,
    #[serde(default)]
    body_equal: BTreeMap<String, Value>,
    #[serde(default)]
    body_lacks: Vec<String>,
    returns: Option<String>,
    fulfilled: Option<usize>,
    calls: Option<Vec<String>>,
    call_count: Option<usize>,
    #[serde(default)]
    calls_at_least: BTreeMap<String, usize>,
    spread: Option<Spread>,
    #[serde(default)]
    gaps: Vec<Gap>,
    ids: Option<Vec<String>>,
    #[serde(default)]
    status: BTreeMap<String, Value>,
    #[serde(default)]
    cooldown_for: BTreeMap<String, u64>,
    events: Option<EventsExpect>,
    #[serde(default)]
    no_key_values: bool,
    #[serde(default)]
    counters_exact: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ErrorExpect {
    kind: String,
    status: Option<u16>,
    reason: Option<String>,
    key_id: Option<String>,
    attempts: Option<u32>,
    after_ms: Option<u64>,
    field: Option<String>,
    provider_message: Option<String>,
    message_includes: Option<String>,
    retry_at_after_ms: Option<u64>,
    #[serde(default)]
    retry_at_as_before: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spread {
    keys: [String; 2],
    within: Option<usize>,
    more_than_times: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Gap {
    key: Option<String>,
    from: usize,
    to: usize,
    at_least_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsExpect {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    fields: Vec<String>,
    equal: Option<Vec<Vec<Value>>>,
    count: Option<usize>,
    #[serde(default)]
    between: BTreeMap<String, (u64, u64)>,
}

// ---- The provider: js/mock-provider.js's rules -------------------------------------------------

fn error_answer(kind: &str) -> Option<(u16, Value)> {
    Some(match kind {
        "rate_limit" => (
            429,
            json!({ "error": { "message": "Rate limit reached for requests per min (RPM). Please try again in 1s.", "type": "requests", "param": null, "code": "rate_limit_exceeded" } }),
        ),
        "quota" => (
            429,
            json!({ "error": { "message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota" } }),
        ),
        "invalid" => (
            401,
            json!({ "error": { "message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key" } }),
        ),
        "server_error" => {
            (500, json!({ "error": { "message": "The server had an error while processing your request.", "type": "server_error" } }))
        }
        "overloaded" => (529, json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })),
        "bad_request" => (
            400,
            json!({ "error": { "message": "'messages' is a required property", "type": "invalid_request_error", "param": null, "code": null } }),
        ),
        "too_large" => (
            429,
            json!({ "error": { "message": "Request too large for gpt-4o-mini on tokens per min (TPM): Limit 10000, Requested 20000.", "type": "tokens", "code": "rate_limit_exceeded" } }),
        ),
        _ => return None,
    })
}

#[derive(Clone)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

enum Reply {
    Answer {
        answer: Answer,
        delay_ms: u64,
    },
    /// The connection closes with no answer (`drop`).
    Drop,
    /// No answer at all (`hang`): only the machine's timeouts end it.
    Hang,
}

struct MockKey {
    id: String,
    value: String,
    quota: Option<u64>,
    used: u64,
    script: VecDeque<String>,
}

struct Logged {
    key_id: Option<String>,
    at: u64,
}

#[derive(Default)]
struct Provider {
    keys: Vec<MockKey>,
    calls: Vec<Logged>,
}

fn answer(status: u16, body: Value, headers: &[(&str, String)]) -> Answer {
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        map.insert(HeaderName::from_bytes(k.as_bytes()).expect("header name"), HeaderValue::from_str(v).expect("header value"));
    }
    Answer { status, headers: map, body: body.to_string().into_bytes() }
}

impl Provider {
    /// The mock's `keyOf`: a bearer token, else `x-api-key`, `x-goog-api-key`, `?key=`, a raw
    /// `authorization`.
    fn key_of(request: &HttpRequest, query: &[(String, String)]) -> Option<String> {
        let h = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let auth = h("authorization");
        if let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
            return Some(token.to_owned());
        }
        h("x-api-key").or_else(|| h("x-goog-api-key")).or_else(|| query.iter().find(|(k, _)| k == "key").map(|(_, v)| v.clone())).or(auth)
    }

    fn receive(&mut self, request: &HttpRequest, now: u64) -> Reply {
        let rest = request.url.strip_prefix(ORIGIN).expect("every attempt goes to the configured origin");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let value = Self::key_of(request, &query);
        let key = self.keys.iter_mut().find(|k| Some(&k.value) == value.as_ref());
        self.calls.push(Logged { key_id: key.as_ref().map(|k| k.id.clone()), at: now });
        let Some(key) = key else {
            let (status, body) = error_answer("invalid").expect("known");
            return Reply::Answer { answer: answer(status, body, &[]), delay_ms: 0 };
        };
        let step = key.script.pop_front().unwrap_or_else(|| "ok".to_owned());
        let (kind, arg) = step.split_once(':').map_or((step.as_str(), None), |(k, a)| (k, Some(a)));
        let mut delay_ms = 0;
        match kind {
            "delay" => delay_ms = arg.and_then(|a| a.parse().ok()).expect("delay:ms"),
            "hang" => return Reply::Hang,
            "drop" => return Reply::Drop,
            "rate_limit" => {
                let (status, body) = error_answer(kind).expect("known");
                let ms = arg.unwrap_or("1000").to_owned();
                return Reply::Answer { answer: answer(status, body, &[("retry-after-ms", ms)]), delay_ms };
            }
            "ok" | "empty" => {}
            _ => {
                let (status, body) =
                    error_answer(kind).unwrap_or_else(|| panic!("script step `{step}` is not known to the native provider"));
                return Reply::Answer { answer: answer(status, body, &[]), delay_ms };
            }
        }
        if key.quota.is_some_and(|q| key.used >= q) {
            let (status, body) = error_answer("quota").expect("known");
            return Reply::Answer { answer: answer(status, body, &[]), delay_ms };
        }
        key.used += 1;
        let mut headers = Vec::new();
        if let Some(q) = key.quota {
            headers.push(("x-ratelimit-limit-requests", q.to_string()));
            headers.push(("x-ratelimit-remaining-requests", (q - key.used).to_string()));
            headers.push(("x-ratelimit-reset-requests", "1h0m0s".to_owned()));
        }
        if kind == "empty" {
            headers.retain(|(k, _)| *k != "x-ratelimit-remaining-requests" && *k != "x-ratelimit-reset-requests");
            headers.push(("x-ratelimit-remaining-requests", "0".to_owned()));
            headers.push(("x-ratelimit-reset-requests", "30s".to_owned()));
        }
        let id = key.id.clone();
        let reply = match (request.method.as_str(), path) {
            ("POST", "/v1/chat/completions") => answer(
                200,
                json!({ "object": "chat.completion", "choices": [{ "index": 0, "message": { "role": "assistant", "content": format!("served by {id}") }, "finish_reason": "stop" }] }),
                &headers,
            ),
            (_, "/v1/models") => answer(200, json!({ "object": "list", "data": [{ "id": "mock-model", "object": "model" }] }), &headers),
            (_, "/v1/echo") => {
                // The echo never repeats the key it was called with.
                let mut seen = serde_json::Map::new();
                for name in request.headers.keys().filter(|n| *n != "authorization" && *n != "x-api-key") {
                    let values: Vec<&str> = request.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
                    seen.insert(name.to_string(), Value::String(values.join(", ")));
                }
                // Object.fromEntries: the last of a repeated parameter wins.
                let query: serde_json::Map<String, Value> =
                    query.into_iter().filter(|(k, _)| k != "key").map(|(k, v)| (k, Value::String(v))).collect();
                let body = String::from_utf8_lossy(request.body.as_deref().unwrap_or_default()).into_owned();
                let echoed =
                    json!({ "keyId": id, "method": request.method.as_str(), "path": path, "query": query, "headers": seen, "body": body });
                answer(200, echoed, &headers)
            }
            _ => answer(404, json!({ "error": { "message": format!("no route {path}"), "type": "invalid_request_error" } }), &headers),
        };
        Reply::Answer { answer: reply, delay_ms }
    }
}

// ---- The driver: the machine, on virtual time --------------------------------------------------

type TestRng = SeededRng<fn() -> u64>;

fn seed() -> u64 {
    0x5eed
}

/// What a request came back with, read as the JS hosts read it.
#[derive(Debug)]
enum Outcome {
    Value(Value),
    Error(ErrorView),
}

#[derive(Debug, Default)]
struct ErrorView {
    kind: String,
    status: Option<u16>,
    reason: Option<String>,
    key_id: Option<String>,
    attempts: Option<u32>,
    after_ms: Option<u64>,
    field: Option<String>,
    retry_at: Option<u64>,
    data: Value,
    /// The core's words (an upstream answer has none: the JS package words that one).
    message: String,
    debug: String,
}

/// `retry_attempts` → `retryAttempts`, as the JS binding names fields.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        }
    }
    out
}

fn pool_error(e: &PoolError) -> ErrorView {
    let mut view = ErrorView { kind: e.kind().to_owned(), message: e.to_string(), debug: format!("{e:?}"), ..ErrorView::default() };
    match e {
        PoolError::InvalidConfig(c) => view.field = Some(camel(&c.field)),
        PoolError::NoHealthyKeys { retry_at_ms } => view.retry_at = *retry_at_ms,
        PoolError::Network { key_id, .. } => view.key_id = Some(key_id.clone()),
        PoolError::Timeout { key_id, after_ms } => (view.key_id, view.after_ms) = (Some(key_id.clone()), Some(*after_ms)),
        PoolError::InvalidRequest(_) | PoolError::UnknownKey(_) => {}
    }
    view
}

fn config_error(e: &ConfigError) -> ErrorView {
    pool_error(&PoolError::InvalidConfig(e.clone()))
}

fn parse_body(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// A 2xx is the answer; anything else is the JS package's `upstream` error with its fields.
fn outcome(result: Result<(Finished, Answer), PoolError>) -> Outcome {
    match result {
        Ok((_, a)) if (200..300).contains(&a.status) => Outcome::Value(parse_body(&a.body)),
        Ok((f, a)) => Outcome::Error(ErrorView {
            kind: "upstream".to_owned(),
            status: Some(a.status),
            reason: Some(f.outcome.as_str().to_owned()),
            key_id: Some(f.key_id.clone()),
            attempts: Some(f.attempts),
            retry_at: f.retry_at_ms,
            data: parse_body(&a.body),
            message: String::new(),
            debug: format!("{f:?}"),
            ..ErrorView::default()
        }),
        Err(e) => Outcome::Error(pool_error(&e)),
    }
}

/// Something that comes at a time: an answer of the provider or a peeked body.
enum Due {
    Response { flight: usize, attempt: u32, answer: Answer },
    Failure { flight: usize, attempt: u32 },
    Peeked { flight: usize, attempt: u32, body: Vec<u8> },
}

impl Due {
    fn of(&self) -> (usize, u32) {
        match self {
            Due::Response { flight, attempt, .. } | Due::Failure { flight, attempt } | Due::Peeked { flight, attempt, .. } => {
                (*flight, *attempt)
            }
        }
    }
}

struct Flight {
    call: Call,
    /// The responses the driver holds, by attempt.
    held: HashMap<u32, Answer>,
    result: Option<Result<(Finished, Answer), PoolError>>,
}

struct Pool {
    shared: Shared<TestRng>,
    events: Rc<RefCell<Vec<PoolEvent>>>,
}

/// Runs `requests` side by side through one pool: all start at `now`, then the earliest thing
/// due (an answer in the order sent, else a time the machine named) is fed in until every call
/// is done. Moves `now` to the time the last one ended.
fn run(pool: &mut Pool, provider: &mut Provider, now: &mut u64, requests: Vec<Request>) -> Vec<Outcome> {
    let shared = &mut pool.shared;
    let mut flights: Vec<Option<Flight>> = Vec::new();
    let mut done: Vec<Option<Outcome>> = Vec::new();
    for req in requests {
        match Call::start(shared, req, *now) {
            Ok(call) => {
                flights.push(Some(Flight { call, held: HashMap::new(), result: None }));
                done.push(None);
            }
            Err(e) => {
                flights.push(None);
                done.push(Some(Outcome::Error(pool_error(&e))));
            }
        }
    }
    let mut queue: Vec<(u64, u64, Due)> = Vec::new();
    let mut seq = 0u64;
    let pump = |i: usize,
                flight: &mut Flight,
                shared: &mut Shared<TestRng>,
                provider: &mut Provider,
                queue: &mut Vec<(u64, u64, Due)>,
                seq: &mut u64,
                now: u64| {
        while let Some(action) = flight.call.poll(shared, now) {
            deliver(shared.take_events());
            *seq += 1;
            match action {
                Action::Send { attempt, request, .. } => match provider.receive(&request, now) {
                    Reply::Answer { answer, delay_ms } => queue.push((now + delay_ms, *seq, Due::Response { flight: i, attempt, answer })),
                    Reply::Drop => queue.push((now, *seq, Due::Failure { flight: i, attempt })),
                    Reply::Hang => {}
                },
                Action::Peek { attempt, limit } => {
                    let body = flight.held.get(&attempt).map(|a| a.body.iter().take(limit).copied().collect()).expect("a held response");
                    queue.push((now, *seq, Due::Peeked { flight: i, attempt, body }));
                }
                Action::Discard { attempt } => {
                    flight.held.remove(&attempt);
                    queue.retain(|(_, _, d)| d.of() != (i, attempt));
                }
                Action::Done(result) => {
                    flight.result = Some(result.map(|f| {
                        let a = flight.held.remove(&f.attempt).expect("the answer's response is held");
                        (f, a)
                    }));
                }
            }
        }
        deliver(shared.take_events());
    };
    for (i, f) in flights.iter_mut().enumerate() {
        if let Some(f) = f {
            pump(i, f, shared, provider, &mut queue, &mut seq, *now);
        }
    }
    loop {
        for (i, slot) in flights.iter_mut().enumerate() {
            if let Some(f) = slot.as_mut().filter(|f| f.result.is_some()) {
                let result = f.result.take().expect("checked");
                done[i] = Some(outcome(result));
                *slot = None;
            }
        }
        if flights.iter().all(Option::is_none) {
            break;
        }
        let next_due = queue.iter().enumerate().min_by_key(|(_, (at, seq, _))| (*at, *seq)).map(|(i, (at, _, _))| (i, *at));
        let next_timer =
            flights.iter().enumerate().filter_map(|(i, f)| f.as_ref()?.call.poll_timeout().map(|t| (i, t))).min_by_key(|(_, t)| *t);
        match (next_due, next_timer) {
            (Some((q, at)), timer) if timer.is_none_or(|(_, t)| at <= t) => {
                let (at, _, due) = queue.remove(q);
                *now = (*now).max(at);
                let (i, _) = due.of();
                let flight = flights[i].as_mut().expect("a due thing belongs to a call in flight");
                match due {
                    Due::Response { attempt, answer, .. } => {
                        if flight.call.handle_response(shared, attempt, *now, answer.status, &answer.headers) {
                            flight.held.insert(attempt, answer);
                        }
                    }
                    Due::Failure { attempt, .. } => {
                        let error = TransportError::new("connection reset by the provider");
                        flight.call.handle_failure(shared, attempt, *now, &error);
                    }
                    Due::Peeked { attempt, body, .. } => {
                        flight.call.handle_peeked(shared, attempt, *now, &body);
                    }
                }
                pump(i, flight, shared, provider, &mut queue, &mut seq, *now);
            }
            (_, Some((i, t))) => {
                *now = (*now).max(t);
                let flight = flights[i].as_mut().expect("a timer belongs to a call in flight");
                flight.call.handle_timeout(shared, *now);
                pump(i, flight, shared, provider, &mut queue, &mut seq, *now);
            }
            (None, None) => panic!("calls wait with nothing due: the machine asked for nothing more"),
            (Some(_), None) => unreachable!("matched above"),
        }
    }
    done.into_iter().map(|d| d.expect("every call ended")).collect()
}

// ---- The interpreter -------------------------------------------------------------------------

fn by_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, p| v.get(p))
}

/// Expected values are matched as a subset: objects by their listed fields, arrays item by item.
fn matches(actual: Option<&Value>, expected: &Value, path: &str, problems: &mut Vec<String>) {
    match expected {
        Value::Object(fields) => match actual {
            Some(Value::Object(_)) => {
                for (k, v) in fields {
                    matches(actual.and_then(|a| a.get(k)), v, &format!("{path}.{k}"), problems);
                }
            }
            _ => problems.push(format!("{path}: expected {expected}, got {actual:?}")),
        },
        Value::Array(items) => match actual {
            Some(Value::Array(got)) if got.len() == items.len() => {
                for (i, (g, e)) in got.iter().zip(items).enumerate() {
                    matches(Some(g), e, &format!("{path}[{i}]"), problems);
                }
            }
            _ => problems.push(format!("{path}: expected {expected}, got {actual:?}")),
        },
        _ => {
            if actual != Some(expected) {
                problems.push(format!("{path}: expected {expected}, got {actual:?}"));
            }
        }
    }
}

fn like(actual: &Value, expected: &Value, what: &str) {
    let mut problems = Vec::new();
    matches(Some(actual), expected, what, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("; "));
}

/// The key an answer of the mock came from: the echo names it, a completion says "served by <id>".
fn served_by(answer: &Value) -> Option<String> {
    if let Some(id) = answer.get("keyId").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    let content = answer.pointer("/choices/0/message/content")?.as_str()?;
    content.strip_prefix("served by ").map(str::to_owned)
}

struct Run<'a> {
    entry: &'a Entry,
    provider: Provider,
    values: Vec<(String, String)>,
    pool: Option<Pool>,
    now: u64,
    before: u64,
    retry_at: Option<u64>,
    fulfilled: usize,
    errors: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(entry: &'a Entry) -> Self {
        let mut provider = Provider::default();
        let mut values = Vec::new();
        for (id, b) in &entry.keys {
            let value = format!("sk-scenario-{id}-secret");
            provider.keys.push(MockKey {
                id: id.clone(),
                value: value.clone(),
                quota: b.quota,
                used: 0,
                script: b.script.iter().cloned().collect(),
            });
            values.push((id.clone(), value));
        }
        Run { entry, provider, values, pool: None, now: T0, before: T0, retry_at: None, fulfilled: 0, errors: Vec::new() }
    }

    fn resolve(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => {
                if let Some((_, v)) = self.values.iter().find(|(id, _)| format!("${id}") == *s) {
                    return Value::String(v.clone());
                }
                Value::String(s.replacen("$otherOrigin", OTHER_ORIGIN, 1).replacen("$origin", ORIGIN, 1))
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.resolve(v))).collect()),
            other => other.clone(),
        }
    }

    fn build(&self, options: &Value) -> Result<Pool, ConfigError> {
        let config = PoolConfig::from_json(&options.to_string())?;
        let mut shared = Shared::new(&config, SeededRng::new(seed as fn() -> u64))?;
        let events: Rc<RefCell<Vec<PoolEvent>>> = Rc::default();
        let sink = events.clone();
        shared.set_listener(Some(Rc::new(move |e: &PoolEvent| sink.borrow_mut().push(e.clone()))));
        Ok(Pool { shared, events })
    }

    fn client(&mut self, config: &Value) {
        let keys: Vec<Value> = self.values.iter().map(|(id, value)| json!({ "id": id, "value": value })).collect();
        let mut options = json!({ "upstreamBaseUrl": ORIGIN, "keys": keys });
        if let Value::Object(extra) = self.resolve(config) {
            options.as_object_mut().expect("an object").extend(extra);
        }
        self.pool = Some(self.build(&options).unwrap_or_else(|e| panic!("client: {e}")));
    }

    fn pool(&mut self) -> &mut Pool {
        self.pool.as_mut().expect("a client")
    }

    fn request(&self, step: &Step) -> Request {
        let line = step.request.as_deref().expect("a request");
        let (method, path) = line.split_once(' ').expect("METHOD path");
        let mut req =
            Request::new(Method::from_bytes(method.as_bytes()).expect("a method"), self.resolve(&json!(path)).as_str().expect("a path"));
        for (k, v) in &step.headers {
            req.headers.append(HeaderName::from_bytes(k.as_bytes()).expect("header"), HeaderValue::from_str(v).expect("value"));
        }
        for (k, v) in &step.query {
            let items = match v {
                Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            for item in items {
                req.query.push((k.clone(), item.as_str().map_or_else(|| item.to_string(), str::to_owned)));
            }
        }
        if let Some(body) = &step.json {
            // As the JS package does for `json`.
            if !req.headers.contains_key("content-type") {
                req.headers.insert("content-type", HeaderValue::from_static("application/json"));
            }
            req.body = Some(body.to_string().into());
        }
        req.timeout_ms = step.timeout_ms;
        req
    }

    fn send(&mut self, requests: Vec<Request>) -> Vec<Outcome> {
        let mut now = self.now;
        let pool = self.pool.as_mut().expect("a client");
        let out = run(pool, &mut self.provider, &mut now, requests);
        self.now = now;
        for o in &out {
            if let Outcome::Error(e) = o {
                self.errors.push(format!("{}\n{}", e.message, e.debug));
            }
        }
        out
    }

    fn answer(&mut self, got: Outcome, expect: &Expect, what: &str) {
        let Some(want) = &expect.error else {
            let Outcome::Value(value) = got else { panic!("{what}: expected an answer, got {got:?}") };
            if let Some(id) = &expect.served_by {
                assert_eq!(served_by(&value).as_ref(), Some(id), "{what}: served by");
            }
            if let Some(body) = &expect.body {
                like(&value, body, &format!("{what}: body"));
            }
            for (path, v) in &expect.body_equal {
                assert_eq!(by_path(&value, path), Some(v), "{what}: {path}");
            }
            for path in &expect.body_lacks {
                assert_eq!(by_path(&value, path), None, "{what}: {path}");
            }
            return;
        };
        let Outcome::Error(e) = got else { panic!("{what}: expected an error, got {got:?}") };
        self.error(&e, want, what);
    }

    fn error(&mut self, e: &ErrorView, want: &ErrorExpect, what: &str) {
        assert_eq!(e.kind, want.kind, "{what}: kind ({e:?})");
        fn same<T: PartialEq + std::fmt::Debug>(got: &Option<T>, want: &Option<T>, what: &str, field: &str) {
            if want.is_some() {
                assert_eq!(got, want, "{what}: {field}");
            }
        }
        same(&e.status, &want.status, what, "status");
        same(&e.reason, &want.reason, what, "reason");
        same(&e.key_id, &want.key_id, what, "keyId");
        same(&e.attempts, &want.attempts, what, "attempts");
        same(&e.after_ms, &want.after_ms, what, "afterMs");
        same(&e.field, &want.field, what, "field");
        if let Some(m) = &want.provider_message {
            assert_eq!(e.data.pointer("/error/message").and_then(Value::as_str), Some(m.as_str()), "{what}: the provider's data");
        }
        if let Some(m) = &want.message_includes {
            assert!(e.message.contains(m.as_str()), "{what}: message {}", e.message);
        }
        if let Some(ms) = want.retry_at_after_ms {
            assert!(e.retry_at.is_some_and(|t| t > self.now + ms), "{what}: retryAt {:?} is the earliest return", e.retry_at);
        }
        if want.retry_at_as_before {
            assert_eq!(e.retry_at, self.retry_at, "{what}: the same retryAt");
        }
        self.retry_at = e.retry_at;
        let text = format!("{}\n{}", e.message, e.debug);
        for v in self.values.iter().map(|(_, v)| v.as_str()).chain(["sk-secret"]) {
            assert!(!text.contains(v), "{what}: a key value in the error: {text}");
        }
    }

    fn operate(&mut self, step: &Step, result: Result<Option<String>, ErrorView>, what: &str) {
        match (result, &step.expect.error) {
            (Ok(value), None) => {
                if let Some(want) = &step.expect.returns {
                    assert_eq!(value.as_ref(), Some(want), "{what}");
                }
            }
            (Ok(value), Some(_)) => panic!("{what}: expected an error, got {value:?}"),
            (Err(e), None) => panic!("{what}: {e:?}"),
            (Err(e), Some(want)) => {
                self.errors.push(format!("{}\n{}", e.message, e.debug));
                self.error(&e, want, what);
            }
        }
    }

    fn state(&mut self, expect: &Expect, what: &str) {
        let used: Vec<String> = self.provider.calls.iter().map(|c| c.key_id.clone().unwrap_or_default()).collect();
        let count = |id: &str| used.iter().filter(|x| *x == id).count();
        let now = self.now;
        let status = || serde_json::to_value(self.pool.as_ref().expect("a client").shared.status(now)).expect("status serializes");
        let key = |id: &str| status()["keys"].as_array().and_then(|ks| ks.iter().find(|k| k["id"] == id).cloned()).unwrap_or(Value::Null);
        if let Some(calls) = &expect.calls {
            assert_eq!(&used, calls, "{what}: keys called, in order");
        }
        if let Some(n) = expect.call_count {
            assert_eq!(used.len(), n, "{what}: calls that reached the provider");
        }
        for (id, n) in &expect.calls_at_least {
            assert!(count(id) >= *n, "{what}: key {id} called {} times, fewer than {n}", count(id));
        }
        if let Some(s) = &expect.spread {
            let (x, y) = (count(&s.keys[0]), count(&s.keys[1]));
            if let Some(within) = s.within {
                assert!(x.abs_diff(y) <= within, "{what}: equal keys balanced ({x} vs {y})");
            }
            if let Some(times) = s.more_than_times {
                assert!(x > y * times, "{what}: {} favoured ({x} vs {y})", s.keys[0]);
            }
        }
        for gap in &expect.gaps {
            let at: Vec<u64> = self.provider.calls.iter().filter(|c| gap.key.is_none() || c.key_id == gap.key).map(|c| c.at).collect();
            assert!(at.len() > gap.to, "{what}: only {} calls", at.len());
            let apart = at[gap.to] - at[gap.from];
            assert!(apart >= gap.at_least_ms, "{what}: call {} came {apart} ms after call {}, not {}", gap.to, gap.from, gap.at_least_ms);
        }
        if let Some(ids) = &expect.ids {
            let got: Vec<Value> = status()["keys"].as_array().expect("keys").iter().map(|k| k["id"].clone()).collect();
            assert_eq!(got, ids.iter().map(|i| json!(i)).collect::<Vec<_>>(), "{what}: key ids");
        }
        for (id, want) in &expect.status {
            like(&key(id), want, &format!("{what}: key {id}"));
        }
        for (id, ms) in &expect.cooldown_for {
            let until = key(id)["cooldownUntil"].as_u64().expect("a cooldown");
            assert!(until >= self.before + ms && until <= self.now + ms, "{what}: key {id} rests {ms} ms (until {until})");
        }
        let events: Vec<Value> = self
            .pool
            .as_ref()
            .map_or_else(Vec::new, |p| p.events.borrow().iter().map(|e| serde_json::to_value(e).expect("events serialize")).collect());
        if let Some(want) = &expect.events {
            let of_kind: Vec<&Value> = events.iter().filter(|e| e["type"] == want.kind.as_str()).collect();
            if let Some(equal) = &want.equal {
                let got: Vec<Vec<Value>> = of_kind.iter().map(|e| want.fields.iter().map(|f| e[f].clone()).collect()).collect();
                assert_eq!(&got, equal, "{what}: {} events", want.kind);
            }
            if let Some(n) = want.count {
                assert_eq!(of_kind.len(), n, "{what}: {} events {of_kind:?}", want.kind);
            }
            for (field, (lo, hi)) in &want.between {
                for e in &of_kind {
                    let v = e[field].as_u64().expect("a number");
                    assert!(v >= *lo && v <= *hi, "{what}: {} {field} {v} not in [{lo}, {hi}]", want.kind);
                }
            }
        }
        if expect.no_key_values {
            let pool = self.pool.as_ref().expect("a client");
            let snapshot = serde_json::to_string(&pool.shared.export_state()).expect("snapshot serializes");
            let text =
                [self.errors.join("\n"), status().to_string(), format!("{events:?}"), format!("{:?}", pool.events.borrow()), snapshot]
                    .join("\n");
            for (_, v) in &self.values {
                assert!(!text.contains(v.as_str()), "{what}: a key value leaked");
            }
        }
        if expect.counters_exact {
            let s = status();
            assert_eq!(s["totalRequests"], json!(used.len()), "{what}: every upstream call is counted once");
            for k in s["keys"].as_array().expect("keys") {
                let id = k["id"].as_str().expect("id");
                let n = |f: &str| k[f].as_u64().expect("a count");
                assert_eq!(n("totalRequests"), n("successes") + n("errorCount"), "{what}: key {id}: requests = successes + errors");
                assert_eq!(n("totalRequests"), count(id) as u64, "{what}: key {id}: matches the provider's log");
                assert_eq!(n("inFlight"), 0, "{what}: key {id}: nothing left in flight");
            }
            assert_eq!(s["successes"], json!(self.fulfilled), "{what}: successes match fulfilled calls");
        }
    }

    fn step(&mut self, step: &Step, i: usize) {
        let what = format!("step {}", i + 1);
        if let Some(config) = &step.client {
            return self.client(config);
        }
        if let Some(options) = &step.create {
            let e = match self.build(&self.resolve(options)) {
                Ok(_) => panic!("{what}: construction: expected an error"),
                Err(e) => config_error(&e),
            };
            let want = step.expect.error.as_ref().expect("a create step expects an error");
            return self.error(&e, want, &what);
        }
        let now = self.now;
        if let Some(key) = &step.add_key {
            let key: KeyConfig = serde_json::from_value(self.resolve(key)).expect("a key");
            let result = self.pool().shared.add_key(&key, now).map(Some).map_err(|e| config_error(&e));
            return self.operate(step, result, &format!("{what}: addKey"));
        }
        let ops: [(&Option<String>, &str); 3] =
            [(&step.enable_key, "enableKey"), (&step.disable_key, "disableKey"), (&step.remove_key, "removeKey")];
        for (id, op) in ops {
            let Some(id) = id else { continue };
            let shared = &mut self.pool().shared;
            let result = match op {
                "enableKey" => shared.set_enabled(id, true, now),
                "disableKey" => shared.set_enabled(id, false, now),
                _ => shared.remove_key(id),
            };
            return self.operate(step, result.map(|()| None).map_err(|e| pool_error(&e)), &format!("{what}: {op}"));
        }
        if let Some(line) = &step.request {
            self.before = self.now;
            if let Some(n) = step.concurrent {
                let out = self.send((0..n).map(|_| self.request(step)).collect());
                self.fulfilled = out.iter().filter(|o| matches!(o, Outcome::Value(_))).count();
                let first_error = out.iter().find(|o| matches!(o, Outcome::Error(_)));
                assert_eq!(Some(self.fulfilled), step.expect.fulfilled, "{what}: requests served ({first_error:?})");
                return;
            }
            for n in 0..step.repeat.unwrap_or(1) {
                let got = self.send(vec![self.request(step)]).pop().expect("one outcome");
                self.answer(got, &step.expect, &format!("{what} ({line} #{})", n + 1));
            }
            return;
        }
        self.state(&step.expect, &what);
    }

    fn play(mut self) {
        if let Some(config) = &self.entry.config {
            self.client(config);
        }
        for (i, step) in self.entry.steps.as_deref().unwrap_or_default().iter().enumerate() {
            self.step(step, i);
        }
    }
}

fn list() -> List {
    serde_json::from_str(LIST).expect("tests/scenarios/scenarios.json is the list")
}

#[test]
fn every_listed_scenario_runs_on_the_machine_or_names_why_not() {
    let list = list();
    let mut failures = Vec::new();
    let mut ran = 0;
    for entry in &list.scenarios {
        if let Some(reason) = entry.skip.get("native") {
            assert!(!reason.trim().is_empty(), "{}: a native skip needs its reason", entry.name);
            continue;
        }
        assert!(!entry.code, "{}: a code scenario runs only on the JS hosts: say why in skip.native", entry.name);
        assert!(entry.steps.is_some(), "{}: neither data nor skipped", entry.name);
        // A failing scenario is reported with the others below, not printed as it happens.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let played = catch_unwind(AssertUnwindSafe(|| Run::new(entry).play()));
        std::panic::set_hook(hook);
        if let Err(panic) = played {
            let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(format!("{}: {}", entry.name, message.unwrap_or_default()));
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "{} of {ran} scenarios failed:\n{}", failures.len(), failures.join("\n"));
    assert!(ran >= 20, "only {ran} scenarios ran natively");
}

#[test]
fn names_are_unique_and_skips_name_known_hosts() {
    let list = list();
    let mut names = std::collections::BTreeSet::new();
    for entry in &list.scenarios {
        assert!(names.insert(entry.name.as_str()), "listed twice: {}", entry.name);
        for (host, reason) in &entry.skip {
            assert!(["native", "wasi"].contains(&host.as_str()), "{}: unknown host `{host}`", entry.name);
            assert!(!reason.trim().is_empty(), "{}: skip on {host} without a reason", entry.name);
        }
    }
}
