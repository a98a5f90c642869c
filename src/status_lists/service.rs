//! `StatusLists`: one per instance. It keeps the signed lists in memory
//! (re-signed only when their version moved or their `exp` nears), reads the
//! lists' version counters every `revocation.poll_millis` so a change made by
//! any instance on the same database is served and announced within that
//! time, fans events out to bounded subscriber channels, sends heartbeats and
//! retires lists nobody can reference any more. A version poll rather than
//! LISTEN/NOTIFY: it needs no dedicated connection, works the same on both
//! backends, and a missed notification cannot leave a list stale.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use chrono::TimeDelta;
use tokio::sync::mpsc;

use super::{bits, jwt, model};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::Pool;
use crate::error::ApiError;
use crate::keys::service::KeyService;

/// How often retirement runs on each instance.
const RETIRE_EVERY: Duration = Duration::from_secs(60);
/// Extra time before retirement beyond an entry's expiry: clock skew and
/// in-flight exchanges that extend an entry.
const RETIRE_GRACE_SECS: i64 = 120;

/// A signed list as served.
pub struct SignedList {
    pub version: i64,
    pub jwt: String,
    /// Strong validator `"<n>-<version>"`.
    pub etag: String,
    pub exp: i64,
}

pub struct StatusLists {
    issuer: String,
    ttl: i64,
    lifetime: i64,
    size: i64,
    enabled: bool,
    poll: Duration,
    heartbeat: Duration,
    max_subscribers: usize,
    buffer: usize,
    pool: Pool,
    keys: Arc<KeyService>,
    clock: SharedClock,
    /// Live lists and their versions as of the last poll.
    versions: RwLock<BTreeMap<i64, i64>>,
    cache: RwLock<HashMap<i64, Arc<SignedList>>>,
    subscribers: Mutex<Vec<mpsc::Sender<Bytes>>>,
}

/// What an event stream connection gets.
pub enum Subscription {
    Open(mpsc::Receiver<Bytes>),
    /// At `revocation.max_subscribers`.
    Full,
}

impl StatusLists {
    pub fn new(settings: &Settings, pool: Pool, keys: Arc<KeyService>, clock: SharedClock) -> StatusLists {
        let r = &settings.revocation;
        StatusLists {
            issuer: settings.tokens.issuer.clone(),
            ttl: r.list_ttl_secs,
            lifetime: r.list_lifetime_secs,
            size: r.list_size,
            enabled: r.enabled,
            poll: Duration::from_millis(r.poll_millis),
            heartbeat: Duration::from_secs(r.heartbeat_secs),
            max_subscribers: r.max_subscribers,
            buffer: r.subscriber_buffer,
            pool,
            keys,
            clock,
            versions: RwLock::default(),
            cache: RwLock::default(),
            subscribers: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn list_size(&self) -> i64 {
        self.size
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// `<issuer>/v1/status-lists/<n>`.
    pub fn uri(&self, list: i64) -> String {
        list_uri(&self.issuer, list)
    }

    /// The list and index a token's `status` claim names, if the URI is one
    /// of this issuer's lists.
    pub fn parse_ref(&self, status: &signet_verify::StatusListRef) -> Option<super::StatusRef> {
        let prefix = format!("{}/v1/status-lists/", self.issuer);
        let list: i64 = status.uri.strip_prefix(&prefix)?.parse().ok().filter(|n| *n >= 1)?;
        Some(super::StatusRef { list, idx: i64::try_from(status.idx).ok()? })
    }

    /// Blocking. The signed list `n` (None: unknown or retired). Served from
    /// memory while its version is current and its `exp` is not near; when
    /// the database is down, a list already built is served until its `exp`.
    pub fn get(&self, list: i64) -> Result<Option<Arc<SignedList>>, ApiError> {
        let now = self.clock.unix();
        let cached = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(&list).cloned();
        let known = self.versions.read().unwrap_or_else(|p| p.into_inner()).get(&list).copied();
        if let Some(signed) = &cached {
            // Not yet seen by the poll (just created): what we built is current.
            let fresh = known.is_none_or(|v| v <= signed.version);
            if fresh && signed.exp - now > self.lifetime / 4 {
                return Ok(Some(signed.clone()));
            }
        }
        match self.build(list, now) {
            Ok(built) => {
                let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
                match &built {
                    Some(signed) => cache.insert(list, signed.clone()),
                    None => cache.remove(&list),
                };
                Ok(built)
            }
            Err(err) => match cached.filter(|signed| signed.exp > now) {
                Some(signed) => {
                    log::warn!("status list {list}: cannot rebuild ({err:?}); serving the signed copy until its exp");
                    Ok(Some(signed))
                }
                None => Err(err),
            },
        }
    }

    fn build(&self, list: i64, now: i64) -> Result<Option<Arc<SignedList>>, ApiError> {
        let mut conn = self.pool.get()?;
        let Some(content) = model::load(&mut conn, list)? else {
            return Ok(None);
        };
        drop(conn);
        let bytes = bits::pack(content.size as u64, content.invalid.iter().map(|&i| i as u64));
        let lst = bits::encode_lst(&bytes);
        let key = self.keys.signer(self.clock.now_db())?;
        let uri = self.uri(list);
        let exp = now + self.lifetime;
        let token = jwt::ListToken { issuer: &self.issuer, uri: &uri, lst: &lst, iat: now, exp, ttl: self.ttl };
        let jwt = jwt::sign(&key, &token).map_err(ApiError::internal)?;
        Ok(Some(Arc::new(SignedList {
            version: content.version,
            jwt,
            etag: format!("\"{list}-{}\"", content.version),
            exp,
        })))
    }

    /// Blocking: reads every live list's version; announces the lists that
    /// changed (or appeared) and forgets retired ones.
    pub fn poll(&self) -> Result<(), ApiError> {
        let mut conn = self.pool.get()?;
        let live: BTreeMap<i64, i64> = model::live_versions(&mut conn)?.into_iter().collect();
        drop(conn);
        let changed: Vec<(i64, i64)> = {
            let mut versions = self.versions.write().unwrap_or_else(|p| p.into_inner());
            let changed =
                live.iter().filter(|(list, v)| versions.get(list) != Some(v)).map(|(l, v)| (*l, *v)).collect();
            *versions = live;
            changed
        };
        {
            let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
            self.cache.write().unwrap_or_else(|p| p.into_inner()).retain(|list, _| versions.contains_key(list));
        }
        for (list, version) in changed {
            self.broadcast(&self.event(list, version));
        }
        Ok(())
    }

    fn event(&self, list: i64, version: i64) -> Bytes {
        let data = serde_json::json!({"uri": self.uri(list), "version": version});
        Bytes::from(format!("event: status\ndata: {data}\n\n"))
    }

    /// A new event stream: one `status` event per live list first, then every
    /// change. `Full` at the subscriber cap.
    pub fn subscribe(&self) -> Subscription {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|s| !s.is_closed());
        if subscribers.len() >= self.max_subscribers {
            return Subscription::Full;
        }
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner()).clone();
        let (sender, receiver) = mpsc::channel(self.buffer + versions.len());
        for (list, version) in versions {
            // Room was made for these above.
            let _ = sender.try_send(self.event(list, version));
        }
        subscribers.push(sender);
        Subscription::Open(receiver)
    }

    /// Sends to every subscriber without waiting: one whose buffer is full
    /// (slow or stuck) is dropped, so memory stays bounded.
    fn broadcast(&self, message: &Bytes) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|s| match s.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::info!("status event subscriber too slow: disconnected");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    pub fn subscriber_count(&self) -> usize {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|s| !s.is_closed());
        subscribers.len()
    }

    /// Blocking: retires lists no token can reference any more.
    pub fn retire(&self) -> Result<Vec<i64>, ApiError> {
        let mut conn = self.pool.get()?;
        let grace = TimeDelta::seconds(RETIRE_GRACE_SECS);
        let retired = model::retire_expired(&mut conn, self.clock.now_db(), grace)?;
        for list in &retired {
            log::info!("status list {list} retired: every token that referenced it has expired");
        }
        Ok(retired)
    }

    /// Polls, heartbeats and retires on a background thread until dropped.
    pub fn spawn_background(self: &Arc<Self>) {
        if !self.enabled {
            return;
        }
        let weak: Weak<StatusLists> = Arc::downgrade(self);
        let (poll, heartbeat) = (self.poll, self.heartbeat);
        std::thread::Builder::new()
            .name("signet-status".into())
            .spawn(move || {
                let (mut last_beat, mut last_retire) = (Instant::now(), None::<Instant>);
                let mut failing = false;
                loop {
                    std::thread::sleep(poll);
                    let Some(service) = weak.upgrade() else {
                        return;
                    };
                    match service.poll() {
                        Ok(()) => failing = false,
                        Err(err) if !failing => {
                            failing = true;
                            log::warn!("status list poll failed (serving what is built): {err:?}");
                        }
                        Err(_) => {}
                    }
                    if last_beat.elapsed() >= heartbeat {
                        service.broadcast(&Bytes::from_static(b": keepalive\n\n"));
                        last_beat = Instant::now();
                    }
                    if last_retire.is_none_or(|at| at.elapsed() >= RETIRE_EVERY) {
                        if let Err(err) = service.retire() {
                            log::warn!("status list retirement failed: {err:?}");
                        }
                        last_retire = Some(Instant::now());
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|err| log::error!("cannot start the status list thread: {err}"));
    }
}

pub fn list_uri(issuer: &str, list: i64) -> String {
    format!("{issuer}/v1/status-lists/{list}")
}
