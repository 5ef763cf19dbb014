//! Key state shared by the per-request instances of `wasmtime serve`, through a JSON file.
//!
//! Every request runs in a fresh instance, and many run at once. The file is read when a
//! request starts and written back when it ends, under a lock: `<file>.lock`, created with
//! create-new (`O_CREAT|O_EXCL`, which `wasi:filesystem` 0.2 offers as `open-at` with
//! `create` + `exclusive`; it has no `flock`). A writer waits a bounded time for the lock; a
//! lock older than [`STALE_MS`] (its writer died mid-save) is broken.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::time::{Duration, SystemTime};

use poolswitch::component::host::WasiClient;
use poolswitch::core::PoolSnapshot;

/// A lock held this long is taken to be left by a writer that died. A save holds it for one
/// read and one write of a small file: well under a millisecond.
const STALE_MS: u64 = 2_000;
/// Longest a save waits for the lock before giving up (this request's counters are lost then).
const MAX_WAIT_MS: u64 = 3_000;
/// Pause between attempts to take the lock.
const RETRY_MS: u64 = 2;

/// The file named by `POOLSWITCH_STATE_FILE` (inside a directory preopened with `--dir`).
pub(crate) struct StateFile {
    path: String,
}

/// The held lock file; dropped (removed) when the save is done.
struct Lock {
    path: String,
    token: String,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed only while it still holds this writer's token (a stale-lock breaker may
        // have replaced it).
        if fs::read_to_string(&self.path).is_ok_and(|t| t == self.token) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn age_ms(path: &str) -> Option<u64> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    Some(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
}

impl StateFile {
    pub(crate) fn new(path: Option<&str>) -> Option<Self> {
        path.map(|p| Self { path: p.to_owned() })
    }

    pub(crate) fn load(&self) -> Option<PoolSnapshot> {
        let text = fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn lock_path(&self) -> String {
        format!("{}.lock", self.path)
    }

    /// Takes the lock, waiting at most [`MAX_WAIT_MS`]; `None` when it could not.
    fn lock(&self) -> Option<Lock> {
        let path = self.lock_path();
        let token = format!("{:016x}", poolswitch::component::host::seed());
        let mut waited = 0;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    // An empty or unreadable token only means Drop leaves the file to the stale rule.
                    let _ = file.write_all(token.as_bytes());
                    return Some(Lock { path, token });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if age_ms(&path).is_some_and(|age| age > STALE_MS) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                }
                Err(_) => return None,
            }
            if waited >= MAX_WAIT_MS {
                return None;
            }
            std::thread::sleep(Duration::from_millis(RETRY_MS));
            waited += RETRY_MS;
        }
    }

    /// Writes back this request's work: the file as it is now (other instances may have
    /// written since `base` was read), plus this instance's counters since `base`, with the
    /// later of each rest. Under the lock, so concurrent requests add up exactly; written to a
    /// temporary file and renamed, so readers (which take no lock) never see half a file.
    pub(crate) fn save(&self, base: &PoolSnapshot, client: &WasiClient) {
        let delta = client.export_state().since(base);
        let Some(_lock) = self.lock() else {
            eprintln!("poolswitch-gateway: state file lock not taken within {MAX_WAIT_MS} ms; this request's counters are not saved");
            return;
        };
        if let Some(latest) = self.load() {
            client.import_state(&latest);
            client.merge_state(&delta);
        }
        let Ok(text) = serde_json::to_string(&client.export_state()) else { return };
        let tmp = format!("{}.{:016x}.tmp", self.path, poolswitch::component::host::seed());
        if fs::write(&tmp, text).is_ok() && fs::rename(&tmp, &self.path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}
