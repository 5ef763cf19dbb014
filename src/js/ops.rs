//! Host operations as data. The JS wrapper drives each request: the core's future is polled
//! only when the wrapper reports that an operation it asked for (a fetch, a timer, a body
//! peek) has finished, and every poll answers with the operations to start or cancel next.
//!
//! Why not `wasm-bindgen-futures`: awaiting a JS promise from wasm costs two closures with
//! finalizers, a task queue and a microtask per hop, which measured at about 45 µs of CPU per
//! request in Node, more than the rest of the pool; here a request crosses the boundary with
//! one string each way per hop and no closure at all.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use http::HeaderMap;

/// Separates records (operations) in a step; never part of a URL, header, id or number.
pub const RS: char = '\u{1e}';
/// Separates fields within a record.
pub const US: char = '\u{1f}';

/// What an operation ended in, as the wrapper reported it.
pub enum OpResult {
    /// A response arrived: its status and the rate-limit headers the core reads. The
    /// `Response` itself stays in JS under the operation's id.
    Sent {
        status: u16,
        limits: HeaderMap,
    },
    /// The fetch failed with this message.
    Failed(String),
    Slept,
    Peeked(Vec<u8>),
}

/// The operations of every request of one pool: started, finished, dropped.
#[derive(Default)]
pub struct Ops {
    next_id: Cell<u32>,
    /// The request being polled; operations started during the poll belong to it.
    current: Cell<u32>,
    /// Per request: records to hand to the wrapper after the poll (start or cancel).
    pending: RefCell<Vec<(u32, String)>>,
    /// Every operation a future still waits for, with its result once reported; a report for
    /// any other (cancelled, already taken) is dropped.
    waiting: RefCell<HashMap<u32, Option<OpResult>>>,
}

impl Ops {
    /// Registers a new operation of the current request; `describe` writes its record.
    pub fn start(self: &Rc<Self>, describe: impl FnOnce(u32, &mut String)) -> OpFuture {
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        let mut record = String::new();
        describe(id, &mut record);
        let task = self.current.get();
        self.pending.borrow_mut().push((task, record));
        self.waiting.borrow_mut().insert(id, None);
        OpFuture { ops: self.clone(), id, task, done: false }
    }

    pub fn finish(&self, id: u32, result: OpResult) {
        if let Some(slot @ None) = self.waiting.borrow_mut().get_mut(&id) {
            *slot = Some(result);
        }
    }

    /// Runs `poll` as request `task`, then returns the records it produced, each after `RS`.
    pub fn as_task<T>(&self, task: u32, poll: impl FnOnce() -> T) -> (T, String) {
        let outer = self.current.replace(task);
        let out = poll();
        self.current.set(outer);
        let mut records = String::new();
        self.pending.borrow_mut().retain(|(t, record)| {
            if *t != task {
                return true;
            }
            records.push(RS);
            records.push_str(record);
            false
        });
        (out, records)
    }

    /// Forgets what is left of a finished or dropped request.
    pub fn clear_task(&self, task: u32) {
        self.pending.borrow_mut().retain(|(t, _)| *t != task);
    }
}

/// Resolves when the wrapper reports the operation finished; dropped before that (the core
/// lost interest: a timeout won, the request was cancelled), it asks the wrapper to cancel it.
pub struct OpFuture {
    ops: Rc<Ops>,
    id: u32,
    task: u32,
    done: bool,
}

impl OpFuture {
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Future for OpFuture {
    type Output = OpResult;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<OpResult> {
        let mut waiting = self.ops.waiting.borrow_mut();
        let Some(result) = waiting.get_mut(&self.id).and_then(Option::take) else { return Poll::Pending };
        waiting.remove(&self.id);
        drop(waiting);
        self.done = true;
        Poll::Ready(result)
    }
}

impl Drop for OpFuture {
    fn drop(&mut self) {
        if !self.done {
            self.ops.pending.borrow_mut().push((self.task, format!("C{US}{}", self.id)));
            self.ops.waiting.borrow_mut().remove(&self.id);
        }
    }
}

/// Pairs of flat `name US value US …` text (headers, query parameters).
pub fn pairs(flat: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut parts = flat.split(US);
    std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
}
