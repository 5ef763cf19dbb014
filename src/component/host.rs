//! WASI host adapters for the core, shared by the client component and the gateway.

use bytes::Bytes;
use http_body_util::BodyExt;
use wstd::http::{Body, Client};

use crate::core::{Clock, HttpRequest, HttpResponse, ResponseBody, SeededRng, Sleeper, Transport, TransportError};

/// Error bodies are kept up to this size (for classification and for the caller).
const ERROR_BODY_CAP: usize = 1 << 20;

/// `wasi:http/outgoing-handler`, through wstd's client.
#[derive(Default)]
pub struct WasiTransport {
    client: Client,
}

/// A response body: still streaming from the upstream, or read (error bodies are read once
/// to classify them, and kept for the caller).
pub enum WasiBody {
    Streaming(Body),
    Buffered(Bytes),
}

impl WasiBody {
    /// The body as wstd's type, for handing on (a gateway response streams it through).
    pub fn into_body(self) -> Body {
        match self {
            WasiBody::Streaming(b) => b,
            WasiBody::Buffered(bytes) => bytes.into(),
        }
    }

    /// Reads the whole body (up to the cap for error bodies).
    pub async fn into_bytes(self) -> Result<Bytes, TransportError> {
        match self {
            WasiBody::Buffered(b) => Ok(b),
            WasiBody::Streaming(mut b) => b.bytes_contents().await.map_err(|e| TransportError::new(e.to_string())),
        }
    }
}

impl ResponseBody for WasiBody {
    async fn peek(&mut self, limit: usize) -> Vec<u8> {
        if let WasiBody::Streaming(body) = self {
            let mut inner = std::mem::replace(body, Body::empty()).into_boxed_body();
            let mut buf = Vec::new();
            while buf.len() < ERROR_BODY_CAP {
                match inner.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    _ => break,
                }
            }
            buf.truncate(ERROR_BODY_CAP);
            *self = WasiBody::Buffered(buf.into());
        }
        match self {
            WasiBody::Buffered(b) => b[..b.len().min(limit)].to_vec(),
            WasiBody::Streaming(_) => Vec::new(),
        }
    }
}

impl Transport for WasiTransport {
    type Body = WasiBody;

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse<WasiBody>, TransportError> {
        let mut builder = http::Request::builder().method(request.method).uri(request.url.as_str());
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers;
        }
        let outgoing = builder.body(request_body(request.body)).map_err(|e| TransportError::new(e.to_string()))?;
        let response = self.client.send(outgoing).await.map_err(|e| transport_error(&e))?;
        let (parts, body) = response.into_parts();
        Ok(HttpResponse { status: parts.status.as_u16(), headers: parts.headers, body: WasiBody::Streaming(body) })
    }
}

/// The outgoing body of a request. Without content, nothing is written: only `finish` is called on
/// the outgoing body. (wstd's `Body::empty()` writes zero bytes first; that write's `check-write`
/// fails with `closed` once Wasmtime's client has dropped the body channel of a body-less request,
/// which it may do as soon as the request head is sent, and wstd reports it as a connection reset.)
pub fn request_body(content: Option<Bytes>) -> Body {
    match content {
        Some(bytes) if !bytes.is_empty() => Body::from(bytes),
        _ => Body::from_http_body(http_body_util::Empty::<Bytes>::new()),
    }
}

/// A wasi:http failure, told apart by whether anything can have reached the upstream: a name
/// that did not resolve or a connection that could not be made sent nothing.
fn transport_error(e: &wstd::http::Error) -> TransportError {
    use wstd::http::error::ErrorCode;
    let connect = matches!(
        e.downcast_ref::<ErrorCode>(),
        Some(
            ErrorCode::DnsTimeout
                | ErrorCode::DnsError(_)
                | ErrorCode::DestinationNotFound
                | ErrorCode::DestinationUnavailable
                | ErrorCode::DestinationIpProhibited
                | ErrorCode::DestinationIpUnroutable
                | ErrorCode::ConnectionRefused
                | ErrorCode::ConnectionTimeout
                | ErrorCode::TlsCertificateError
        )
    );
    if connect {
        TransportError::connect(e.to_string())
    } else {
        TransportError::new(e.to_string())
    }
}

/// `wasi:clocks/wall-clock` (std's `SystemTime` on wasip2).
pub struct WasiClock;

impl Clock for WasiClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// `wasi:clocks/monotonic-clock` timers, through wstd's reactor.
pub struct WasiSleeper;

impl Sleeper for WasiSleeper {
    async fn sleep(&self, ms: u64) {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
    }
}

/// A seed from `wasi:random`.
pub fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    wstd::rand::get_random_bytes(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// The core client on WASI.
pub type WasiClient = crate::core::PoolClient<WasiTransport, WasiClock, WasiSleeper, SeededRng<fn() -> u64>>;

/// Builds a client from a config on WASI.
pub fn client(config: &crate::core::PoolConfig) -> Result<WasiClient, crate::core::ConfigError> {
    WasiClient::new(config, WasiTransport::default(), WasiClock, WasiSleeper, SeededRng::new(seed as fn() -> u64))
}
