//! What every call of one pool shares: the validated config, the key state, the random
//! source, the event listener and the events not yet delivered. Calls borrow it briefly, in
//! plain synchronous sections; a binding keeps it in one `RefCell`.

use std::cell::RefCell;
use std::rc::Rc;

use super::config::{validate_key, KeyConfig, PoolConfig, ValidConfig};
use super::error::{ConfigError, PoolError};
use super::events::{EventBuffer, PoolEvent};
use super::host::Rng;
use super::pool::Pool;
use super::secret::redact;
use super::snapshot::PoolSnapshot;
use super::status::{pool_status, PoolStatus};

/// Receives pool events; it may call back into the client (events are delivered after the
/// shared state is released).
pub type Listener = Rc<dyn Fn(&PoolEvent)>;

/// One pool's shared state.
pub struct Shared<R> {
    pub config: ValidConfig,
    pub pool: Pool,
    pub rng: R,
    listener: Option<Listener>,
    events: EventBuffer,
    /// The last path resolved against the base, and its URL: callers send the same few paths,
    /// and the base never changes, so the checks need not run again for it.
    resolved: RefCell<Option<(String, String)>>,
}

impl<R: Rng> Shared<R> {
    /// Validates `config` and builds the pool.
    pub fn new(config: &PoolConfig, rng: R) -> Result<Self, ConfigError> {
        let config = config.validate()?;
        let pool = Pool::new(config.keys.clone(), config.strategy, config.cooldown_ms, config.rate_limit_per_second);
        Ok(Self { config, pool, rng, listener: None, events: EventBuffer::new(), resolved: RefCell::new(None) })
    }

    /// `path` resolved against the configured base (see [`super::target::UpstreamBase::resolve`]).
    pub fn resolve(&self, path: &str) -> Result<String, PoolError> {
        if let Ok(last) = self.resolved.try_borrow() {
            if let Some((_, url)) = last.as_ref().filter(|(p, _)| p == path) {
                return Ok(url.clone());
            }
        }
        let url = self.config.base.resolve(path)?;
        if let Ok(mut last) = self.resolved.try_borrow_mut() {
            *last = Some((path.to_owned(), url.clone()));
        }
        Ok(url)
    }

    /// Subscribes to pool events (replacing any earlier listener).
    pub fn set_listener(&mut self, listener: Option<Listener>) {
        self.listener = listener;
        if self.listener.is_none() {
            self.events.clear();
        }
    }

    /// Whether anyone listens: events that cost an allocation are built only then.
    pub fn listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Queues events for delivery once the state is released (dropped when no one listens).
    pub fn push_events(&mut self, events: impl IntoIterator<Item = PoolEvent>) {
        if self.listening() {
            self.events.extend(events);
        }
    }

    /// The events to deliver and who to deliver them to; call with the state borrowed, deliver
    /// after releasing it (see [`deliver`]).
    pub fn take_events(&mut self) -> Option<(EventBuffer, Listener)> {
        if self.events.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut self.events);
        self.listener.clone().map(|l| (events, l))
    }

    /// Key values removed from a host's message (keys of the config and keys added since).
    pub fn redact(&self, message: &str) -> String {
        let text = redact(message, self.config.keys.iter().map(|k| &k.value));
        redact(&text, self.pool.keys().map(|k| &k.value))
    }

    /// Per-key and pool status at `now`.
    pub fn status(&self, now: u64) -> PoolStatus {
        pool_status(&self.pool, self.config.base.as_url(), now)
    }

    /// The shareable state of every key.
    pub fn export_state(&self) -> PoolSnapshot {
        self.pool.export()
    }

    /// Replaces key state from a snapshot.
    pub fn import_state(&mut self, snapshot: &PoolSnapshot, now: u64) {
        self.pool.import(snapshot, now)
    }

    /// Merges another instance's key state.
    pub fn merge_state(&mut self, snapshot: &PoolSnapshot, now: u64) {
        self.pool.merge(snapshot, now)
    }

    /// Adds a key at run time (same rules as at construction).
    pub fn add_key(&mut self, key: &KeyConfig, now: u64) -> Result<String, ConfigError> {
        let pool = &mut self.pool;
        // A plain key is named `key-N` by its position; after removals, the first N still free.
        let mut position = pool.len() + 1;
        while key.id.is_none() && pool.contains(&format!("key-{position}")) {
            position += 1;
        }
        let valid = validate_key(key, position, "key", |id| pool.contains(id))?;
        if pool.contains_value(&valid.value) {
            return Err(ConfigError::new("key.value", "this key value is already in the pool"));
        }
        let id = valid.id.clone();
        pool.insert(valid, now);
        Ok(id)
    }

    /// Removes a key; calls in flight on it finish normally. The last key cannot be removed.
    pub fn remove_key(&mut self, id: &str) -> Result<(), PoolError> {
        if !self.pool.contains(id) {
            return Err(PoolError::UnknownKey(id.to_owned()));
        }
        if self.pool.len() == 1 {
            return Err(PoolError::InvalidRequest("the last key cannot be removed".to_owned()));
        }
        self.pool.remove(id);
        Ok(())
    }

    /// Switches a key on or off. Enabling also clears an `invalid` verdict and any rest.
    pub fn set_enabled(&mut self, id: &str, enabled: bool, now: u64) -> Result<(), PoolError> {
        self.pool
            .update(id, now, |key| {
                key.enabled = enabled;
                if enabled {
                    key.invalid = false;
                    key.cooldown_until = None;
                    key.cooldown_reason = None;
                }
            })
            .ok_or_else(|| PoolError::UnknownKey(id.to_owned()))
    }

    /// Books a response body that broke off after it was handed to the caller (a stream cut
    /// mid-way): counted against the key in status and reported as a `stream_error` event.
    pub fn record_stream_error(&mut self, id: &str, now: u64) -> Result<(), PoolError> {
        self.pool
            .update(id, now, |key| {
                key.counters.stream_errors += 1;
                key.last_error = Some("stream_interrupted".to_owned());
            })
            .ok_or_else(|| PoolError::UnknownKey(id.to_owned()))?;
        self.push_events([PoolEvent::StreamError { key_id: id.to_owned() }]);
        Ok(())
    }
}

/// Delivers what [`Shared::take_events`] returned, with the state released.
pub fn deliver(pending: Option<(EventBuffer, Listener)>) {
    if let Some((events, listener)) = pending {
        for e in &events {
            listener(e);
        }
    }
}
