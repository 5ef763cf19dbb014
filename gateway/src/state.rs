//! Key state shared by the per-request instances of `wasmtime serve`, through a JSON file.
//!
//! Every request runs in a fresh instance, and many run at once. The file is read when a
//! request starts and written back when it ends, under a lock: `<file>.lock`, created with
//! create-new (`O_CREAT|O_EXCL`, which `wasi:filesystem` 0.2 offers as `open-at` with
//! `create` + `exclusive`; it has no `flock`).
//!
//! A writer waits for the lock until a deadline on its own monotonic clock. WASI shows no
//! other process, so whether the holder lives is judged by the lock itself: the holder
//! rewrites it between the steps of its save, and a waiter breaks it only when it has seen
//! it unchanged for [`STALE_MS`] of that monotonic clock. File timestamps are not trusted
//! (they come from another clock, and a lock dated in the future would never age). A holder
//! checks, before its final rename, that the lock is still its own, so a writer that was
//! judged dead after all drops its own counters instead of overwriting the next writer's.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use poolswitch::component::host::{seed, WasiClient};
use poolswitch::core::PoolSnapshot;

/// A lock seen unchanged this long was left by a writer that died. A save rewrites it between
/// steps that each read or write one small file: well under a millisecond apiece.
const STALE_MS: u64 = 2_000;
/// Longest a save waits for the lock before giving up (this request's counters are lost then).
/// Above [`STALE_MS`], so a dead writer's lock is broken within one wait.
const MAX_WAIT_MS: u64 = 3_000;
/// Pause between attempts to take the lock.
const RETRY_MS: u64 = 2;

/// The file named by `POOLSWITCH_STATE_FILE` (inside a directory preopened with `--dir`).
pub(crate) struct StateFile {
    path: String,
}

/// The held lock file; dropped (removed) when the save is done. It holds `<token>.<n>`, `n`
/// counting the holder's renewals.
struct Lock {
    path: String,
    token: String,
    file: File,
    renewals: u64,
}

impl Lock {
    fn write_mark(&mut self) {
        let mark = format!("{}.{}", self.token, self.renewals);
        // A failed write only makes the lock look idle to waiters: the stale rule then applies.
        let _ = self.file.seek(SeekFrom::Start(0)).and_then(|_| self.file.write_all(mark.as_bytes()));
        let _ = self.file.set_len(mark.len() as u64);
    }

    /// Shows waiters that this writer is alive and still working.
    fn renew(&mut self) {
        self.renewals = self.renewals.saturating_add(1);
        self.write_mark();
    }

    /// Whether the lock file is still this writer's (a waiter may have judged it stale).
    fn still_held(&self) -> bool {
        fs::read_to_string(&self.path).is_ok_and(|t| self.owns(&t))
    }

    fn owns(&self, text: &str) -> bool {
        text.strip_prefix(self.token.as_str()).is_some_and(|rest| rest.starts_with('.'))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed only while it is still this writer's (a waiter may have broken and retaken it).
        if self.still_held() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// How a waiter sees another writer's lock: its contents, and since when (monotonic) they
/// have not changed.
struct Watch {
    seen: String,
    since: Instant,
}

impl Watch {
    /// Whether the lock, now holding `current`, has stood still for [`STALE_MS`].
    fn stale(watch: &mut Option<Watch>, current: String, now: Instant) -> bool {
        match watch {
            Some(w) if w.seen == current => now.saturating_duration_since(w.since) >= Duration::from_millis(STALE_MS),
            _ => {
                *watch = Some(Watch { seen: current, since: now });
                false
            }
        }
    }
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

    /// Takes the lock, waiting until [`MAX_WAIT_MS`] have passed; `None` when it could not.
    fn lock(&self) -> Option<Lock> {
        let path = self.lock_path();
        let token = format!("{:016x}", seed());
        let deadline = Instant::now() + Duration::from_millis(MAX_WAIT_MS);
        let mut watch = None;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut lock = Lock { path, token, file, renewals: 0 };
                    lock.write_mark();
                    return Some(lock);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => match fs::read_to_string(&path) {
                    // Released between the two calls: try again at once.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    read => {
                        let current = read.unwrap_or_default();
                        if Watch::stale(&mut watch, current.clone(), Instant::now()) {
                            // Removed only if it is still the lock judged stale, not one just retaken.
                            if fs::read_to_string(&path).is_ok_and(|t| t == current) {
                                let _ = fs::remove_file(&path);
                            }
                            watch = None;
                            continue;
                        }
                    }
                },
                Err(_) => return None,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(Duration::from_millis(RETRY_MS)));
        }
    }

    /// Writes back this request's work: the file as it is now (other instances may have
    /// written since `base` was read), plus this instance's counters since `base`, with the
    /// later of each rest. Under the lock, so concurrent requests add up exactly; written to a
    /// temporary file and renamed, so readers (which take no lock) never see half a file.
    pub(crate) fn save(&self, base: &PoolSnapshot, client: &WasiClient) {
        let delta = client.export_state().since(base);
        let Some(mut lock) = self.lock() else {
            eprintln!("poolswitch-gateway: state file lock not taken within {MAX_WAIT_MS} ms; this request's counters are not saved");
            return;
        };
        if let Some(latest) = self.load() {
            client.import_state(&latest);
            client.merge_state(&delta);
        }
        lock.renew();
        let Ok(text) = serde_json::to_string(&client.export_state()) else { return };
        let tmp = format!("{}.{:016x}.tmp", self.path, seed());
        if fs::write(&tmp, text).is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        if !lock.still_held() {
            eprintln!("poolswitch-gateway: state file lock was broken as stale during this save; this request's counters are not saved");
            let _ = fs::remove_file(&tmp);
            return;
        }
        if fs::rename(&tmp, &self.path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}
