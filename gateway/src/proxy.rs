//! One incoming request: local endpoints, or forwarding through the pool.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use poolswitch::component::host;
use poolswitch::core::{PoolError, Request};
use wstd::http::{Body, Error, Response};

use crate::config;
use crate::state::StateFile;

/// Headers that describe one connection, not the message; never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"];

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != http::header::CONTENT_LENGTH {
            out.append(name, value.clone());
        }
    }
    out
}

fn json(status: StatusCode, value: serde_json::Value, extra: &[(&str, String)]) -> Result<Response<Body>, Error> {
    let mut b = Response::builder().status(status).header("content-type", "application/json");
    for (k, v) in extra {
        b = b.header(*k, v.as_str());
    }
    Ok(b.body(Body::from(value.to_string()))?)
}

fn error_response(e: &PoolError, now_ms: u64) -> Result<Response<Body>, Error> {
    let body = serde_json::json!({ "error": { "type": e.kind(), "message": e.to_string() } });
    match e {
        PoolError::NoHealthyKeys { retry_at_ms } => {
            let extra: Vec<(&str, String)> =
                retry_at_ms.map(|at| ("retry-after", (at.saturating_sub(now_ms).div_ceil(1000)).max(1).to_string())).into_iter().collect();
            json(if retry_at_ms.is_some() { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::SERVICE_UNAVAILABLE }, body, &extra)
        }
        PoolError::InvalidRequest(_) => json(StatusCode::BAD_REQUEST, body, &[]),
        PoolError::Timeout { .. } => json(StatusCode::GATEWAY_TIMEOUT, body, &[]),
        PoolError::InvalidConfig(_) => json(StatusCode::INTERNAL_SERVER_ERROR, body, &[]),
        _ => json(StatusCode::BAD_GATEWAY, body, &[]),
    }
}

fn now_ms() -> u64 {
    use poolswitch::core::Clock;
    host::WasiClock.now_ms()
}

pub async fn handle(request: http::Request<Body>) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_owned();
    if path == "/poolswitch/health" {
        return json(StatusCode::OK, serde_json::json!({ "status": "ok" }), &[]);
    }
    let config = match config::from_env() {
        Ok(c) => c,
        Err(e) => return error_response(&PoolError::InvalidConfig(e), now_ms()),
    };
    let client = match host::client(&config) {
        Ok(c) => c,
        Err(e) => return error_response(&PoolError::InvalidConfig(e), now_ms()),
    };
    let state = StateFile::from_env();
    if let Some(snapshot) = state.as_ref().and_then(StateFile::load) {
        client.import_state(&snapshot);
    }
    if path == "/poolswitch/status" {
        return json(StatusCode::OK, serde_json::to_value(client.status()).unwrap_or_default(), &[]);
    }

    let (parts, mut body) = request.into_parts();
    // Read once: a failover resends the same body on another key.
    let bytes: Bytes = body.bytes_contents().await?;
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let req = Request {
        method: parts.method,
        path: target,
        query: Vec::new(),
        headers: forwardable(&parts.headers),
        body: (!bytes.is_empty()).then_some(bytes),
        timeout_ms: None,
    };
    let base = client.export_state();
    let result = client.request(req).await;
    if let Some(s) = &state {
        s.save(&base, &client);
    }
    let reply = match result {
        Ok(r) => r,
        Err(e) => return error_response(&e, now_ms()),
    };
    let mut builder = Response::builder().status(reply.response.status);
    if let Some(h) = builder.headers_mut() {
        *h = forwardable(&reply.response.headers);
        h.insert("x-poolswitch-key-id", HeaderValue::from_str(&reply.key_id).unwrap_or(HeaderValue::from_static("?")));
        h.insert("x-poolswitch-attempts", HeaderValue::from(reply.attempts));
    }
    // The upstream body streams through (an error body was read once to classify it).
    Ok(builder.body(reply.response.body.into_body())?)
}
