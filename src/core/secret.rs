//! API key values, kept in a type that never prints them.

use std::fmt;
use std::rc::Rc;

/// An API key value. `Debug` and `Display` are redacted, and it is not `Serialize`,
/// so a key cannot leak through logs, status or error text by accident. Shared, not copied:
/// every attempt takes one, and a copy would cost an allocation each time.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Rc<str>);

impl ApiKey {
    /// Wraps a key value. Validation happens in [`crate::core::config`].
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into())
    }

    /// The raw value, for the one place that needs it: building the outgoing request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> serde::Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = ApiKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ApiKey, E> {
                Ok(ApiKey::new(v))
            }
            // serde would quote the number back, and a key of digits is still a key.
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<ApiKey, E> {
                Err(E::custom(NUMBER))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<ApiKey, E> {
                Err(E::custom(NUMBER))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<ApiKey, E> {
                Err(E::custom(NUMBER))
            }
        }
        const NUMBER: &str = "expected a key string, got a number (a key made of digits must be quoted as a string)";
        d.deserialize_any(KeyVisitor)
    }
}

/// Keys at least this long are redacted wherever they appear; shorter ones only as whole tokens.
pub const REDACT_ANYWHERE_LEN: usize = 8;

/// Characters that continue a token: a short key inside a longer run of them is another word.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Replaces every occurrence of any key value in `text`, for messages that come from a host
/// (a transport error may quote the URL, which carries the key under query-parameter auth).
///
/// The rule: a key of [`REDACT_ANYWHERE_LEN`] characters or more is replaced wherever it
/// appears; a shorter key only where it stands as a whole token (not inside a run of letters,
/// digits, `-` and `_`), so a key such as `ab` does not turn "table" into "t<redacted>le".
pub fn redact<'a>(text: &str, keys: impl IntoIterator<Item = &'a ApiKey>) -> String {
    let mut out = text.to_owned();
    for key in keys {
        let k = key.expose();
        if k.is_empty() || !out.contains(k) {
            continue;
        }
        let anywhere = k.chars().count() >= REDACT_ANYWHERE_LEN;
        let mut next = String::with_capacity(out.len());
        let mut last = 0;
        for (at, _) in out.match_indices(k) {
            if at < last {
                continue; // overlaps the previous replacement
            }
            let before = out.get(..at).and_then(|s| s.chars().next_back());
            let after = out.get(at + k.len()..).and_then(|s| s.chars().next());
            if anywhere || !(before.is_some_and(is_token_char) || after.is_some_and(is_token_char)) {
                next.push_str(out.get(last..at).unwrap_or_default());
                next.push_str("<redacted>");
                last = at + k.len();
            }
        }
        next.push_str(out.get(last..).unwrap_or_default());
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let key = ApiKey::new("sk-secret");
        assert!(!format!("{key:?} {key}").contains("sk-secret"));
        assert_eq!(key.expose(), "sk-secret");
    }

    #[test]
    fn redact_removes_every_key() {
        let keys = [ApiKey::new("sk-a"), ApiKey::new("sk-b")];
        assert_eq!(redact("GET /x?key=sk-a and sk-b", &keys), "GET /x?key=<redacted> and <redacted>");
    }

    #[test]
    fn short_keys_are_redacted_only_as_whole_tokens() {
        let keys = [ApiKey::new("ab"), ApiKey::new("x1")];
        assert_eq!(redact("table stable ab, key=ab&x=x1", &keys), "table stable <redacted>, key=<redacted>&x=<redacted>");
        assert_eq!(redact("ab", &keys), "<redacted>");
        assert_eq!(redact("abab ab-c", &keys), "abab ab-c");
        let long = [ApiKey::new("sk-12345678")];
        assert_eq!(redact("xsk-12345678y", &long), "x<redacted>y", "a long key is redacted anywhere");
        assert_eq!(redact("ünïcode ab ü", &keys), "ünïcode <redacted> ü");
    }
}
