//! Clock and sleep from the JS global scope (not `window`: Node and workers have none).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::{Clock, Sleeper};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `Date.now()`.
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

/// A `setTimeout` promise that clears its timer when dropped, so a per-attempt timeout that
/// lost its race does not keep a Node process alive.
pub struct JsSleeper;

struct Sleep {
    id: JsValue,
    done: JsFuture,
    finished: bool,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.done).poll(cx) {
            Poll::Ready(_) => {
                self.finished = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.finished {
            clear_timeout(&self.id);
        }
    }
}

impl Sleeper for JsSleeper {
    async fn sleep(&self, ms: u64) {
        let mut id = JsValue::UNDEFINED;
        let promise = Promise::new(&mut |resolve, _reject| {
            id = set_timeout(&resolve, ms as f64);
        });
        Sleep { id, done: JsFuture::from(promise), finished: false }.await
    }
}
