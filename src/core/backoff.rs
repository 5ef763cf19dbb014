//! Backoff delays: exponential, capped, with jitter so many waiting callers do not return together.

use super::host::Rng;

/// Delay before retry number `retry` (1-based): half of `base·2^(retry-1)` (capped at `max`)
/// plus a random share of the other half ("equal jitter": never zero, never above the cap).
pub(super) fn backoff_ms(retry: u32, base: u64, max: u64, rng: &impl Rng) -> u64 {
    let exp = base.saturating_mul(1u64 << retry.saturating_sub(1).min(30)).min(max);
    let half = exp / 2;
    half + rng.below(exp - half + 1)
}

/// Cooldown for a rate-limited key that gave no `retry-after`: 1 s, 2 s, 4 s … up to 60 s
/// as the same key keeps being rate limited.
pub(super) fn rate_limit_cooldown_ms(consecutive: u32) -> u64 {
    (1000u64 << consecutive.saturating_sub(1).min(6)).min(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Fixed(Cell<u64>);
    impl Rng for Fixed {
        fn next_u64(&self) -> u64 {
            self.0.get()
        }
    }

    #[test]
    fn grows_and_caps() {
        let low = Fixed(Cell::new(0));
        let high = Fixed(Cell::new(u64::MAX));
        assert_eq!(backoff_ms(1, 200, 10_000, &low), 100);
        assert_eq!(backoff_ms(1, 200, 10_000, &high), 200);
        assert_eq!(backoff_ms(3, 200, 10_000, &low), 400);
        assert_eq!(backoff_ms(40, 200, 10_000, &high), 10_000);
        assert_eq!(rate_limit_cooldown_ms(1), 1000);
        assert_eq!(rate_limit_cooldown_ms(3), 4000);
        assert_eq!(rate_limit_cooldown_ms(99), 60_000);
    }
}
