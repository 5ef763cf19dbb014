//! The upstream origin and the rules that keep keys on it.
//!
//! A request path is joined to the configured base; anything that could send the request (and
//! so the key) elsewhere is refused before a key is attached: another origin, `//host`,
//! backslashes, control characters, `.`/`..` segments (also percent-encoded), or a path outside
//! the base path.

use http::uri::{Scheme, Uri};

use super::error::{ConfigError, PoolError};

/// The configured upstream: scheme, authority and base path (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamBase {
    scheme: String,
    authority: String,
    path: String,
}

impl UpstreamBase {
    /// Accepts an absolute `http` or `https` URL without credentials, query or fragment.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let field = "upstream_base_url";
        let bad = |why: &str| ConfigError::new(field, why.to_owned());
        if url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
            return Err(bad("contains whitespace, control characters or backslashes"));
        }
        let uri: Uri = url.parse().map_err(|_| bad("is not an absolute http(s) URL"))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.as_str().to_owned(),
            Some(_) => return Err(bad("must use http or https")),
            None => return Err(bad("is not an absolute http(s) URL")),
        };
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not contain credentials"));
        }
        if authority.host().is_empty() {
            return Err(bad("has no host"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad("must not carry a query or fragment (use query_auth_param or default_headers)"));
        }
        let path = uri.path().trim_end_matches('/').to_owned();
        if has_dot_segment(&path) {
            return Err(bad("must not contain `.` or `..` segments"));
        }
        Ok(Self { scheme, authority: authority.as_str().to_ascii_lowercase(), path })
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The base as configured, normalised (no trailing slash).
    pub fn as_url(&self) -> String {
        format!("{}{}", self.origin(), self.path)
    }

    /// Resolves a caller's path (relative to the base, or an absolute URL on the same origin
    /// under the base path) to an absolute URL, refusing anything that leaves the base.
    pub fn resolve(&self, target: &str) -> Result<String, PoolError> {
        let refuse = |why: &str| PoolError::InvalidRequest(format!("path refused: {why}"));
        let target = target.split('#').next().unwrap_or_default();
        if target.chars().any(|c| c.is_control() || c == ' ' || c == '\\') {
            return Err(refuse("contains whitespace, control characters or backslashes"));
        }
        if target.starts_with("//") {
            return Err(refuse("a protocol-relative URL (`//host`) would leave the upstream origin"));
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let joined = if has_scheme(path) {
            let origin = self.origin();
            let rest = strip_prefix_ignore_case(path, &origin)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .ok_or_else(|| refuse("an absolute URL to another origin than the configured upstream"))?;
            let rest = if rest.is_empty() { "/" } else { rest };
            if !(rest == self.path || rest.starts_with(&format!("{}/", self.path)) || self.path.is_empty()) {
                return Err(refuse("outside the configured base path"));
            }
            rest.to_owned()
        } else if path.is_empty() {
            self.path.clone()
        } else if path.starts_with('/') {
            format!("{}{}", self.path, path)
        } else {
            format!("{}/{}", self.path, path)
        };
        if has_dot_segment(&joined) {
            return Err(refuse("`.` and `..` segments are not allowed"));
        }
        // One allocation for the URL (this runs on every request).
        let joined = if joined.is_empty() { "/" } else { joined.as_str() };
        let query = query.filter(|q| !q.is_empty());
        let mut url = String::with_capacity(self.scheme.len() + 3 + self.authority.len() + joined.len() + query.map_or(0, |q| q.len() + 1));
        for part in [self.scheme.as_str(), "://", self.authority.as_str(), joined] {
            url.push_str(part);
        }
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        // Parsing again proves the result is one well-formed URL on our authority.
        match url.parse::<Uri>() {
            Ok(u) if u.authority().map(|a| a.as_str().eq_ignore_ascii_case(&self.authority)) == Some(true) => Ok(url),
            _ => Err(refuse("not a valid URL path")),
        }
    }
}

fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i > 0 => {
            let scheme = &s[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !scheme.contains('/')
        }
        _ => false,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// A segment that is `.` or `..`, each dot also as `%2e`/`%2E` (compared in place: this runs
/// on every request).
fn has_dot_segment(path: &str) -> bool {
    fn is_dots(mut seg: &[u8]) -> bool {
        let mut dots = 0u8;
        loop {
            seg = match seg {
                [] => return dots > 0,
                [b'.', rest @ ..] | [b'%', b'2', b'e' | b'E', rest @ ..] => rest,
                _ => return false,
            };
            dots += 1;
            if dots > 2 {
                return false;
            }
        }
    }
    path.as_bytes().split(|b| *b == b'/').any(is_dots)
}

/// Appends `pairs` to the URL's query, percent-encoded; when `replace` names a parameter,
/// any occurrence of it already in the URL is dropped first (a caller's own `?key=`).
pub(super) fn with_query(url: &str, pairs: &[(String, String)], replace: Option<&str>) -> String {
    if pairs.is_empty() && replace.is_none() {
        return url.to_owned();
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut ser = form_urlencoded::Serializer::new(String::new());
    match replace {
        Some(name) => {
            for (k, v) in form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != name) {
                ser.append_pair(&k, &v);
            }
        }
        None if !query.is_empty() => {
            let mut out = format!("{base}?{query}");
            for (k, v) in pairs {
                out.push('&');
                out.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(k, v).finish());
            }
            return out;
        }
        None => {}
    }
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    if q.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{q}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> UpstreamBase {
        UpstreamBase::parse(s).expect("valid base")
    }

    #[test]
    fn joins_relative_paths_under_the_base_path() {
        let b = base("https://api.example.com/v1/");
        assert_eq!(b.resolve("/chat").unwrap(), "https://api.example.com/v1/chat");
        assert_eq!(b.resolve("chat?x=1").unwrap(), "https://api.example.com/v1/chat?x=1");
        assert_eq!(b.resolve("").unwrap(), "https://api.example.com/v1");
        // Only whole `.`/`..` segments are refused, however their dots are written.
        for fine in ["/a.b", "/...", "/%2e%2e%2e", "/.x", "/%2ex", "/%2"] {
            assert!(b.resolve(fine).is_ok(), "{fine} should be accepted");
        }
    }

    #[test]
    fn accepts_absolute_urls_on_the_same_origin_and_base() {
        let b = base("https://api.example.com/v1");
        assert_eq!(b.resolve("https://API.example.com/v1/models").unwrap(), "https://api.example.com/v1/models");
        assert!(b.resolve("https://api.example.com/v2/models").is_err());
    }

    #[test]
    fn refuses_everything_that_leaves_the_origin() {
        let b = base("https://api.example.com");
        for bad in [
            "https://evil.example.net/v1",
            "http://api.example.com/v1",
            "https://api.example.com.evil.net/x",
            "https://api.example.com@evil.net/x",
            "//evil.net/x",
            "/\\evil.net",
            "/v1/../../etc",
            "/v1/%2e%2e/x",
            "/v1/%2E/x",
            "/v1/.%2E/x",
            "/v1/%2e.",
            "/a b",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert!(b.resolve(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn base_url_rules() {
        for bad in [
            "ftp://x.com",
            "api.openai.com",
            "/v1",
            "https://u:p@x.com",
            "https://x.com?a=1",
            "https://x.com/a/../b",
            "https://",
            "http://x .com",
        ] {
            assert!(UpstreamBase::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(base("http://127.0.0.1:8080").as_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn query_pairs_are_encoded_and_auth_param_replaced() {
        let pairs = vec![("key".to_owned(), "a&b".to_owned())];
        assert_eq!(with_query("https://x/p?key=mine&q=1", &pairs, Some("key")), "https://x/p?q=1&key=a%26b");
        assert_eq!(with_query("https://x/p?q=1", &pairs, None), "https://x/p?q=1&key=a%26b");
        assert_eq!(with_query("https://x/p", &[], None), "https://x/p");
    }
}
