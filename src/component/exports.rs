//! The `poolswitch:client` world: WIT records in, core calls, WIT records out.
//! Each exported call runs its request to completion on wstd's reactor (`block_on`).

use std::collections::BTreeMap;

use http::HeaderMap;

use super::host::{client, WasiClient};
use crate::core::{self, ConfigError, KeyConfig, KeyState, Outcome, PoolConfig, PoolError, PoolSnapshot, Strategy};

wit_bindgen::generate!({ world: "poolswitch", path: "wit" });

use exports::poolswitch::client::client::{Guest, GuestPool, Pool};
use poolswitch::client::types as wit;

struct Component;

impl Guest for Component {
    type Pool = PoolResource;
}

/// The resource behind `pool`.
pub(crate) struct PoolResource {
    client: WasiClient,
}

fn strategy_from(s: wit::Strategy) -> Strategy {
    match s {
        wit::Strategy::RoundRobin => Strategy::RoundRobin,
        wit::Strategy::LeastUsed => Strategy::LeastUsed,
        wit::Strategy::Random => Strategy::Random,
        wit::Strategy::QuotaFailover => Strategy::QuotaFailover,
        wit::Strategy::Weighted => Strategy::Weighted,
    }
}

fn strategy_to(s: Strategy) -> wit::Strategy {
    match s {
        Strategy::RoundRobin => wit::Strategy::RoundRobin,
        Strategy::LeastUsed => wit::Strategy::LeastUsed,
        Strategy::Random => wit::Strategy::Random,
        Strategy::QuotaFailover => wit::Strategy::QuotaFailover,
        Strategy::Weighted => wit::Strategy::Weighted,
    }
}

fn outcome_to(o: Outcome) -> wit::Outcome {
    match o {
        Outcome::Success => wit::Outcome::Success,
        Outcome::RateLimited => wit::Outcome::RateLimited,
        Outcome::QuotaExhausted => wit::Outcome::QuotaExhausted,
        Outcome::InvalidKey => wit::Outcome::InvalidKey,
        Outcome::Overloaded => wit::Outcome::Overloaded,
        Outcome::ServerError => wit::Outcome::ServerError,
        Outcome::TooLarge => wit::Outcome::TooLarge,
        Outcome::ClientError => wit::Outcome::ClientError,
    }
}

fn config_error(e: ConfigError) -> wit::Error {
    wit::Error::InvalidConfig(wit::ConfigError { field: e.field, problem: e.problem })
}

fn pool_error(e: PoolError) -> wit::Error {
    match e {
        PoolError::InvalidConfig(c) => config_error(c),
        PoolError::InvalidRequest(m) => wit::Error::InvalidRequest(m),
        PoolError::NoHealthyKeys { retry_at_ms } => wit::Error::NoHealthyKeys(retry_at_ms),
        PoolError::Network { key_id, message } => wit::Error::Network(wit::NetworkError { key_id, message }),
        PoolError::Timeout { key_id, after_ms } => wit::Error::Timeout(wit::TimeoutError { key_id, after_ms }),
        PoolError::UnknownKey(id) => wit::Error::UnknownKey(id),
    }
}

fn key_from(k: wit::KeyConfig, field: &str) -> Result<KeyConfig, wit::Error> {
    let metadata = match k.metadata_json {
        None => None,
        Some(text) => {
            Some(serde_json::from_str(&text).map_err(|e| config_error(ConfigError::new(format!("{field}.metadata_json"), e.to_string())))?)
        }
    };
    Ok(KeyConfig { id: k.id, value: core::ApiKey::new(k.value), monthly_quota: k.monthly_quota, weight: k.weight, metadata })
}

fn config_from(c: wit::Config) -> Result<PoolConfig, wit::Error> {
    let keys = c.keys.into_iter().enumerate().map(|(i, k)| key_from(k, &format!("keys[{i}]"))).collect::<Result<Vec<_>, _>>()?;
    let mut config = PoolConfig::new(c.upstream_base_url, keys);
    if let Some(s) = c.strategy {
        config.strategy = strategy_from(s);
    }
    config.retry_attempts = c.retry_attempts.unwrap_or(config.retry_attempts);
    config.cooldown_seconds = c.cooldown_seconds.unwrap_or(config.cooldown_seconds);
    config.auth_header_name = c.auth_header_name.unwrap_or(config.auth_header_name);
    if let Some(scheme) = c.auth_scheme {
        config.auth_scheme = Some(scheme);
    }
    config.query_auth_param = c.query_auth_param;
    config.request_timeout_ms = c.request_timeout_ms;
    config.deadline_ms = c.deadline_ms;
    config.rate_limit_per_second = c.rate_limit_per_second;
    config.retryable_methods = c.retryable_methods.unwrap_or(config.retryable_methods);
    config.default_headers = c.default_headers.into_iter().collect::<BTreeMap<_, _>>();
    config.backoff_base_ms = c.backoff_base_ms.unwrap_or(config.backoff_base_ms);
    config.backoff_max_ms = c.backoff_max_ms.unwrap_or(config.backoff_max_ms);
    config.max_wait_ms = c.max_wait_ms.unwrap_or(config.max_wait_ms);
    Ok(config)
}

fn header_pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

fn key_state(s: KeyState) -> wit::KeyState {
    match s {
        KeyState::Healthy => wit::KeyState::Healthy,
        KeyState::Cooling => wit::KeyState::Cooling,
        KeyState::Exhausted => wit::KeyState::Exhausted,
        KeyState::Invalid => wit::KeyState::Invalid,
        KeyState::Disabled => wit::KeyState::Disabled,
    }
}

fn snapshot(json: &str) -> Result<PoolSnapshot, wit::Error> {
    PoolSnapshot::from_json_text(json).map_err(|e| config_error(e.within("snapshot")))
}

impl PoolResource {
    async fn send(&self, request: wit::Request) -> Result<wit::Response, wit::Error> {
        let headers = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let mut req = core::Request::parse(&request.method, request.path, headers).map_err(pool_error)?;
        req.query = request.query;
        req.body = request.body.map(Into::into);
        req.timeout_ms = request.timeout_ms;
        req.deadline_ms = request.deadline_ms;
        req.retry_attempts = request.retry_attempts;
        let reply = self.client.request(req).await.map_err(pool_error)?;
        let status = reply.response.status;
        let headers = header_pairs(&reply.response.headers);
        let key_id = reply.key_id.clone();
        let body = reply
            .response
            .body
            .into_bytes()
            .await
            .map_err(|e| wit::Error::Network(wit::NetworkError { key_id, message: e.message }))?
            .to_vec();
        if status >= 400 {
            return Err(wit::Error::Upstream(wit::UpstreamError {
                status,
                outcome: outcome_to(reply.outcome),
                key_id: reply.key_id,
                attempts: reply.attempts,
                retry_at_ms: reply.retry_at_ms,
                headers,
                body,
            }));
        }
        Ok(wit::Response { status, headers, body, key_id: reply.key_id, attempts: reply.attempts })
    }

    fn call(&self, method: &str, path: String, headers: Vec<(String, String)>, body: Option<Vec<u8>>) -> Result<wit::Response, wit::Error> {
        let request = wit::Request {
            method: method.to_owned(),
            path,
            query: Vec::new(),
            headers,
            body,
            timeout_ms: None,
            deadline_ms: None,
            retry_attempts: None,
        };
        wstd::runtime::block_on(self.send(request))
    }
}

impl GuestPool for PoolResource {
    fn create(config: wit::Config) -> Result<Pool, wit::Error> {
        let config = config_from(config)?;
        let client = client(&config).map_err(config_error)?;
        Ok(Pool::new(PoolResource { client }))
    }

    fn request(&self, request: wit::Request) -> Result<wit::Response, wit::Error> {
        wstd::runtime::block_on(self.send(request))
    }

    fn get(&self, path: String, headers: Vec<(String, String)>) -> Result<wit::Response, wit::Error> {
        self.call("GET", path, headers, None)
    }

    fn post(&self, path: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<wit::Response, wit::Error> {
        self.call("POST", path, headers, Some(body))
    }

    fn put(&self, path: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<wit::Response, wit::Error> {
        self.call("PUT", path, headers, Some(body))
    }

    fn patch(&self, path: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<wit::Response, wit::Error> {
        self.call("PATCH", path, headers, Some(body))
    }

    fn delete(&self, path: String, headers: Vec<(String, String)>) -> Result<wit::Response, wit::Error> {
        self.call("DELETE", path, headers, None)
    }

    fn status(&self) -> wit::PoolStatus {
        let s = self.client.status();
        wit::PoolStatus {
            strategy: strategy_to(self.client.config().strategy),
            upstream_base_url: s.upstream_base_url,
            total_requests: s.total_requests,
            successes: s.successes,
            error_count: s.error_count,
            failover_count: s.failover_count,
            healthy_keys: s.healthy_keys as u32,
            keys: s
                .keys
                .into_iter()
                .map(|k| wit::KeyStatus {
                    id: k.id,
                    state: key_state(k.state),
                    enabled: k.enabled,
                    total_requests: k.total_requests,
                    successes: k.successes,
                    error_count: k.error_count,
                    failover_count: k.failover_count,
                    rate_limit_count: k.rate_limit_count,
                    network_error_count: k.network_error_count,
                    stream_error_count: k.stream_error_count,
                    in_flight: k.in_flight,
                    estimated_remaining_quota: k.estimated_remaining_quota,
                    remaining_tokens: k.remaining_tokens,
                    monthly_quota: k.monthly_quota,
                    weight: k.weight,
                    last_used_at: k.last_used_at,
                    cooldown_until: k.cooldown_until,
                    last_error: k.last_error,
                    metadata_json: k.metadata.map(|m| serde_json::Value::Object(m).to_string()),
                })
                .collect(),
        }
    }

    fn add_key(&self, key: wit::KeyConfig) -> Result<String, wit::Error> {
        self.client.add_key(&key_from(key, "key")?).map_err(config_error)
    }

    fn remove_key(&self, id: String) -> Result<(), wit::Error> {
        self.client.remove_key(&id).map_err(pool_error)
    }

    fn set_key_enabled(&self, id: String, enabled: bool) -> Result<(), wit::Error> {
        self.client.set_enabled(&id, enabled).map_err(pool_error)
    }

    fn export_state(&self) -> String {
        serde_json::to_string(&self.client.export_state()).unwrap_or_default()
    }

    fn import_state(&self, json: String) -> Result<(), wit::Error> {
        self.client.import_state(&snapshot(&json)?);
        Ok(())
    }

    fn merge_state(&self, json: String) -> Result<(), wit::Error> {
        self.client.merge_state(&snapshot(&json)?);
        Ok(())
    }
}

export!(Component);
