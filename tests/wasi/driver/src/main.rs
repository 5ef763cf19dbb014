//! Run by `wasmtime run -S http` after `wac plug` composed it with the client component: pools of
//! the `poolswitch:client` component it imports send sequential GETs and POSTs (no retries) to the
//! mock provider whose URL is the first argument, with the keys tests/wasi/load.js registered there
//! under the prefix given second. Prints one JSON line per round: the failed calls and the pool's
//! per-key counters, which the runner checks against the mock's log.
//!
//! The shared scenario list runs on Wasmtime through its Python embedding (python_host.py); this
//! is the CLI's own check, of the GETs that once failed at random under `wasmtime run`.

#[cfg(target_os = "wasi")]
mod load;

#[cfg(target_os = "wasi")]
fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mock), Some(prefix)) = (args.next(), args.next()) else {
        eprintln!("usage: poolswitch-wasi-driver MOCK_URL KEY_PREFIX");
        std::process::exit(2);
    };
    for round in 0..load::ROUNDS {
        println!("{}", load::round(&mock, &format!("{prefix}r{round}-")));
    }
}

#[cfg(not(target_os = "wasi"))]
fn main() {}
