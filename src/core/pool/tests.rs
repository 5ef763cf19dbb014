//! The indexed choice against a linear model: thousands of random steps (time passing,
//! answers of every kind, provider windows, rate ceilings, keys switched off, removed and
//! added) and at each step the pool must choose exactly what a scan over all keys would.

use super::*;
use crate::core::config::{validate_key, KeyConfig};
use crate::core::limits::LimitsReport;
use crate::core::SeededRng;

/// What a full scan would choose at `now`: the old linear algorithm, kept as the oracle.
fn scan(pool: &Pool, now: u64, tried: &[usize], rng: &impl Rng) -> Choice {
    let mut ready = Vec::new();
    let (mut rest, mut shaped): (Option<u64>, Option<u64>) = (None, None);
    for (slot, key) in pool.slots.iter().enumerate() {
        let Some(key) = key else { continue };
        match key.readiness(now) {
            Readiness::Now => ready.push(slot),
            Readiness::At(t) => rest = Some(rest.map_or(t, |e| e.min(t))),
            Readiness::Shaped(t) => shaped = Some(shaped.map_or(t, |e| e.min(t))),
            Readiness::Never => {}
        }
    }
    let untried: Vec<usize> = ready.iter().copied().filter(|s| !tried.contains(s)).collect();
    let candidates = if untried.is_empty() { ready } else { untried };
    let key = |slot: usize| pool.slots[slot].as_ref().expect("live");
    if !candidates.is_empty() {
        let slot = if strategy::is_sampled(pool.strategy) {
            let weights: Vec<u64> = candidates.iter().map(|s| strategy::draw_weight(pool.strategy, key(*s))).collect();
            let mut ticket = rng.below(weights.iter().sum());
            let mut chosen = candidates[0];
            for (s, w) in candidates.iter().zip(weights) {
                if ticket < w {
                    chosen = *s;
                    break;
                }
                ticket -= w;
            }
            chosen
        } else {
            *candidates.iter().min_by_key(|s| (strategy::rank(pool.strategy, key(**s), now), **s)).expect("non-empty")
        };
        return Choice::Key(slot);
    }
    match (rest, shaped) {
        (_, Some(s)) if rest.is_none_or(|e| s <= e) => Choice::Wait { until: s, shaping: true },
        (Some(e), _) => Choice::Wait { until: e, shaping: false },
        _ => Choice::None,
    }
}

fn key(i: usize) -> ValidKey {
    let mut config = KeyConfig::named(format!("k{i}"), format!("sk-value-{i}"));
    config.weight = Some((i % 4 + 1) as u32);
    config.monthly_quota = (i % 3 == 0).then_some(50 + i as u64);
    validate_key(&config, i + 1, "key", |_| false).expect("valid key")
}

fn answer(dice: &impl Rng, now: u64) -> AttemptEnd {
    let limits = || LimitsReport {
        remaining_requests: (dice.below(3) == 0).then(|| dice.below(4)),
        requests_reset_at: (dice.below(2) == 0).then(|| now + dice.below(5_000)),
        remaining_tokens: (dice.below(6) == 0).then(|| dice.below(3)),
        tokens_reset_at: (dice.below(2) == 0).then(|| now + dice.below(5_000)),
        retry_after_ms: (dice.below(2) == 0).then(|| dice.below(4_000)),
    };
    let outcome = match dice.below(20) {
        0..=10 => Outcome::Success,
        11..=13 => Outcome::RateLimited,
        14 => Outcome::QuotaExhausted,
        15 => Outcome::InvalidKey,
        16 => Outcome::ServerError,
        17 => return AttemptEnd::Network,
        18 => return AttemptEnd::Timeout,
        _ => return AttemptEnd::Cancelled,
    };
    AttemptEnd::Response(Classification { outcome, limits: limits() })
}

fn run(strategy: Strategy, rate: Option<f64>, seed: u64) {
    let dice = SeededRng::new(move || seed);
    let mut pool = Pool::new((0..12).map(key).collect(), strategy, 2_500, rate);
    let mut next_key = 12;
    let mut now = 1_000_000u64;
    let mut in_flight: Vec<usize> = Vec::new();
    let mut last_exchange = pool.export();
    for step in 0..4_000 {
        now += [0, 1, 7, 150, 900][dice.below(5) as usize];
        let tried: Vec<usize> = (0..dice.below(3)).map(|_| dice.below(next_key as u64) as usize).collect();
        let draw_seed = dice.next_u64();
        let expected = scan(&pool, now, &tried, &SeededRng::new(move || draw_seed));
        let got = pool.choose(now, &tried, &SeededRng::new(move || draw_seed), &mut EventBuffer::new());
        assert_eq!(got, expected, "{strategy:?} seed {seed} step {step}");
        if let Choice::Key(slot) = got {
            pool.begin(slot, now).expect("chosen key is live");
            in_flight.push(slot);
        }
        // Answers come back out of order, some after their key was changed.
        while !in_flight.is_empty() && dice.below(3) != 0 {
            let slot = in_flight.swap_remove(dice.below(in_flight.len() as u64) as usize);
            pool.finish(slot, now, answer(&dice, now), &mut EventBuffer::new());
        }
        match dice.below(60) {
            0 => {
                let id = format!("k{}", dice.below(next_key as u64));
                let on = dice.below(2) == 0;
                pool.update(&id, now, |k| {
                    k.enabled = on;
                    if on {
                        k.invalid = false;
                    }
                });
            }
            1 if pool.len() > 1 => {
                pool.remove(&format!("k{}", dice.below(next_key as u64)));
            }
            2 => {
                pool.insert(key(next_key), now);
                next_key += 1;
            }
            3 => {
                // Another instance's work since the last exchange, as the gateway merges it.
                let snapshot = pool.export();
                pool.merge(&snapshot.since(&last_exchange), now);
                last_exchange = snapshot;
            }
            _ => {}
        }
    }
}

#[test]
fn indexed_choice_matches_a_full_scan_for_every_strategy() {
    let strategies = [Strategy::RoundRobin, Strategy::LeastUsed, Strategy::Random, Strategy::Weighted, Strategy::QuotaFailover];
    for (i, strategy) in strategies.into_iter().enumerate() {
        for seed in 1..=4 {
            run(strategy, None, seed * 31 + i as u64);
            run(strategy, Some(3.0), seed * 57 + i as u64);
        }
    }
}
