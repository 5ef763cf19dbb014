//! Clock and sleep for the JS binding. Sleeps are timers the wrapper runs (see
//! [`super::ops`]); a sleep the core drops (a timeout that lost its race) is cleared, so it
//! does not keep a Node process alive.

use std::fmt::Write;
use std::rc::Rc;

use super::ops::{Ops, US};
use crate::core::{Clock, Sleeper};

/// `Date.now()`.
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

pub struct JsSleeper {
    ops: Rc<Ops>,
}

impl JsSleeper {
    pub fn new(ops: Rc<Ops>) -> Self {
        Self { ops }
    }
}

impl Sleeper for JsSleeper {
    async fn sleep(&self, ms: u64) {
        // `T id ms`.
        self.ops
            .start(|id, r| {
                let _ = write!(r, "T{US}{id}{US}{ms}");
            })
            .await;
    }
}
