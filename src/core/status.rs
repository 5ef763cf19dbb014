//! What `status()` reports: per key and pool totals, never a key value.

use serde::Serialize;

use super::classify::Outcome;
use super::limits::MAX_COUNT;
use super::pool::{KeySlot, Pool, Readiness};

/// A key's health in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Ready (or only briefly held back by its own rate ceiling).
    Healthy,
    /// Resting after a rate limit.
    Cooling,
    /// Out of quota, by the provider's word or by a quota error, until its reset.
    Exhausted,
    /// Rejected by the provider; out of rotation until re-enabled.
    Invalid,
    /// Switched off by the user.
    Disabled,
}

/// One key's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub id: String,
    pub state: KeyState,
    pub enabled: bool,
    pub total_requests: u64,
    pub successes: u64,
    pub error_count: u64,
    pub failover_count: u64,
    pub rate_limit_count: u64,
    pub in_flight: u64,
    pub stream_error_count: u64,
    pub network_error_count: u64,
    pub estimated_remaining_quota: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub monthly_quota: Option<u64>,
    pub weight: u32,
    /// Epoch ms.
    pub last_used_at: Option<u64>,
    /// Epoch ms; when the key returns from a rest (cooldown or provider reset).
    pub cooldown_until: Option<u64>,
    pub last_error: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The whole pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    pub strategy: &'static str,
    pub upstream_base_url: String,
    pub total_requests: u64,
    pub successes: u64,
    pub error_count: u64,
    pub failover_count: u64,
    pub healthy_keys: usize,
    pub keys: Vec<KeyStatus>,
}

/// Every number in status is exact in JS (a provider or a snapshot may hand the pool any u64).
fn count(n: u64) -> u64 {
    n.min(MAX_COUNT)
}

/// A pool total: saturating, then within what JS holds exactly.
fn total(keys: &[KeyStatus], field: impl Fn(&KeyStatus) -> u64) -> u64 {
    count(keys.iter().fold(0u64, |sum, k| sum.saturating_add(field(k))))
}

fn key_status(key: &KeySlot, now: u64) -> KeyStatus {
    let readiness = key.readiness(now);
    let state = match readiness {
        _ if !key.enabled => KeyState::Disabled,
        _ if key.invalid => KeyState::Invalid,
        Readiness::At(_) if key.cooldown_reason == Some(Outcome::RateLimited) && key.cooldown_until.is_some_and(|t| t > now) => {
            KeyState::Cooling
        }
        Readiness::At(_) => KeyState::Exhausted,
        _ => KeyState::Healthy,
    };
    let cooldown_until = match readiness {
        Readiness::At(t) => Some(t),
        _ => None,
    };
    KeyStatus {
        id: key.id.clone(),
        state,
        enabled: key.enabled,
        total_requests: count(key.counters.total_requests),
        successes: count(key.counters.successes),
        error_count: count(key.counters.errors),
        failover_count: count(key.counters.failovers),
        rate_limit_count: count(key.counters.rate_limits),
        in_flight: count(key.counters.in_flight),
        stream_error_count: count(key.counters.stream_errors),
        network_error_count: count(key.counters.network_errors),
        estimated_remaining_quota: key.estimated_remaining(now).map(count),
        remaining_tokens: key.remaining_tokens.filter(|_| key.tokens_reset_at.is_none_or(|t| t > now)).map(count),
        monthly_quota: key.monthly_quota.map(count),
        weight: key.weight,
        last_used_at: key.last_used_at,
        cooldown_until,
        last_error: key.last_error.clone(),
        metadata: key.metadata.clone(),
    }
}

/// Builds the status report at time `now`.
pub(super) fn pool_status(pool: &Pool, upstream_base_url: String, now: u64) -> PoolStatus {
    let strategy = pool.strategy().as_str();
    let keys: Vec<KeyStatus> = pool.keys().map(|k| key_status(k, now)).collect();
    PoolStatus {
        strategy,
        upstream_base_url,
        total_requests: total(&keys, |k| k.total_requests),
        successes: total(&keys, |k| k.successes),
        error_count: total(&keys, |k| k.error_count),
        failover_count: total(&keys, |k| k.failover_count),
        healthy_keys: keys.iter().filter(|k| k.state == KeyState::Healthy).count(),
        keys,
    }
}
