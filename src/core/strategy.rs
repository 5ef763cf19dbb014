//! The five ways to choose among ready keys. Each gets only keys that can serve now.

use super::config::Strategy;
use super::host::Rng;
use super::pool::KeySlot;

/// Chooses one slot from `candidates` (non-empty, all live, in slot order).
pub fn pick(strategy: Strategy, slots: &[Option<KeySlot>], candidates: &[usize], now: u64, rng: &impl Rng) -> usize {
    let key = |slot: usize| slots[slot].as_ref();
    match strategy {
        // Round robin as "least recently used": the same order as a cursor, but it survives
        // keys being skipped, added or removed, and state imported from other instances.
        Strategy::RoundRobin => *candidates
            .iter()
            .min_by_key(|s| key(**s).map_or((Some(u64::MAX), u64::MAX), |k| (k.last_used_at, k.last_used_seq)))
            .unwrap_or(&candidates[0]),
        Strategy::LeastUsed => {
            *candidates.iter().min_by_key(|s| key(**s).map_or(u64::MAX, |k| k.counters.total_requests)).unwrap_or(&candidates[0])
        }
        Strategy::Random => candidates[rng.below(candidates.len() as u64) as usize],
        Strategy::Weighted => {
            let total: u64 = candidates.iter().map(|s| key(*s).map_or(0, |k| k.weight as u64)).sum();
            let mut ticket = rng.below(total);
            for s in candidates {
                let w = key(*s).map_or(0, |k| k.weight as u64);
                if ticket < w {
                    return *s;
                }
                ticket -= w;
            }
            candidates[0]
        }
        Strategy::QuotaFailover => *candidates
            .iter()
            .min_by_key(|s| {
                key(**s).map_or((0, u64::MAX, u64::MAX, u64::MAX), |k| {
                    // Most remaining first (unknown counts as plenty), then fewest rate limits,
                    // errors and requests.
                    let remaining = k.estimated_remaining(now).unwrap_or(u64::MAX);
                    (u64::MAX - remaining, k.counters.rate_limits, k.counters.errors, k.counters.total_requests)
                })
            })
            .unwrap_or(&candidates[0]),
    }
}
