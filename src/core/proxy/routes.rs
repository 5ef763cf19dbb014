//! The proxy's URLs. Everything under [`PREFIX`] is answered by the gateway itself and never
//! forwarded; every other origin-form path goes upstream.

/// The local endpoints' prefix: an upstream API has no reason to live under it.
pub const PREFIX: &str = "/poolswitch";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /poolswitch/health`: liveness, no token needed.
    Health,
    /// `GET /poolswitch/status`: the pool's status JSON.
    Status,
    /// `GET /poolswitch/metrics`: Prometheus text.
    Metrics,
    /// `POST /poolswitch/keys` with a key (string or object) as JSON.
    AddKey,
    /// `DELETE /poolswitch/keys/{id}`.
    RemoveKey(String),
    /// `POST /poolswitch/keys/{id}/enable`.
    EnableKey(String),
    /// `POST /poolswitch/keys/{id}/disable`.
    DisableKey(String),
    /// Anything else: forwarded through the pool.
    Forward,
    /// A path under the prefix that names no endpoint.
    NotFound,
    /// A local endpoint asked with the wrong method; `allow` is the method it takes.
    MethodNotAllowed { allow: &'static str },
    /// Not an origin-form target (`http://…`, `*`, empty, or a key id that is not UTF-8).
    BadTarget,
}

impl Route {
    /// Whether the gateway token (when one is configured) must be presented.
    pub fn needs_token(&self) -> bool {
        !matches!(self, Route::Health | Route::BadTarget)
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Status => "status",
            Route::Metrics => "metrics",
            Route::AddKey => "add_key",
            Route::RemoveKey(_) => "remove_key",
            Route::EnableKey(_) => "enable_key",
            Route::DisableKey(_) => "disable_key",
            Route::Forward => "forward",
            Route::NotFound => "not_found",
            Route::MethodNotAllowed { .. } => "method_not_allowed",
            Route::BadTarget => "bad_target",
        }
    }
}

/// The path of an origin-form request target (`/a/b?q` → `/a/b`), or `None` for any other form.
pub fn target_path(target: &str) -> Option<&str> {
    if !target.starts_with('/') {
        return None;
    }
    Some(target.split_once('?').map_or(target, |(p, _)| p))
}

fn only(method: &str, wanted: &'static str, then: Route) -> Route {
    if method.eq_ignore_ascii_case(wanted) {
        then
    } else {
        Route::MethodNotAllowed { allow: wanted }
    }
}

fn key_id(segment: &str) -> Option<String> {
    let id = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
    (!id.is_empty()).then(|| id.into_owned())
}

/// Matches a request line: `method` and the raw request target as the client sent it.
pub fn route(method: &str, target: &str) -> Route {
    let Some(path) = target_path(target) else { return Route::BadTarget };
    let Some(local) = path.strip_prefix(PREFIX) else { return Route::Forward };
    if !local.is_empty() && !local.starts_with('/') {
        return Route::Forward; // `/poolswitchfoo` is an upstream path
    }
    let parts: Vec<&str> = local.split('/').skip(1).collect();
    match parts.as_slice() {
        ["health"] => only(method, "GET", Route::Health),
        ["status"] => only(method, "GET", Route::Status),
        ["metrics"] => only(method, "GET", Route::Metrics),
        ["keys"] => only(method, "POST", Route::AddKey),
        ["keys", id] => match key_id(id) {
            Some(id) => only(method, "DELETE", Route::RemoveKey(id)),
            None => Route::BadTarget,
        },
        ["keys", id, action @ ("enable" | "disable")] => match key_id(id) {
            Some(id) if *action == "enable" => only(method, "POST", Route::EnableKey(id)),
            Some(id) => only(method, "POST", Route::DisableKey(id)),
            None => Route::BadTarget,
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints_match_method_and_path() {
        assert_eq!(route("GET", "/poolswitch/health"), Route::Health);
        assert_eq!(route("GET", "/poolswitch/status?pretty=1"), Route::Status);
        assert_eq!(route("GET", "/poolswitch/metrics"), Route::Metrics);
        assert_eq!(route("POST", "/poolswitch/keys"), Route::AddKey);
        assert_eq!(route("DELETE", "/poolswitch/keys/team%7Cblue"), Route::RemoveKey("team|blue".into()));
        assert_eq!(route("POST", "/poolswitch/keys/%C3%A9t%C3%A9/enable"), Route::EnableKey("été".into()));
        assert_eq!(route("POST", "/poolswitch/keys/b/disable"), Route::DisableKey("b".into()));
        assert_eq!(route("POST", "/poolswitch/status"), Route::MethodNotAllowed { allow: "GET" });
        assert_eq!(route("GET", "/poolswitch/keys/b"), Route::MethodNotAllowed { allow: "DELETE" });
        assert_eq!(route("GET", "/poolswitch/nope"), Route::NotFound);
        assert_eq!(route("GET", "/poolswitch"), Route::NotFound);
        assert_eq!(route("GET", "/poolswitch/keys/%FF"), Route::BadTarget);
    }

    #[test]
    fn everything_else_is_forwarded_and_odd_targets_are_refused() {
        assert_eq!(route("GET", "/v1/models"), Route::Forward);
        assert_eq!(route("POST", "/health"), Route::Forward, "the old Node paths are upstream paths now");
        assert_eq!(route("GET", "/poolswitchfoo"), Route::Forward);
        for bad in ["http://", "http://host/x", "*", "", "example.com:443"] {
            assert_eq!(route("GET", bad), Route::BadTarget, "{bad}");
        }
        assert!(!Route::Health.needs_token());
        assert!(Route::Forward.needs_token() && Route::Metrics.needs_token() && Route::NotFound.needs_token());
    }
}
