//! A run's (or corpus day's) lease on object storage: the object store's stand-in for the `flock` the disk
//! lake uses. Taken by a conditional create (`If-None-Match: *`), kept alive by conditional replaces on its
//! ETag (`If-Match`), and taken over the same way once its holder stopped renewing it for its time to live
//! (and, so that no clock decides alone, its ETag stayed the same while the taker watched it for half of that).
//! Whoever holds a live lease is the only exporter of the target.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::store::store_error;

/// How long a lease lives without renewal unless `QUANTBOT_LAKE_LEASE_SECONDS` says otherwise: after a
/// crash, the next export of the same target waits at most this long.
const DEFAULT_TTL_SECONDS: u64 = 30;

/// How long a failed export waits for its lease to be deleted before leaving it to expire.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// A held lease; renewed in the background until released or dropped.
pub struct Lease {
    lake: RemoteLake,
    key: ObjectPath,
    url: String,
    attempt: String,
    ttl: Duration,
    e_tag: Arc<Mutex<Option<String>>>,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("url", &self.url).finish()
    }
}

fn ttl() -> Duration {
    let secs = std::env::var("QUANTBOT_LAKE_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_TTL_SECONDS);
    Duration::from_secs(secs)
}

/// What a lease object holds: who took it and for how long it counts without renewal.
fn body(attempt: &str, ttl: Duration) -> PutPayload {
    PutPayload::from(
        serde_json::json!({ "attempt": attempt, "ttl_seconds": ttl.as_secs() })
            .to_string()
            .into_bytes(),
    )
}

/// An identifier for this attempt: never written into data files, only into the lease.
fn attempt_id() -> String {
    let seed = format!(
        "{}-{:?}-{:?}",
        std::process::id(),
        std::time::SystemTime::now(),
        std::thread::current().id()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..8])
}

impl Lease {
    /// Takes the lease at `rel` (relative to the lake) for the target named `what`, or fails with
    /// `RUN_LOCKED` while another export holds it.
    pub async fn acquire(lake: &RemoteLake, rel: &str, what: &str) -> Result<Self> {
        let key = lake.key(rel);
        let url = lake.url(rel);
        let ttl = ttl();
        let attempt = attempt_id();
        let store = lake.store();
        let fail = |e: &object_store::Error| store_error("take the lease", &url, e);
        let mut taken = None;
        for _ in 0..3 {
            let create = PutOptions::from(PutMode::Create);
            match store.put_opts(&key, body(&attempt, ttl), create).await {
                Ok(r) => {
                    taken = Some(r.e_tag);
                    break;
                }
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(fail(&e)),
            }
            let held = match store.get(&key).await {
                Ok(held) => held,
                // Released between our create and this read: try the create again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(fail(&e)),
            };
            let meta = held.meta.clone();
            let bytes = held.bytes().await.map_err(|e| fail(&e))?;
            let held_ttl = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("ttl_seconds")?.as_u64())
                .map(Duration::from_secs)
                .unwrap_or(ttl);
            let age = chrono::Utc::now()
                .signed_duration_since(meta.last_modified)
                .to_std()
                .unwrap_or_default();
            if age <= held_ttl {
                return Err(locked(what, age, held_ttl));
            }
            // It looks lapsed by our clock, which may run ahead of the holder's. A live holder replaces it every
            // third of its time to live, so one that keeps its ETag for half of that is dead, whatever the clocks.
            tokio::time::sleep(held_ttl / 2).await;
            match store.head(&key).await {
                Ok(now) if now.e_tag == meta.e_tag => {}
                Ok(_) => return Err(locked(what, Duration::ZERO, held_ttl)),
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(fail(&e)),
            }
            // Its holder stopped renewing it: take it over, unless someone else does first.
            let version = UpdateVersion {
                e_tag: meta.e_tag.clone(),
                version: meta.version.clone(),
            };
            let update = PutOptions::from(PutMode::Update(version));
            match store.put_opts(&key, body(&attempt, ttl), update).await {
                Ok(r) => {
                    taken = Some(r.e_tag);
                    break;
                }
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(fail(&e)),
            }
        }
        let Some(e_tag) = taken else {
            return Err(locked(what, Duration::ZERO, ttl));
        };
        let e_tag = Arc::new(Mutex::new(e_tag));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_forever(
            lake.clone(),
            key.clone(),
            attempt.clone(),
            ttl,
            e_tag.clone(),
            lost.clone(),
        ));
        Ok(Self {
            lake: lake.clone(),
            key,
            url,
            attempt,
            ttl,
            e_tag,
            lost,
            renewer,
            released: false,
        })
    }

    /// Renews the lease now; `RUN_LOCKED` when another export has taken it over (ours lapsed), so nothing
    /// is committed by an exporter that is no longer the owner.
    pub async fn confirm(&self) -> Result<()> {
        if !renew(&self.lake, &self.key, &self.attempt, self.ttl, &self.e_tag).await? {
            self.lost.store(true, Ordering::SeqCst);
        }
        self.still_held()
    }

    /// `RUN_LOCKED` once the background renewal found the lease taken over: checked before each upload, so an
    /// exporter that lost its lease stops writing at once.
    pub fn still_held(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(LakeError::new(
                ErrorCode::RunLocked,
                format!(
                    "{} was taken over by another export after this one stopped renewing its lease for {} s; nothing was committed",
                    self.url,
                    self.ttl.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// Deletes the lease object so the next export need not wait for it to expire.
    pub async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        if !self.lost.load(Ordering::SeqCst) {
            let _ = self.lake.store().delete(&self.key).await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released || self.lost.load(Ordering::SeqCst) {
            return;
        }
        // A failed export frees the target now, not after the lease's time to live: the caller may retry at
        // once, and a CLI exits right after the error, before a spawned task would run. Dropping may happen on
        // an async worker (`block_in_place` hands its other tasks to another thread while it waits) or inside
        // a `block_on` (a fresh thread has no runtime context, so it may block on the delete).
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key) = (self.lake.store().clone(), self.key.clone());
        let delete = async move {
            let _ = tokio::time::timeout(RELEASE_WAIT, store.delete(&key)).await;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            handle.spawn(delete);
            return;
        }
        tokio::task::block_in_place(|| {
            let _ = std::thread::spawn(move || handle.block_on(delete)).join();
        });
    }
}

fn locked(what: &str, age: Duration, ttl: Duration) -> LakeError {
    LakeError::new(
        ErrorCode::RunLocked,
        format!(
            "{what} is being written by another export right now (its lease was renewed {} s ago); wait for it to finish or use another run id; a lease whose export died expires after {} s",
            age.as_secs(),
            ttl.as_secs()
        ),
    )
}

/// One conditional replace of the lease on the ETag we last wrote; false when it is no longer ours.
async fn renew(
    lake: &RemoteLake,
    key: &ObjectPath,
    attempt: &str,
    ttl: Duration,
    e_tag: &Mutex<Option<String>>,
) -> Result<bool> {
    let mut current = e_tag.lock().await;
    let update = PutOptions::from(PutMode::Update(UpdateVersion {
        e_tag: current.clone(),
        version: None,
    }));
    match lake.store().put_opts(key, body(attempt, ttl), update).await {
        Ok(r) => {
            *current = r.e_tag;
            Ok(true)
        }
        Err(object_store::Error::Precondition { .. })
        | Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(store_error("renew the lease", &lake.url(""), &e)),
    }
}

async fn renew_forever(
    lake: RemoteLake,
    key: ObjectPath,
    attempt: String,
    ttl: Duration,
    e_tag: Arc<Mutex<Option<String>>>,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match renew(&lake, &key, &attempt, ttl, &e_tag).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A transient failure: the next round tries again; the lease lapses only if they all fail.
            Err(_) => {}
        }
    }
}
