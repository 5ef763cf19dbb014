//! Which headers cross the proxy, both ways, and the encoding of the key-id header.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `host` and
/// `content-length`, which the gateway's HTTP stack sets for the message it sends. Dropped both
/// ways, as is every name the message's own `Connection` header lists.
pub const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Request headers that never go upstream: the ones that carry the gateway token. The pool sets
/// its own auth header, and a token sent to a provider that reads another header would be
/// handed to that provider.
pub const REQUEST_ONLY: [&str; 2] = ["authorization", "x-poolswitch-token"];

/// Response headers dropped when the host's HTTP client has already undone the content encoding.
pub const DECODED_ONLY: [&str; 1] = ["content-encoding"];

/// HTTP's optional whitespace around list elements: spaces and tabs only (RFC 9110 §5.6.1).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn listed_in_connection(name: &str, connection: Option<&str>) -> bool {
    connection.is_some_and(|c| c.split(',').any(|token| trim_ows(token).eq_ignore_ascii_case(name)))
}

fn any_is(names: &[&str], name: &str) -> bool {
    names.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn hop_by_hop(name: &str, connection: Option<&str>) -> bool {
    any_is(&HOP_BY_HOP, name) || listed_in_connection(name, connection)
}

/// Whether a caller's request header goes upstream. `connection` is the request's own
/// `Connection` header (the names it lists are hop-by-hop too); see [`REQUEST_ONLY`].
pub fn forward_request_header(name: &str, connection: Option<&str>) -> bool {
    !hop_by_hop(name, connection) && !any_is(&REQUEST_ONLY, name)
}

/// Whether an upstream response header goes back to the caller. `body_decoded`: the host's
/// HTTP client has already undone the content encoding (Node's fetch does; wasi:http does not).
pub fn forward_response_header(name: &str, connection: Option<&str>, body_decoded: bool) -> bool {
    !(hop_by_hop(name, connection) || (body_decoded && any_is(&DECODED_ONLY, name)))
}

/// Bytes outside visible ASCII, space and `%` are percent-encoded, so any key id fits in a
/// header value and decodes back unambiguously.
const KEY_ID: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

/// The value of `x-poolswitch-key-id` for a key id: the id itself when it is visible ASCII,
/// else percent-encoded UTF-8 (`été` → `%C3%A9t%C3%A9`).
pub fn key_id_header(id: &str) -> String {
    utf8_percent_encode(id, KEY_ID).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_lose_hop_by_hop_and_token_headers() {
        for name in ["Connection", "keep-alive", "TE", "transfer-encoding", "upgrade", "host", "content-length", "proxy-authorization"] {
            assert!(!forward_request_header(name, None), "{name}");
        }
        assert!(!forward_request_header("authorization", None));
        assert!(!forward_request_header("x-poolswitch-token", None));
        assert!(!forward_request_header("x-trace", Some("close, X-Trace")));
        assert!(forward_request_header("x-trace", Some("close")));
        assert!(!forward_request_header("x-trace", Some("close,\tX-Trace ")), "spaces and tabs around a listed name");
        assert!(forward_request_header("x-trace", Some("close, x-trace\u{a0}")), "only spaces and tabs are HTTP whitespace");
        assert!(forward_request_header("content-type", None));
        assert!(forward_request_header("x-api-version", None));
    }

    #[test]
    fn responses_lose_hop_by_hop_and_a_decoded_encoding() {
        assert!(!forward_response_header("transfer-encoding", None, false));
        assert!(!forward_response_header("content-length", None, false));
        assert!(!forward_response_header("x-hop", Some("x-hop"), false));
        assert!(forward_response_header("content-encoding", None, false));
        assert!(!forward_response_header("content-encoding", None, true));
        assert!(forward_response_header("x-ratelimit-remaining-requests", None, true));
        assert!(forward_response_header("authorization", None, true), "a response header is not the caller's token");
    }

    #[test]
    fn key_ids_become_header_safe() {
        assert_eq!(key_id_header("team|blue"), "team|blue");
        assert_eq!(key_id_header("été"), "%C3%A9t%C3%A9");
        assert_eq!(key_id_header("a b%\n"), "a%20b%25%0A");
        assert_eq!(key_id_header("键"), "%E9%94%AE");
        for id in ["été", "a b%\n", "x\"y\\z", "键"] {
            assert!(http::HeaderValue::from_str(&key_id_header(id)).is_ok());
            assert_eq!(percent_encoding::percent_decode_str(&key_id_header(id)).decode_utf8().unwrap(), id);
        }
    }
}
