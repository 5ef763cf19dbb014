//! Proxy mode, defined once: what both gateways (the Node `poolswitch-wasm serve` and the WASI
//! component under `wasmtime serve`) answer, and how. Host-free: each gateway keeps only its
//! sockets and streams and asks this module for every decision.
//!
//! - [`routes`]: the URLs (all local endpoints under `/poolswitch/`, so none can shadow an
//!   upstream path) and what each one is;
//! - [`auth`]: the gateway token, compared in constant time;
//! - [`settings`]: the proxy's config from a file object, `POOLSWITCH_*` variables and flags,
//!   unknown fields refused by name with the nearest known one;
//! - [`answer`]: error kind → HTTP status and JSON body, and the retry headers of a
//!   no-healthy-keys answer;
//! - [`headers`]: which headers cross the proxy, and the key-id header's encoding;
//! - [`metrics`]: the Prometheus text rendered from the pool's status.

pub mod answer;
pub mod auth;
pub mod headers;
pub mod metrics;
pub mod routes;
pub mod settings;

pub use answer::{error_answer, status_for, ErrorAnswer};
pub use auth::{presented_token, token_matches};
pub use headers::{forward_request_header, forward_response_header, key_id_header};
pub use metrics::render_metrics;
pub use routes::{route, Route, PREFIX};
pub use settings::{ProxyConfig, ProxySettings};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    /// Text drawn from the characters that matter to these parsers: separators, quotes, escapes,
    /// percent signs, control and non-Latin-1 characters.
    fn text(rng: &mut fastrand::Rng, max: usize) -> String {
        const PIECES: [&str; 24] = [
            "/",
            "poolswitch",
            "keys",
            "%",
            "%2F",
            "%FF",
            "?",
            "&",
            "=",
            ",",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "\\",
            "\n",
            " ",
            "é",
            "键",
            "\u{0}",
            "health",
            "Bearer ",
            "1e999",
        ];
        (0..rng.usize(0..max)).map(|_| PIECES[rng.usize(..PIECES.len())]).collect()
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..5_000 {
            let a = text(&mut rng, 12);
            let b = text(&mut rng, 12);
            let r = route(&a, &b);
            let _ = (r.needs_token(), r.name());
            let _ = token_matches(presented_token(Some(&a), Some(&b)), "gw-token-123");
            assert!(http::HeaderValue::from_str(&key_id_header(&a)).is_ok());
            let _ = forward_request_header(&a, Some(&b));
            let _ = settings::parse_key_body(&a);
            let _ = error_answer(&a, &b, Some(rng.u64(..)), rng.u64(..));
            let env =
                [(format!("POOLSWITCH_{}", ["KEYS", "PORT", "RATE_LIMIT_PER_SECOND", "DEFAULT_HEADERS", "X"][rng.usize(..5)]), b.clone())];
            let file = json!({ "upstream_base_url": "http://127.0.0.1:1", "keys": [a.clone()] });
            let resolved =
                ProxyConfig::resolve(&file, env.iter().map(|(k, v)| (k.as_str(), v.as_str())), &Map::new(), settings::Listen::Unknown);
            let _ = resolved.and_then(|c| c.pool());
            let status = json!({ "keys": [{ "id": a, "state": b, "totalRequests": rng.u64(..) }, { "id": 5 }, "x"], "healthyKeys": "no" });
            let _ = render_metrics(&status);
            let _ = render_metrics(&Value::String(b));
        }
    }
}
