//! The gateway's config: the proxy schema of the core, read from `POOLSWITCH_*` variables.

use poolswitch::core::proxy::settings::Listen;
use poolswitch::core::proxy::ProxyConfig;
use poolswitch::core::ConfigError;

/// Reads the whole config; the error names the field or variable. `wasmtime serve --addr`
/// decides where this gateway is reachable and it cannot see that address, so it needs a
/// token or an explicit `POOLSWITCH_ALLOW_UNAUTHENTICATED=true`.
pub(crate) fn from_env() -> Result<ProxyConfig, ConfigError> {
    // `vars_os`: `vars` panics on a variable that is not UTF-8; such a one is not ours anyway.
    let vars: Vec<(String, String)> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    let env = vars.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    ProxyConfig::resolve(&serde_json::Value::Null, env, &serde_json::Map::new(), Listen::Unknown)
}
