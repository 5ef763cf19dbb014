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
        String::deserialize(d).map(ApiKey::new)
    }
}

/// Replaces every occurrence of any key value in `text`, for messages that come from a host
/// (a transport error may quote the URL, which carries the key under query-parameter auth).
pub fn redact<'a>(text: &str, keys: impl IntoIterator<Item = &'a ApiKey>) -> String {
    let mut out = text.to_owned();
    for key in keys {
        if !key.0.is_empty() && out.contains(key.expose()) {
            out = out.replace(key.expose(), "<redacted>");
        }
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
}
