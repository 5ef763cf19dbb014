//! Test host for the core: a virtual clock whose sleeps complete instantly in order, and a
//! scripted transport standing in for the provider. Time only moves when every task waits.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_executor::LocalPool;
use futures_executor::LocalSpawner;
use futures_util::task::LocalSpawnExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use poolswitch::core::*;

pub(crate) const START_MS: u64 = 1_717_200_000_000; // 2024-06-01T00:00:00Z

#[derive(Default)]
struct TimeInner {
    now: Cell<u64>,
    timers: RefCell<Vec<(u64, Waker)>>,
}

/// Virtual wall clock and sleeper.
#[derive(Clone)]
pub(crate) struct VirtualTime(Rc<TimeInner>);

impl VirtualTime {
    pub(crate) fn new() -> Self {
        let t = VirtualTime(Rc::default());
        t.0.now.set(START_MS);
        t
    }
    pub(crate) fn now(&self) -> u64 {
        self.0.now.get()
    }
    /// Elapsed virtual ms since the start.
    pub(crate) fn elapsed(&self) -> u64 {
        self.now() - START_MS
    }
    pub(crate) fn advance(&self, ms: u64) {
        self.0.now.set(self.now() + ms);
    }
    /// Moves to the earliest pending timer and wakes every timer due. False if none.
    fn fire_next(&self) -> bool {
        let mut timers = self.0.timers.borrow_mut();
        let Some(next) = timers.iter().map(|(t, _)| *t).min() else { return false };
        if next > self.now() {
            self.0.now.set(next);
        }
        let now = self.now();
        let (due, rest): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(t, _)| *t <= now);
        *timers = rest;
        drop(timers);
        for (_, w) in due {
            w.wake();
        }
        true
    }
}

impl Clock for VirtualTime {
    fn now_ms(&self) -> u64 {
        self.now()
    }
}

pub(crate) struct Sleep {
    time: VirtualTime,
    deadline: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.time.now() >= self.deadline {
            Poll::Ready(())
        } else {
            self.time.0.timers.borrow_mut().push((self.deadline, cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl VirtualTime {
    pub(crate) fn sleep_for(&self, ms: u64) -> Sleep {
        Sleep { time: self.clone(), deadline: self.now() + ms }
    }
}

impl Sleeper for VirtualTime {
    async fn sleep(&self, ms: u64) {
        self.sleep_for(ms).await
    }
}

/// One call the provider saw.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub key_id: String,
    pub method: String,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at_ms: u64,
}

/// What the scripted provider answers.
pub(crate) enum Answer {
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
        delay_ms: u64,
    },
    /// The connection broke after the request was written: ambiguous.
    NetworkError {
        delay_ms: u64,
    },
    /// The connection could not be made: nothing was sent.
    ConnectError,
    Hang,
}

pub(crate) fn ok(body: &str) -> Answer {
    Answer::Respond { status: 200, headers: vec![], body: body.to_owned(), delay_ms: 0 }
}

pub(crate) fn status(status: u16, body: &str) -> Answer {
    Answer::Respond { status, headers: vec![], body: body.to_owned(), delay_ms: 0 }
}

pub(crate) fn with_headers(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Answer {
    Answer::Respond { status, headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(), body: body.to_owned(), delay_ms: 0 }
}

type Handler = Box<dyn Fn(&Call, usize) -> Answer>;
/// Reads the key value out of a request's headers or URL.
type KeyReader = Rc<dyn Fn(&HeaderMap, &str) -> Option<String>>;

/// The stand-in provider: maps the key it receives back to its id, records every call, and
/// answers by a handler given the call and how many calls that key has had before.
#[derive(Clone)]
pub(crate) struct ScriptedTransport {
    keys: Rc<Vec<(String, String)>>,
    auth: KeyReader,
    handler: Rc<Handler>,
    pub calls: Rc<RefCell<Vec<Call>>>,
    time: VirtualTime,
}

impl ScriptedTransport {
    /// `keys`: (id, value). The key is read from `Authorization: Bearer …` by default.
    pub(crate) fn new(time: &VirtualTime, keys: &[(&str, &str)], handler: impl Fn(&Call, usize) -> Answer + 'static) -> Self {
        Self {
            keys: Rc::new(keys.iter().map(|(i, v)| (i.to_string(), v.to_string())).collect()),
            auth: Rc::new(|h, _url| {
                h.get("authorization").and_then(|v| v.to_str().ok()).map(|s| s.trim_start_matches("Bearer ").to_owned())
            }),
            handler: Rc::new(Box::new(handler)),
            calls: Rc::default(),
            time: time.clone(),
        }
    }

    /// Reads the key some other way (raw header, query parameter).
    pub(crate) fn reading_key(mut self, f: impl Fn(&HeaderMap, &str) -> Option<String> + 'static) -> Self {
        self.auth = Rc::new(f);
        self
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    pub(crate) fn key_ids(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|c| c.key_id.clone()).collect()
    }
}

impl Transport for ScriptedTransport {
    type Body = Vec<u8>;
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<Vec<u8>>, TransportError> {
        let value = (self.auth)(&request.headers, &request.url).unwrap_or_default();
        let key_id = self.keys.iter().find(|(_, v)| *v == value).map(|(i, _)| i.clone()).unwrap_or_else(|| format!("unknown:{value}"));
        let call = Call {
            key_id: key_id.clone(),
            method: request.method.to_string(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.map(|b| b.to_vec()).unwrap_or_default(),
            at_ms: self.time.now(),
        };
        let n = self.calls.borrow().iter().filter(|c| c.key_id == key_id).count();
        self.calls.borrow_mut().push(call.clone());
        match (self.handler)(&call, n) {
            Answer::Respond { status, headers, body, delay_ms } => {
                if delay_ms > 0 {
                    self.time.sleep_for(delay_ms).await;
                }
                let mut map = HeaderMap::new();
                for (k, v) in headers {
                    map.append(HeaderName::from_static(k), HeaderValue::from_str(&v).unwrap());
                }
                Ok(HttpResponse { status, headers: map, body: body.into_bytes() })
            }
            Answer::NetworkError { delay_ms } => {
                if delay_ms > 0 {
                    self.time.sleep_for(delay_ms).await;
                }
                Err(TransportError::new(format!("connection reset while sending to {}", request.url)))
            }
            Answer::ConnectError => Err(TransportError::connect(format!("connection refused by {}", request.url))),
            Answer::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
        }
    }
}

pub(crate) type TestClient = PoolClient<ScriptedTransport, VirtualTime, VirtualTime, SeededRng<fn() -> u64>>;

fn seed() -> u64 {
    0x5eed
}

pub(crate) fn client(config: &PoolConfig, transport: &ScriptedTransport, time: &VirtualTime) -> TestClient {
    PoolClient::new(config, transport.clone(), time.clone(), time.clone(), SeededRng::new(seed as fn() -> u64)).expect("valid config")
}

pub(crate) fn config(keys: &[(&str, &str)]) -> PoolConfig {
    PoolConfig::new("https://api.example.com/v1", keys.iter().map(|(i, v)| KeyConfig::named(*i, *v)).collect())
}

pub(crate) const KEYS3: [(&str, &str); 3] = [("a", "sk-aaa-secret"), ("b", "sk-bbb-secret"), ("c", "sk-ccc-secret")];

/// Runs futures concurrently on virtual time until all finish.
pub(crate) fn run_all<T: 'static>(time: &VirtualTime, futures: Vec<Pin<Box<dyn Future<Output = T>>>>) -> Vec<T> {
    let mut pool = LocalPool::new();
    let spawner: LocalSpawner = pool.spawner();
    let results: Rc<RefCell<Vec<Option<T>>>> = Rc::new(RefCell::new((0..futures.len()).map(|_| None).collect()));
    for (i, f) in futures.into_iter().enumerate() {
        let results = results.clone();
        spawner.spawn_local(async move { results.borrow_mut()[i] = Some(f.await) }).unwrap();
    }
    loop {
        pool.run_until_stalled();
        if results.borrow().iter().all(Option::is_some) {
            break;
        }
        assert!(time.fire_next(), "deadlock: tasks pending with no timer");
    }
    Rc::try_unwrap(results).ok().unwrap().into_inner().into_iter().map(Option::unwrap).collect()
}

/// Runs one future on virtual time.
pub(crate) fn run<T: 'static>(time: &VirtualTime, f: impl Future<Output = T> + 'static) -> T {
    run_all(time, vec![Box::pin(f)]).pop().unwrap()
}

pub(crate) fn post(path: &str) -> Request {
    Request::new(http::Method::POST, path).with_body(r#"{"model":"m"}"#)
}

pub(crate) fn get(path: &str) -> Request {
    Request::new(http::Method::GET, path)
}

/// Sends one request through `client` on virtual time.
pub(crate) fn send(client: &Rc<TestClient>, time: &VirtualTime, req: Request) -> Result<Reply<Vec<u8>>, PoolError> {
    let c = client.clone();
    run(time, async move { c.request(req).await })
}

pub(crate) fn shared(config: &PoolConfig, transport: &ScriptedTransport, time: &VirtualTime) -> Rc<TestClient> {
    Rc::new(client(config, transport, time))
}

pub(crate) fn key_status<'a>(status: &'a PoolStatus, id: &str) -> &'a KeyStatus {
    status.keys.iter().find(|k| k.id == id).expect("key in status")
}

pub(crate) const OPENAI_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
pub(crate) const OPENAI_RATE: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
pub(crate) const OPENAI_BAD_KEY: &str = r#"{"error":{"message":"Incorrect API key provided: sk-aaa***cret.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
