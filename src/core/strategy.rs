//! The five ways to choose among ready keys. Each gets only keys that can serve now.

use super::config::Strategy;
use super::host::Rng;
use super::pool::KeySlot;

/// Chooses one slot from `candidates` (non-empty, all live, in slot order).
pub fn pick(strategy: Strategy, slots: &[Option<KeySlot>], candidates: &[usize], cursor: &mut usize, now: u64, rng: &impl Rng) -> usize {
    let key = |slot: usize| slots[slot].as_ref();
    match strategy {
        Strategy::RoundRobin => {
            // The first ready slot at or after the cursor, wrapping around.
            let chosen = candidates.iter().copied().find(|s| *s >= *cursor).unwrap_or(candidates[0]);
            *cursor = chosen + 1;
            chosen
        }
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
