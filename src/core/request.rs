//! A call as the caller describes it, and the checks every binding gets before a key is touched.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use super::config::{number_range, MAX_TIMEOUT_MS};
use super::error::PoolError;

/// A request as the caller describes it, relative to the upstream base.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path under the base URL (or an absolute URL on the same origin and base path).
    pub path: String,
    /// Extra query parameters, percent-encoded for you.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The body. A binding that keeps the body on its own side (JS) passes an empty one to say
    /// that there is a body.
    pub body: Option<Bytes>,
    /// Overrides `request_timeout_ms` for this request.
    pub timeout_ms: Option<u64>,
    /// Overrides `deadline_ms` for this request.
    pub deadline_ms: Option<u64>,
    /// Overrides `retry_attempts` for this request.
    pub retry_attempts: Option<u32>,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            timeout_ms: None,
            deadline_ms: None,
            retry_attempts: None,
        }
    }

    /// A request from a binding's plain values: the method by name (any case) and header
    /// pairs, each checked, so every binding refuses bad input with the same typed error.
    pub fn parse<'a>(method: &str, path: String, headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, PoolError> {
        // Bindings mostly pass the method upper-cased already: no copy then.
        let upper;
        let name = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            upper = method.to_ascii_uppercase();
            upper.as_str()
        } else {
            method
        };
        let parsed =
            Method::from_bytes(name.as_bytes()).map_err(|_| PoolError::InvalidRequest(format!("`{method}` is not an HTTP method")))?;
        let mut req = Self::new(parsed, path);
        req.headers = Self::header_map(headers)?;
        Ok(req)
    }

    /// A caller's header pairs, each checked, as [`Request::parse`] takes them.
    pub fn header_map<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap, PoolError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let n = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PoolError::InvalidRequest(format!("`{name}` is not a valid header name")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| PoolError::InvalidRequest(format!("the value of header `{name}` is not valid")))?;
            map.append(n, v);
        }
        Ok(map)
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Refuses what no upstream call should carry: tunnelling and tracing methods (CONNECT
    /// would turn the pool into a proxy for the key; TRACE echoes it back), a body on GET or
    /// HEAD (hosts refuse or drop it), and timeouts out of range.
    pub fn check(&self) -> Result<(), PoolError> {
        if self.method == Method::CONNECT || self.method == Method::TRACE {
            return Err(PoolError::InvalidRequest(format!("the method {} is not sent through the pool", self.method)));
        }
        if self.body.is_some() && (self.method == Method::GET || self.method == Method::HEAD) {
            return Err(PoolError::InvalidRequest(format!("a {} request cannot have a body", self.method)));
        }
        // The range is looked up only for a request that sets its own count.
        if let Some(n) = self.retry_attempts {
            if let Some((min, max)) = number_range("retry_attempts").filter(|(min, max)| !(*min..=*max).contains(&u64::from(n))) {
                return Err(PoolError::InvalidRequest(format!("retryAttempts must be between {min} and {max}")));
            }
        }
        for (name, value) in [("timeoutMs", self.timeout_ms), ("deadlineMs", self.deadline_ms)] {
            if value.is_some_and(|ms| !(1..=MAX_TIMEOUT_MS).contains(&ms)) {
                return Err(PoolError::InvalidRequest(format!("{name} must be between 1 and {MAX_TIMEOUT_MS}")));
            }
        }
        Ok(())
    }
}
