//! The gateway token: presented as `Authorization: Bearer <token>` (what SDKs send as their API
//! key) or `x-poolswitch-token: <token>`, and compared in constant time.

use subtle::ConstantTimeEq;

/// The token a request presents, if any.
pub fn presented_token<'a>(authorization: Option<&'a str>, x_token: Option<&'a str>) -> Option<&'a str> {
    let bearer = authorization.and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer.or(x_token.map(str::trim))
}

/// Whether `given` is `expected`. The time taken depends on the lengths only, never on where
/// the first difference is.
pub fn token_matches(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_or_header() {
        assert_eq!(presented_token(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(presented_token(Some("bearer  abc "), Some("zzz")), Some("abc"));
        assert_eq!(presented_token(Some("Basic abc"), Some("zzz")), Some("zzz"));
        assert_eq!(presented_token(None, None), None);
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(token_matches(Some("gw-token-123"), "gw-token-123"));
        assert!(!token_matches(Some("gw-token-12"), "gw-token-123"));
        assert!(!token_matches(Some("gw-token-124"), "gw-token-123"));
        assert!(!token_matches(Some(""), "gw-token-123"));
        assert!(!token_matches(None, "gw-token-123"));
    }
}
