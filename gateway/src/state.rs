//! Key state shared by the per-request instances of `wasmtime serve`, through a JSON file.

use poolswitch::component::host::WasiClient;
use poolswitch::core::PoolSnapshot;

/// The file named by `POOLSWITCH_STATE_FILE` (inside a directory preopened with `--dir`).
pub struct StateFile {
    path: String,
}

impl StateFile {
    pub fn new(path: Option<&str>) -> Option<Self> {
        path.map(|p| Self { path: p.to_owned() })
    }

    pub fn load(&self) -> Option<PoolSnapshot> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes back this request's work: the file as it is now (other instances may have
    /// written since `base` was read), plus this instance's counters since `base`, with the
    /// later of each cooldown. Written to a temporary file and renamed, so readers never see
    /// half a file. Two instances finishing at the same instant can still lose one's counters
    /// (WASI 0.2 has no file locks); cooldowns are kept by the next write either way.
    pub fn save(&self, base: &PoolSnapshot, client: &WasiClient) {
        let delta = client.export_state().since(base);
        if let Some(latest) = self.load() {
            client.import_state(&latest);
            client.merge_state(&delta);
        }
        let Ok(text) = serde_json::to_string(&client.export_state()) else { return };
        let tmp = format!("{}.{}.tmp", self.path, poolswitch::component::host::seed());
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &self.path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
