//! Runs the failover scenarios against the `poolswitch:client` component it imports, through
//! the mock provider whose URL is the first argument. Prints one JSON line per scenario.
//! Composed with the component (`wac plug`) and run by `wasmtime run -S http`.

#[cfg(target_os = "wasi")]
mod scenarios;

#[cfg(target_os = "wasi")]
fn main() {
    let url = std::env::args().nth(1).expect("usage: driver MOCK_URL");
    let only = std::env::args().nth(2);
    for (name, run) in scenarios::ALL {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let line = match run(&url) {
            Ok(()) => serde_json::json!({ "name": name, "ok": true }),
            Err(e) => serde_json::json!({ "name": name, "ok": false, "error": e }),
        };
        println!("{line}");
    }
}

#[cfg(not(target_os = "wasi"))]
fn main() {}
