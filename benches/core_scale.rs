//! Core cost of one request's bookkeeping — choose a key, book the start, book the answer —
//! for pools of 3, 100 and 10,000 keys under every strategy. No I/O: this is the pool's own
//! cost per request. Run: `cargo bench --bench core_scale` (prints a Markdown table). The same
//! program is built for wasm32-wasip2 and run in Node by bench/run.mjs (section 4).

use std::hint::black_box;
use std::time::{Duration, Instant};

use poolswitch::core::classify::{Classification, Outcome};
use poolswitch::core::config::{validate_key, KeyConfig, Strategy};
use poolswitch::core::limits::LimitsReport;
use poolswitch::core::pool::{AttemptEnd, Choice, Pool};
use poolswitch::core::SeededRng;

fn pool(size: usize, strategy: Strategy) -> Pool {
    let keys =
        (0..size).map(|i| validate_key(&KeyConfig::named(format!("k{i}"), format!("sk-{i}")), i + 1, "key", |_| false).expect("valid key"));
    Pool::new(keys.collect(), strategy, 3_600_000, None)
}

/// Nanoseconds per request, median of 5 timed runs of at least 200 ms each; or, with
/// `fixed`, just that many requests untimed (for counting instructions under valgrind).
fn measure(size: usize, strategy: Strategy, fixed: Option<u64>) -> f64 {
    let mut p = pool(size, strategy);
    let rng = SeededRng::new(|| 7);
    let ok = AttemptEnd::Response(Classification { outcome: Outcome::Success, limits: LimitsReport::default() });
    let mut now = 1_700_000_000_000u64;
    let mut events = Vec::new();
    let mut one = |p: &mut Pool| {
        now += 1;
        if let Choice::Key(slot) = p.choose(now, &[], &rng, &mut events) {
            black_box(p.begin(slot, now));
            p.finish(slot, now, ok, &mut events);
        }
        events.clear();
    };
    if let Some(n) = fixed {
        for _ in 0..n {
            one(&mut p);
        }
        return 0.0;
    }
    let mut runs = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..64 {
                one(&mut p);
            }
            n += 64;
        }
        runs.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn main() {
    // `core_scale <keys> <strategy> <requests>`: a fixed amount of work, for
    // `valgrind --tool=cachegrind`, whose counts do not depend on the machine's load.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let [size, strategy, n] = args.as_slice() {
        let strategy = serde_json::from_value(serde_json::json!(strategy)).expect("a strategy name");
        measure(size.parse().expect("a key count"), strategy, Some(n.parse().expect("a request count")));
        return;
    }
    let strategies = [Strategy::RoundRobin, Strategy::LeastUsed, Strategy::Random, Strategy::QuotaFailover, Strategy::Weighted];
    println!("| strategy | 3 keys (ns) | 100 keys (ns) | 10,000 keys (ns) | 10,000 / 3 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for s in strategies {
        let [a, b, c] = [3, 100, 10_000].map(|n| measure(n, s, None));
        println!("| {} | {a:.0} | {b:.0} | {c:.0} | {:.1}× |", s.as_str(), c / a);
    }
}
