//! The JS transport: each attempt is a `fetch` the wrapper starts when the core asks for it
//! (see [`super::ops`]). The `Response` never enters wasm; the core gets its status and
//! rate-limit headers, and the wrapper hands the chosen one to the caller.

use std::fmt::Write;
use std::rc::Rc;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::ops::{pairs, OpResult, Ops, US};
use crate::core::{HttpRequest, HttpResponse, ResponseBody, Transport, TransportError};

pub struct JsTransport {
    ops: Rc<Ops>,
}

impl JsTransport {
    pub fn new(ops: Rc<Ops>) -> Self {
        Self { ops }
    }
}

/// A response that stays in JS under the id of the fetch that produced it.
pub struct JsBody {
    pub response_op: u32,
    ops: Rc<Ops>,
}

impl ResponseBody for JsBody {
    async fn peek(&mut self, limit: usize) -> Vec<u8> {
        // `K id response limit`: read the start of that response's body without consuming it.
        let op = self.ops.start(|id, r| {
            let _ = write!(r, "K{US}{id}{US}{}{US}{limit}", self.response_op);
        });
        match op.await {
            OpResult::Peeked(bytes) => bytes,
            _ => Vec::new(),
        }
    }
}

/// Flat `name US value US …` text, as the wrapper sends rate-limit headers; a header the
/// host passed that is not valid is skipped.
pub fn parse_headers(flat: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in pairs(flat) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_str(v)) {
            map.append(n, v);
        }
    }
    map
}

impl Transport for JsTransport {
    type Body = JsBody;

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<JsBody>, TransportError> {
        // `S id cancellable method url name value …`. Header values cannot hold control
        // characters and URLs are checked for them, so the separators are unambiguous. Only an
        // attempt the core may drop (a timeout applies) needs its own abort signal in JS.
        let op = self.ops.start(|id, r| {
            let _ = write!(r, "S{US}{id}{US}{}{US}{}{US}{}", u8::from(request.cancellable), request.method, request.url);
            for (name, value) in &request.headers {
                let _ = write!(r, "{US}{}{US}{}", name, value.to_str().unwrap_or_default());
            }
        });
        let response_op = op.id();
        match op.await {
            OpResult::Sent { status, limits } => {
                Ok(HttpResponse { status, headers: limits, body: JsBody { response_op, ops: self.ops.clone() } })
            }
            OpResult::Failed(message) => Err(TransportError::new(message)),
            _ => Err(TransportError::new("fetch failed")),
        }
    }
}
