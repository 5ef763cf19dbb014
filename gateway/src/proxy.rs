//! One incoming request, decided by the core's proxy rules (`poolswitch::core::proxy`): local
//! endpoints under `/poolswitch/`, or forwarding through the pool.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use poolswitch::component::host::{self, WasiBody};
use poolswitch::core::proxy::{self, Route};
use poolswitch::core::{Clock, PoolError, Request};
use wstd::http::{Body, Error, Response};

use crate::config;
use crate::state::StateFile;

fn now_ms() -> u64 {
    host::WasiClock.now_ms()
}

fn json(status: u16, body: String, extra: &[(&str, String)]) -> Result<Response<Body>, Error> {
    let mut b = Response::builder().status(status).header("content-type", "application/json");
    for (k, v) in extra {
        b = b.header(*k, v.as_str());
    }
    Ok(b.body(Body::from(body))?)
}

fn fail(kind: &str, message: &str) -> Result<Response<Body>, Error> {
    let a = proxy::error_answer(kind, message, None, now_ms());
    json(a.status, a.body, &a.headers)
}

fn pool_fail(e: &PoolError) -> Result<Response<Body>, Error> {
    let retry_at = match e {
        PoolError::NoHealthyKeys { retry_at_ms } => *retry_at_ms,
        _ => None,
    };
    let a = proxy::error_answer(e.kind(), &e.to_string(), retry_at, now_ms());
    json(a.status, a.body, &a.headers)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The caller's headers that go upstream (the core's rule).
fn request_headers(headers: &HeaderMap) -> HeaderMap {
    let connection = header(headers, "connection");
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if proxy::forward_request_header(name.as_str(), connection) {
            out.append(name, value.clone());
        }
    }
    out
}

/// The upstream's headers that go back (wasi:http hands the body over still encoded).
fn response_headers(headers: &HeaderMap) -> HeaderMap {
    let connection = header(headers, "connection");
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if proxy::forward_response_header(name.as_str(), connection, false) {
            out.append(name, value.clone());
        }
    }
    out
}

/// Reads the request body, or `None` once it passes `limit` (nothing past the limit is kept).
async fn read_limited(body: Body, limit: u64) -> Result<Option<Bytes>, Error> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut inner = body.into_boxed_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = inner.frame().await {
        if let Ok(data) = frame?.into_data() {
            if data.len() > limit.saturating_sub(buf.len()) {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

pub(crate) async fn handle(request: http::Request<Body>) -> Result<Response<Body>, Error> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let route = proxy::route(request.method().as_str(), &target);
    if route == Route::Health {
        return json(200, serde_json::json!({ "status": "ok" }).to_string(), &[]);
    }
    let config = match config::from_env() {
        Ok(c) => c,
        Err(e) => return fail("invalid_config", &e.to_string()),
    };
    let settings = &config.settings;
    if let Some(expected) = &settings.gateway_token {
        let h = request.headers();
        let given = proxy::presented_token(header(h, "authorization"), header(h, "x-poolswitch-token"));
        if route.needs_token() && !proxy::token_matches(given, expected) {
            return fail("unauthorized", "gateway token missing or wrong");
        }
    }
    match &route {
        Route::BadTarget => return fail("invalid_request", "the request target must be a path such as /v1/models"),
        Route::NotFound => return fail("not_found", "no such endpoint under /poolswitch/"),
        Route::MethodNotAllowed { allow } => {
            let a = proxy::error_answer("method_not_allowed", &format!("use {allow}"), None, now_ms());
            let mut headers = a.headers;
            headers.push(("allow", (*allow).to_owned()));
            return json(a.status, a.body, &headers);
        }
        Route::AddKey | Route::RemoveKey(_) | Route::EnableKey(_) | Route::DisableKey(_) => {
            // Every request runs in a fresh instance whose keys come from POOLSWITCH_KEYS; a key
            // added or switched here would be gone with the instance.
            return fail("not_supported", "the WASI gateway's keys come from POOLSWITCH_KEYS; change them there");
        }
        _ => {}
    }
    let client = match config.pool().and_then(|pool| host::client(&pool)) {
        Ok(c) => c,
        Err(e) => return fail("invalid_config", &e.to_string()),
    };
    let state = StateFile::new(settings.state_file.as_deref());
    if let Some(snapshot) = state.as_ref().and_then(StateFile::load) {
        client.import_state(&snapshot);
    }
    match route {
        Route::Status => {
            let text = serde_json::to_string(&client.status()).unwrap_or_default();
            return json(200, text, &[]);
        }
        Route::Metrics => {
            let status = serde_json::to_value(client.status()).unwrap_or_default();
            let text = proxy::render_metrics(&status);
            return Ok(Response::builder().status(200).header("content-type", "text/plain; version=0.0.4").body(Body::from(text))?);
        }
        _ => {}
    }

    let (parts, body) = request.into_parts();
    let declared = header(&parts.headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.body_limit_bytes) {
        return fail("payload_too_large", &format!("the request body is over {} bytes", settings.body_limit_bytes));
    }
    // Read once, up to the limit: a failover resends the same body on another key.
    let Some(bytes) = read_limited(body, settings.body_limit_bytes).await? else {
        return fail("payload_too_large", &format!("the request body is over {} bytes", settings.body_limit_bytes));
    };
    let req = Request {
        method: parts.method,
        path: target,
        query: Vec::new(),
        headers: request_headers(&parts.headers),
        body: (!bytes.is_empty()).then_some(bytes),
        timeout_ms: None,
        deadline_ms: None,
        retry_attempts: None,
    };
    let base = client.export_state();
    let result = client.request(req).await;
    if let Some(s) = &state {
        s.save(&base, &client);
    }
    let reply = match result {
        Ok(r) => r,
        Err(e) => return pool_fail(&e),
    };
    let mut builder = Response::builder().status(reply.response.status);
    if let Some(h) = builder.headers_mut() {
        *h = response_headers(&reply.response.headers);
        if let Ok(v) = HeaderValue::from_str(&proxy::key_id_header(&reply.key_id)) {
            h.insert("x-poolswitch-key-id", v);
        }
        h.insert("x-poolswitch-attempts", HeaderValue::from(reply.attempts));
    }
    // The upstream body streams through (an error body was read once to classify it). An empty
    // one is sent as no body at all: a zero-length write fails once the host has dropped the
    // body channel of a body-less answer (a 204, or any answer to HEAD).
    let body = match reply.response.body {
        WasiBody::Buffered(b) => host::request_body(Some(b)),
        streaming => streaming.into_body(),
    };
    Ok(builder.body(body)?)
}
