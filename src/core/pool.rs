//! Pool state: one slot per key with its counters, health and limit estimates, and the
//! choice of the next key. Plain data, mutated only in short synchronous sections.

use std::collections::HashMap;

use super::backoff::rate_limit_cooldown_ms;
use super::classify::{Classification, Outcome};
use super::config::{Strategy, ValidKey};
use super::events::{EventBuffer, PoolEvent};
use super::host::Rng;
use super::index::{KeyIndex, Place, Placement};
use super::limits::min_opt;
use super::secret::ApiKey;
use super::strategy;

mod month;
pub use month::utc_month;

/// How long a key the provider called empty rests when the provider gave no reset time.
const UNKNOWN_RESET_MS: u64 = 60_000;

/// Per-key counters. `total_requests = successes + errors + in_flight` at every moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub total_requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub failovers: u64,
    pub rate_limits: u64,
    pub in_flight: u64,
    /// Responses handed to the caller whose body broke off mid-way (counted apart: the
    /// request itself was booked as a success when its status and headers arrived).
    pub stream_errors: u64,
    /// Attempts that got no answer at all (connection refused or reset): part of `errors`.
    pub network_errors: u64,
}

/// A token bucket for `rate_limit_per_second`.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    updated_ms: u64,
    rate_per_ms: f64,
    capacity: f64,
}

impl TokenBucket {
    fn new(per_second: f64, now: u64) -> Self {
        let capacity = per_second.max(1.0);
        Self { tokens: capacity, updated_ms: now, rate_per_ms: per_second / 1000.0, capacity }
    }
    fn tokens_at(&self, now: u64) -> f64 {
        let elapsed = now.saturating_sub(self.updated_ms) as f64;
        (self.tokens + elapsed * self.rate_per_ms).min(self.capacity)
    }
    /// When the next token is there (now if one is). Counted from the last take, so the answer
    /// is the same whenever it is asked.
    fn ready_at(&self, now: u64) -> u64 {
        if self.tokens >= 1.0 {
            return now;
        }
        let at = self.updated_ms.saturating_add(((1.0 - self.tokens) / self.rate_per_ms).ceil() as u64);
        at.max(now)
    }
    fn take(&mut self, now: u64) {
        self.tokens = self.tokens_at(now) - 1.0;
        self.updated_ms = now;
    }
}

/// One key and everything known about it.
#[derive(Debug, Clone)]
pub struct KeySlot {
    pub id: String,
    pub value: ApiKey,
    pub weight: u32,
    pub monthly_quota: Option<u64>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub enabled: bool,
    pub counters: Counters,
    pub cooldown_until: Option<u64>,
    pub cooldown_reason: Option<Outcome>,
    pub invalid: bool,
    pub consecutive_rate_limits: u32,
    pub remaining_requests: Option<u64>,
    pub requests_reset_at: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub tokens_reset_at: Option<u64>,
    pub last_used_at: Option<u64>,
    /// Order of last use within this instance, breaking ties of `last_used_at` in one millisecond.
    pub last_used_seq: u64,
    pub last_error: Option<String>,
    pub bucket: Option<TokenBucket>,
    /// The UTC month (`yyyymm`) `month_successes` counts, 0 before the first success.
    pub month: u32,
    /// Successes in `month`: what `monthly_quota` is spent by.
    pub month_successes: u64,
    /// When the provider last reported remaining requests or tokens (epoch ms), so instances
    /// sharing state keep the newest report.
    pub limits_observed_at: Option<u64>,
}

/// Whether a key can take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Now,
    /// Cooling or known empty until then.
    At(u64),
    /// Only its own rate ceiling holds it back, until then.
    Shaped(u64),
    /// Invalid or disabled: not until a person acts.
    Never,
}

impl KeySlot {
    fn new(key: ValidKey) -> Self {
        Self {
            id: key.id,
            value: key.value,
            weight: key.weight,
            monthly_quota: key.monthly_quota,
            metadata: key.metadata,
            enabled: true,
            counters: Counters::default(),
            cooldown_until: None,
            cooldown_reason: None,
            invalid: false,
            consecutive_rate_limits: 0,
            remaining_requests: None,
            requests_reset_at: None,
            remaining_tokens: None,
            tokens_reset_at: None,
            last_used_at: None,
            last_used_seq: 0,
            last_error: None,
            bucket: None,
            month: 0,
            month_successes: 0,
            limits_observed_at: None,
        }
    }

    /// The time until which the provider said the key is empty, if it is.
    fn known_empty_until(&self, now: u64) -> Option<u64> {
        let req = (self.remaining_requests == Some(0)).then_some(self.requests_reset_at).flatten().filter(|t| *t > now);
        let tok = (self.remaining_tokens == Some(0)).then_some(self.tokens_reset_at).flatten().filter(|t| *t > now);
        req.max(tok)
    }

    pub fn readiness(&self, now: u64) -> Readiness {
        if !self.enabled || self.invalid {
            return Readiness::Never;
        }
        if let Some(until) = self.cooldown_until.filter(|t| *t > now) {
            return Readiness::At(until);
        }
        if let Some(until) = self.known_empty_until(now) {
            return Readiness::At(until);
        }
        match self.bucket.as_ref().map(|b| b.ready_at(now)) {
            Some(at) if at > now => Readiness::Shaped(at),
            _ => Readiness::Now,
        }
    }

    /// Successes in the UTC month of `now`.
    pub fn successes_this_month(&self, now: u64) -> u64 {
        if self.month == utc_month(now) {
            self.month_successes
        } else {
            0
        }
    }

    /// Estimated requests left: the lower of the provider's latest word (while its window
    /// lasts) and the monthly quota minus this month's use; `None` when nothing is known.
    pub fn estimated_remaining(&self, now: u64) -> Option<u64> {
        let from_headers = self.remaining_requests.filter(|_| self.requests_reset_at.is_none_or(|t| t > now));
        let from_quota = self.monthly_quota.map(|q| q.saturating_sub(self.successes_this_month(now)));
        match (from_headers, from_quota) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the provider's current window for a known count ends, if one is known and ahead:
    /// the estimate (and so the key's rank) changes by itself then.
    fn window_end(&self, now: u64) -> Option<u64> {
        let req = self.remaining_requests.and(self.requests_reset_at).filter(|t| *t > now);
        let tok = self.remaining_tokens.and(self.tokens_reset_at).filter(|t| *t > now);
        min_opt(req, tok)
    }

    /// Clears rests that have run out, reporting whether the key just came back.
    fn expire(&mut self, now: u64) -> bool {
        let mut recovered = false;
        if self.cooldown_until.is_some_and(|t| t <= now) {
            self.cooldown_until = None;
            self.cooldown_reason = None;
            recovered = true;
        }
        if self.requests_reset_at.is_some_and(|t| t <= now) {
            recovered |= self.remaining_requests == Some(0);
            self.remaining_requests = None;
            self.requests_reset_at = None;
        }
        if self.tokens_reset_at.is_some_and(|t| t <= now) {
            recovered |= self.remaining_tokens == Some(0);
            self.remaining_tokens = None;
            self.tokens_reset_at = None;
        }
        recovered && self.enabled && !self.invalid
    }
}

/// The result of asking the pool for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Use the key in this slot.
    Key(usize),
    /// No key is ready; the earliest returns at this time (epoch ms). `shaping` is true when
    /// only the per-key rate ceiling holds keys back.
    Wait { until: u64, shaping: bool },
    /// Every key is invalid or disabled.
    None,
}

/// What an attempt ended in, for the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Response(Classification),
    Network,
    Timeout,
    /// The caller dropped the request (abort) while this attempt was in flight.
    Cancelled,
}

/// All keys of one client.
#[derive(Debug)]
pub struct Pool {
    /// Removed keys leave `None`, so the slot numbers held by requests in flight stay valid.
    slots: Vec<Option<KeySlot>>,
    by_id: HashMap<String, usize>,
    /// Where each key stands, kept in step with `slots` by [`Pool::reindex`] after every change.
    index: KeyIndex,
    strategy: Strategy,
    use_seq: u64,
    cooldown_ms: u64,
    rate_limit_per_second: Option<f64>,
}

impl Pool {
    pub fn new(keys: Vec<ValidKey>, strategy: Strategy, cooldown_ms: u64, rate_limit_per_second: Option<f64>) -> Self {
        let index = KeyIndex::new(strategy::is_sampled(strategy));
        let mut pool = Self { slots: Vec::new(), by_id: HashMap::new(), index, strategy, use_seq: 0, cooldown_ms, rate_limit_per_second };
        for key in keys {
            pool.insert(key, 0);
        }
        pool
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Live keys in configuration order.
    pub fn keys(&self) -> impl Iterator<Item = &KeySlot> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn contains_value(&self, value: &ApiKey) -> bool {
        self.keys().any(|k| &k.value == value)
    }

    /// Changes the key named `id` at time `now` and re-files it; `None` if there is no such key.
    pub fn update<R>(&mut self, id: &str, now: u64, change: impl FnOnce(&mut KeySlot) -> R) -> Option<R> {
        let slot = *self.by_id.get(id)?;
        self.update_slot(slot, now, change)
    }

    fn update_slot<R>(&mut self, slot: usize, now: u64, change: impl FnOnce(&mut KeySlot) -> R) -> Option<R> {
        let result = change(self.slots.get_mut(slot)?.as_mut()?);
        self.reindex(slot, now);
        Some(result)
    }

    /// Files `slot` in the index by its standing at `now`.
    fn reindex(&mut self, slot: usize, now: u64) {
        let placement = match self.slots.get(slot).and_then(Option::as_ref) {
            None => Placement::default(),
            Some(key) => {
                let place = match key.readiness(now) {
                    Readiness::Never => Place::Out,
                    Readiness::At(t) => Place::Resting(t),
                    Readiness::Shaped(t) => Place::Shaped(t),
                    Readiness::Now => {
                        Place::Ready { rank: strategy::rank(self.strategy, key, now), weight: strategy::draw_weight(self.strategy, key) }
                    }
                };
                Placement { place, revisit_at: key.window_end(now) }
            }
        };
        self.index.place(slot, placement);
    }

    pub fn insert(&mut self, key: ValidKey, now: u64) {
        let slot = self.slots.len();
        self.by_id.insert(key.id.clone(), slot);
        self.slots.push(Some(KeySlot::new(key)));
        self.reindex(slot, now);
    }

    pub fn remove(&mut self, id: &str) -> bool {
        match self.by_id.remove(id) {
            Some(slot) => {
                self.slots[slot] = None;
                self.index.place(slot, Placement::default());
                true
            }
            None => false,
        }
    }

    /// Picks the key for the next attempt. Keys already tried by this request are passed over
    /// while an untried one is ready. O(log n) in the number of keys, plus the keys whose
    /// rest or window ended since the last call.
    pub fn choose(&mut self, now: u64, tried: &[usize], rng: &impl Rng, events: &mut EventBuffer) -> Choice {
        if self.index.any_due(now) {
            for slot in self.index.due(now) {
                if let Some(key) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                    if key.expire(now) {
                        events.push(PoolEvent::Recovered { key_id: key.id.clone() });
                    }
                }
                self.reindex(slot, now);
            }
        }
        if let Some(slot) = self.index.pick(tried, rng) {
            return Choice::Key(slot);
        }
        match (self.index.first_rest_end(), self.index.first_shaped_end()) {
            (earliest, Some(s)) if earliest.is_none_or(|e| s <= e) => Choice::Wait { until: s, shaping: true },
            (Some(e), _) => Choice::Wait { until: e, shaping: false },
            _ => Choice::None,
        }
    }

    /// Books the start of an attempt and returns the key to send with.
    pub fn begin(&mut self, slot: usize, now: u64) -> Option<(String, ApiKey)> {
        let rate = self.rate_limit_per_second;
        self.use_seq += 1;
        let seq = self.use_seq;
        self.update_slot(slot, now, |key| {
            key.counters.total_requests = key.counters.total_requests.saturating_add(1);
            key.counters.in_flight += 1;
            key.last_used_at = Some(now);
            key.last_used_seq = seq;
            // Spend the provider's remaining count now, so concurrent requests spread out.
            if let Some(r) = key.remaining_requests.as_mut() {
                *r = r.saturating_sub(1);
            }
            if let Some(per_second) = rate {
                key.bucket.get_or_insert_with(|| TokenBucket::new(per_second, now)).take(now);
            }
            (key.id.clone(), key.value.clone())
        })
    }

    /// Books the end of an attempt: counters, limit estimates, cooldowns.
    pub fn finish(&mut self, slot: usize, now: u64, end: AttemptEnd, events: &mut EventBuffer) {
        let cooldown_ms = self.cooldown_ms;
        self.update_slot(slot, now, |key| book_end(key, now, end, cooldown_ms, events));
    }
}

/// The books of one attempt's end on its key: counters, limit estimates, rests.
fn book_end(key: &mut KeySlot, now: u64, end: AttemptEnd, cooldown_ms: u64, events: &mut EventBuffer) {
    key.counters.in_flight = key.counters.in_flight.saturating_sub(1);
    let classification = match end {
        AttemptEnd::Response(c) => c,
        AttemptEnd::Network | AttemptEnd::Timeout | AttemptEnd::Cancelled => {
            key.counters.errors = key.counters.errors.saturating_add(1);
            let reason = match end {
                AttemptEnd::Network => {
                    key.counters.network_errors = key.counters.network_errors.saturating_add(1);
                    "network"
                }
                AttemptEnd::Timeout => "timeout",
                _ => "cancelled",
            };
            key.last_error = Some(reason.to_owned());
            return;
        }
    };
    apply_limits(key, &classification, now);
    let outcome = classification.outcome;
    if outcome == Outcome::Success {
        key.counters.successes = key.counters.successes.saturating_add(1);
        let month = utc_month(now);
        key.month_successes = if key.month == month { key.month_successes.saturating_add(1) } else { 1 };
        key.month = month;
        key.consecutive_rate_limits = 0;
        return;
    }
    key.counters.errors = key.counters.errors.saturating_add(1);
    key.last_error = Some(outcome.as_str().to_owned());
    let until = match outcome {
        Outcome::RateLimited => {
            key.counters.rate_limits = key.counters.rate_limits.saturating_add(1);
            key.consecutive_rate_limits = key.consecutive_rate_limits.saturating_add(1);
            let wait = classification.limits.retry_after_ms.unwrap_or_else(|| rate_limit_cooldown_ms(key.consecutive_rate_limits));
            Some(now.saturating_add(wait.max(1)))
        }
        Outcome::QuotaExhausted => Some(now.saturating_add(cooldown_ms)),
        Outcome::InvalidKey => {
            key.invalid = true;
            None
        }
        _ => return,
    };
    key.counters.failovers = key.counters.failovers.saturating_add(1);
    // A later rest already set by a concurrent request is kept.
    if let Some(t) = until {
        if key.cooldown_until.is_none_or(|cur| cur < t) {
            key.cooldown_until = Some(t);
            key.cooldown_reason = Some(outcome);
        }
    }
    events.push(PoolEvent::Cooldown { key_id: key.id.clone(), reason: outcome, until_ms: until });
}

fn apply_limits(key: &mut KeySlot, c: &Classification, now: u64) {
    let l = &c.limits;
    if l.remaining_requests.is_some() || l.remaining_tokens.is_some() {
        key.limits_observed_at = Some(now);
    }
    if let Some(r) = l.remaining_requests {
        key.remaining_requests = Some(r);
        key.requests_reset_at = l.requests_reset_at.or((r == 0).then_some(now.saturating_add(UNKNOWN_RESET_MS)));
    }
    if let Some(r) = l.remaining_tokens {
        key.remaining_tokens = Some(r);
        key.tokens_reset_at = l.tokens_reset_at.or((r == 0).then_some(now.saturating_add(UNKNOWN_RESET_MS)));
    }
}

#[cfg(test)]
mod tests;
