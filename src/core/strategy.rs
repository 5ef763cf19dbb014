//! The five ways to choose among ready keys, as the pool's index sees them: three order the
//! keys by a rank (lowest first, ties by configuration order), two draw at random.

use super::config::Strategy;
use super::index::Rank;
use super::pool::KeySlot;

/// Whether ready keys are drawn at random (in proportion to their weight) rather than ranked.
pub(super) fn is_sampled(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::Random | Strategy::Weighted)
}

/// A ready key's rank under `strategy` at `now`. The pool re-ranks a key whenever it changes
/// and when a provider window it depends on ends, so ranks never go stale.
pub(super) fn rank(strategy: Strategy, key: &KeySlot, now: u64) -> Rank {
    match strategy {
        // Round robin as "least recently used": the same order as a cursor, but it survives
        // keys being skipped, added or removed, and state imported from other instances.
        // Never-used keys (0) come before any use.
        Strategy::RoundRobin => [key.last_used_at.map_or(0, |t| t.saturating_add(1)), key.last_used_seq, 0, 0],
        Strategy::LeastUsed => [key.counters.total_requests, 0, 0, 0],
        // Most remaining first (unknown counts as plenty), then fewest rate limits, errors and
        // requests.
        Strategy::QuotaFailover => {
            let remaining = key.estimated_remaining(now).unwrap_or(u64::MAX);
            [u64::MAX - remaining, key.counters.rate_limits, key.counters.errors, key.counters.total_requests]
        }
        Strategy::Random | Strategy::Weighted => [0; 4],
    }
}

/// A ready key's share in a random draw: its weight under `weighted`, 1 otherwise.
pub(super) fn draw_weight(strategy: Strategy, key: &KeySlot) -> u64 {
    match strategy {
        Strategy::Weighted => key.weight.into(),
        _ => 1,
    }
}
