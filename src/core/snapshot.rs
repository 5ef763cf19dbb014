//! Pool state as plain data that can be exported, imported and merged, so many instances
//! (workers, isolates, processes) can share one pool through a store such as Redis or a
//! Durable Object. Key values are never part of it.
//!
//! A snapshot comes from outside (a store, another instance, a caller), so unknown fields are
//! refused by name and, on import and merge, every counter is capped at [`MAX_COUNT`] and every
//! time at the clock plus [`TIME_HORIZON_MS`](super::limits::TIME_HORIZON_MS): no snapshot can make time arithmetic overflow
//! or a status number unrepresentable in JS.

use serde::{Deserialize, Serialize};

use super::classify::Outcome;
use super::error::ConfigError;
use super::limits::{clamp_at, MAX_COUNT};
use super::pool::{utc_month, Counters, KeySlot, Pool};

/// One key's shareable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct KeySnapshot {
    pub id: String,
    pub total_requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub failovers: u64,
    pub rate_limits: u64,
    pub stream_errors: u64,
    pub cooldown_until: Option<u64>,
    pub cooldown_reason: Option<String>,
    pub invalid: bool,
    pub remaining_requests: Option<u64>,
    pub requests_reset_at: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub tokens_reset_at: Option<u64>,
    pub last_used_at: Option<u64>,
    pub last_error: Option<String>,
    /// When the provider last reported the remaining counts above (epoch ms).
    pub limits_observed_at: Option<u64>,
    /// The UTC month (`yyyymm`) `month_successes` counts.
    pub month: Option<u32>,
    /// Successes in `month`, what `monthlyQuota` is spent by.
    pub month_successes: u64,
}

/// Every key's shareable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PoolSnapshot {
    pub keys: Vec<KeySnapshot>,
}

fn outcome_from_str(s: &str) -> Option<Outcome> {
    [Outcome::RateLimited, Outcome::QuotaExhausted, Outcome::InvalidKey].into_iter().find(|o| o.as_str() == s)
}

fn later(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.max(b)
}

/// The lower of two estimates, either one when only one is known.
fn lower(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Longest `lastError` kept from a snapshot (the core writes outcome names, a few bytes).
const MAX_LAST_ERROR_LEN: usize = 200;

fn cut(text: &str, max: usize) -> String {
    let end = (0..=max.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    text.get(..end).unwrap_or_default().to_owned()
}

impl KeySnapshot {
    /// The snapshot with every number brought within what the pool can hold at time `now`.
    fn bounded(&self, now: u64) -> Self {
        let at = |t: Option<u64>| t.map(|t| clamp_at(t, now));
        let n = |c: u64| c.min(MAX_COUNT);
        Self {
            id: self.id.clone(),
            total_requests: n(self.total_requests),
            successes: n(self.successes),
            errors: n(self.errors),
            failovers: n(self.failovers),
            rate_limits: n(self.rate_limits),
            stream_errors: n(self.stream_errors),
            cooldown_until: at(self.cooldown_until),
            cooldown_reason: self.cooldown_reason.clone(),
            invalid: self.invalid,
            remaining_requests: self.remaining_requests.map(n),
            requests_reset_at: at(self.requests_reset_at),
            remaining_tokens: self.remaining_tokens.map(n),
            tokens_reset_at: at(self.tokens_reset_at),
            // A last use is never later than now.
            last_used_at: self.last_used_at.map(|t| t.min(now)),
            last_error: self.last_error.as_deref().map(|e| cut(e, MAX_LAST_ERROR_LEN)),
            // A report is never later than now; a month never later than now's.
            limits_observed_at: self.limits_observed_at.map(|t| t.min(now)),
            month: self.month.map(|m| m.min(utc_month(now))),
            month_successes: n(self.month_successes),
        }
    }

    /// A key's state as exported: every number exact in JS, as in status.
    fn of(k: &KeySlot) -> Self {
        let n = |c: u64| c.min(MAX_COUNT);
        Self {
            id: k.id.clone(),
            total_requests: n(k.counters.total_requests.saturating_sub(k.counters.in_flight)),
            successes: n(k.counters.successes),
            errors: n(k.counters.errors),
            failovers: n(k.counters.failovers),
            rate_limits: n(k.counters.rate_limits),
            stream_errors: n(k.counters.stream_errors),
            cooldown_until: k.cooldown_until,
            cooldown_reason: k.cooldown_reason.map(|o| o.as_str().to_owned()),
            invalid: k.invalid,
            remaining_requests: k.remaining_requests.map(n),
            requests_reset_at: k.requests_reset_at,
            remaining_tokens: k.remaining_tokens.map(n),
            tokens_reset_at: k.tokens_reset_at,
            last_used_at: k.last_used_at,
            last_error: k.last_error.clone(),
            limits_observed_at: k.limits_observed_at,
            month: (k.month != 0).then_some(k.month),
            month_successes: n(k.month_successes),
        }
    }

    /// Replaces the key's state with this snapshot (requests in flight stay counted).
    fn replace_into(&self, k: &mut KeySlot) {
        let in_flight = k.counters.in_flight;
        k.counters = Counters {
            total_requests: self.total_requests.saturating_add(in_flight),
            successes: self.successes,
            errors: self.errors,
            failovers: self.failovers,
            rate_limits: self.rate_limits,
            in_flight,
            stream_errors: self.stream_errors,
            network_errors: k.counters.network_errors,
        };
        k.cooldown_until = self.cooldown_until;
        k.cooldown_reason = self.cooldown_reason.as_deref().and_then(outcome_from_str);
        k.invalid = self.invalid;
        k.remaining_requests = self.remaining_requests;
        k.requests_reset_at = self.requests_reset_at;
        k.remaining_tokens = self.remaining_tokens;
        k.tokens_reset_at = self.tokens_reset_at;
        k.last_used_at = self.last_used_at;
        k.last_error = self.last_error.clone();
        k.limits_observed_at = self.limits_observed_at;
        k.month = self.month.unwrap_or(0);
        k.month_successes = self.month_successes;
    }

    /// Merges another instance's state into this key: counters add, rests and times take the
    /// later value, remaining estimates the newest report (the lower when neither is timed),
    /// invalid sticks, this month's use adds. Counters come from outside,
    /// so they saturate rather than overflow.
    fn merge_into(&self, k: &mut KeySlot) {
        let c = &mut k.counters;
        let add = |a: u64, b: u64| a.saturating_add(b).min(MAX_COUNT);
        c.total_requests = add(c.total_requests, self.total_requests);
        c.successes = add(c.successes, self.successes);
        c.errors = add(c.errors, self.errors);
        c.failovers = add(c.failovers, self.failovers);
        c.rate_limits = add(c.rate_limits, self.rate_limits);
        c.stream_errors = add(c.stream_errors, self.stream_errors);
        if self.cooldown_until > k.cooldown_until {
            k.cooldown_until = self.cooldown_until;
            k.cooldown_reason = self.cooldown_reason.as_deref().and_then(outcome_from_str);
        }
        k.invalid |= self.invalid;
        match (self.limits_observed_at, k.limits_observed_at) {
            // The provider's newest word wins; a report with no time does not replace a timed one.
            (Some(theirs), mine) if mine.is_none_or(|m| theirs > m) => {
                k.remaining_requests = self.remaining_requests;
                k.requests_reset_at = self.requests_reset_at;
                k.remaining_tokens = self.remaining_tokens;
                k.tokens_reset_at = self.tokens_reset_at;
                k.limits_observed_at = Some(theirs);
            }
            (Some(_), _) | (None, Some(_)) => {}
            (None, None) => {
                k.remaining_requests = lower(k.remaining_requests, self.remaining_requests);
                k.requests_reset_at = later(k.requests_reset_at, self.requests_reset_at);
                k.remaining_tokens = lower(k.remaining_tokens, self.remaining_tokens);
                k.tokens_reset_at = later(k.tokens_reset_at, self.tokens_reset_at);
            }
        }
        // This month's use adds within one month; a later month starts over.
        let theirs = self.month.unwrap_or(0);
        if theirs == k.month {
            k.month_successes = k.month_successes.saturating_add(self.month_successes);
        } else if theirs > k.month {
            k.month = theirs;
            k.month_successes = self.month_successes;
        }
        if self.last_used_at > k.last_used_at && self.last_error.is_some() {
            k.last_error = self.last_error.clone();
        }
        k.last_used_at = later(k.last_used_at, self.last_used_at);
    }
}

impl PoolSnapshot {
    /// Parses a snapshot from JSON text (a store, another instance), naming the field on error.
    pub fn from_json_text(text: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(ConfigError::from_serde)
    }

    /// What changed since `base` (an earlier snapshot of the same pool): counters as
    /// differences, everything else as now. Merging it into a newer shared snapshot adds this
    /// instance's work without counting anyone's twice.
    pub fn since(&self, base: &PoolSnapshot) -> PoolSnapshot {
        let keys = self
            .keys
            .iter()
            .map(|k| match base.keys.iter().find(|b| b.id == k.id) {
                None => k.clone(),
                Some(b) => KeySnapshot {
                    total_requests: k.total_requests.saturating_sub(b.total_requests),
                    successes: k.successes.saturating_sub(b.successes),
                    errors: k.errors.saturating_sub(b.errors),
                    failovers: k.failovers.saturating_sub(b.failovers),
                    rate_limits: k.rate_limits.saturating_sub(b.rate_limits),
                    stream_errors: k.stream_errors.saturating_sub(b.stream_errors),
                    month_successes: if k.month == b.month {
                        k.month_successes.saturating_sub(b.month_successes)
                    } else {
                        k.month_successes
                    },
                    ..k.clone()
                },
            })
            .collect();
        PoolSnapshot { keys }
    }
}

impl Pool {
    /// The shareable state of every key.
    pub fn export(&self) -> PoolSnapshot {
        PoolSnapshot { keys: self.keys().map(KeySnapshot::of).collect() }
    }

    /// Replaces the state of each key named in the snapshot; ids not in the pool are ignored.
    pub fn import(&mut self, snapshot: &PoolSnapshot, now: u64) {
        for s in &snapshot.keys {
            let s = s.bounded(now);
            self.update(&s.id, now, |k| s.replace_into(k));
        }
    }

    /// Merges another instance's state (see [`KeySnapshot`] for the rules).
    pub fn merge(&mut self, snapshot: &PoolSnapshot, now: u64) {
        for s in &snapshot.keys {
            let s = s.bounded(now);
            self.update(&s.id, now, |k| s.merge_into(k));
        }
    }
}
