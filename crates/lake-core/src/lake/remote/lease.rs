//! A run's (or corpus day's) lease on object storage: the object store's stand-in for the `flock` the disk
//! lake uses. Taken by a conditional create (`If-None-Match: *`), kept alive by conditional replaces on its
//! ETag (`If-Match`), and taken over the same way once its holder stopped renewing it for its time to live
//! (and, so that no clock decides alone, its ETag stayed the same while the taker watched it for half of that).
//! Whoever holds a live lease is the only exporter of the target.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::retried::Created;
use crate::lake::remote::store::store_error;
use crate::platform::process_identity::ProcessIdentity;

/// How long a lease lives without renewal unless `QUANTBOT_LAKE_LEASE_SECONDS` says otherwise: after a
/// crash on another machine, the next export of the same target waits at most this long.
const DEFAULT_TTL_SECONDS: u64 = 30;

/// How long a failed export waits for its lease to be deleted before leaving it to expire.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// A held lease; renewed in the background until released or dropped.
pub struct Lease {
    lake: RemoteLake,
    rel: String,
    url: String,
    body: Bytes,
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

/// What a lease object holds: who took it, for how long it counts without renewal, and the process that
/// holds it (so that an export on the same machine can see it died). The attempt id makes the bytes this
/// attempt's own: a conditional write that finds exactly them was its own.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseBody {
    attempt: String,
    ttl_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder: Option<ProcessIdentity>,
}

impl LeaseBody {
    fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
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
        let url = lake.url(rel);
        let ttl = ttl();
        let mine = LeaseBody {
            attempt: attempt_id(),
            ttl_seconds: ttl.as_secs(),
            holder: ProcessIdentity::this_process(),
        };
        let body =
            Bytes::from(serde_json::to_vec(&mine).map_err(|e| LakeError::internal(e.to_string()))?);
        let fail = |e: &object_store::Error| store_error("take the lease", &url, e);
        let mut taken = None;
        for _ in 0..3 {
            if let Created::Ours(e_tag) = lake.create("take the lease", rel, body.clone()).await? {
                taken = Some(e_tag);
                break;
            }
            let (meta, held) = match lake.read_back(rel).await? {
                Ok(found) => found,
                // Released between our create and this read: try the create again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(fail(&e)),
            };
            let held = LeaseBody::parse(&held);
            let held_ttl = held
                .as_ref()
                .map_or(ttl, |b| Duration::from_secs(b.ttl_seconds));
            let holder = held.as_ref().and_then(|b| b.holder.as_ref());
            // A holder that ran on this machine and has ended (killed, crashed) cannot be writing: no need to
            // wait for its lease to lapse.
            if !holder.is_some_and(ProcessIdentity::has_ended) {
                let age = chrono::Utc::now()
                    .signed_duration_since(meta.last_modified)
                    .to_std()
                    .unwrap_or_default();
                if age <= held_ttl {
                    return Err(locked(what, age, held_ttl, holder));
                }
                // It looks lapsed by our clock, which may run ahead of the holder's. A live holder replaces it
                // every third of its time to live, so one that keeps its ETag for half of that is dead, whatever
                // the clocks.
                tokio::time::sleep(held_ttl / 2).await;
                let store = lake.store();
                let key = lake.key(rel);
                match lake.retried("read", rel, || store.head(&key)).await? {
                    Ok(now) if now.e_tag == meta.e_tag => {}
                    Ok(_) => return Err(locked(what, Duration::ZERO, held_ttl, holder)),
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(fail(&e)),
                }
            }
            // Its holder stopped renewing it: take it over, unless someone else does first.
            if let Created::Ours(e_tag) = lake
                .replace("take over the lease", rel, body.clone(), meta.e_tag.clone())
                .await?
            {
                taken = Some(e_tag);
                break;
            }
        }
        let Some(e_tag) = taken else {
            return Err(locked(what, Duration::ZERO, ttl, None));
        };
        let e_tag = Arc::new(Mutex::new(e_tag));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_forever(
            lake.clone(),
            rel.to_owned(),
            body.clone(),
            ttl,
            e_tag.clone(),
            lost.clone(),
        ));
        Ok(Self {
            lake: lake.clone(),
            rel: rel.to_owned(),
            url,
            body,
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
        if !renew(&self.lake, &self.rel, &self.body, &self.e_tag).await? {
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
            let _ = delete(&self.lake, &self.rel).await;
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
        let (lake, rel) = (self.lake.clone(), self.rel.clone());
        let delete = async move {
            let _ = tokio::time::timeout(RELEASE_WAIT, delete(&lake, &rel)).await;
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

fn locked(what: &str, age: Duration, ttl: Duration, holder: Option<&ProcessIdentity>) -> LakeError {
    let by = holder.map_or(String::new(), |h| {
        format!(" by process {} on {}", h.pid, h.host)
    });
    LakeError::new(
        ErrorCode::RunLocked,
        format!(
            "{what} is being written by another export right now (its lease was renewed {} s ago{by}); wait for it to finish or use another run id; a lease whose export died expires after {} s, at once for a process of this machine",
            age.as_secs(),
            ttl.as_secs()
        ),
    )
}

async fn delete(lake: &RemoteLake, rel: &str) -> Result<()> {
    let (store, key) = (lake.store(), lake.key(rel));
    match lake
        .retried("release the lease", rel, || store.delete(&key))
        .await?
    {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error("release the lease", &lake.url(rel), &e)),
    }
}

/// One conditional replace of the lease on the ETag we last wrote; false when it is no longer ours.
async fn renew(
    lake: &RemoteLake,
    rel: &str,
    body: &Bytes,
    e_tag: &Mutex<Option<String>>,
) -> Result<bool> {
    let mut current = e_tag.lock().await;
    match lake
        .replace("renew the lease", rel, body.clone(), current.clone())
        .await?
    {
        Created::Ours(now) => {
            *current = now;
            Ok(true)
        }
        Created::Theirs => Ok(false),
    }
}

async fn renew_forever(
    lake: RemoteLake,
    rel: String,
    body: Bytes,
    ttl: Duration,
    e_tag: Arc<Mutex<Option<String>>>,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match renew(&lake, &rel, &body, &e_tag).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A failure that outlasted the retries: the next round tries again; the lease lapses only if they
            // all fail.
            Err(_) => {}
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Puts a lease held by `holder` at `rel`, as an export of that process would have.
    async fn held_by(lake: &RemoteLake, rel: &str, holder: ProcessIdentity) {
        let body = LeaseBody {
            attempt: "another".into(),
            ttl_seconds: 600,
            holder: Some(holder),
        };
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
        assert!(matches!(
            lake.create("take", rel, bytes).await.unwrap(),
            Created::Ours(_)
        ));
    }

    #[tokio::test]
    async fn a_lease_of_a_dead_process_of_this_machine_is_taken_over_at_once() {
        let lake = RemoteLake::in_memory();
        let me = ProcessIdentity::this_process().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = ProcessIdentity {
            pid: child.id(),
            started: None,
            ..me.clone()
        };
        child.wait().unwrap();
        held_by(&lake, "runs/.lock-dead", dead.clone()).await;
        let started = std::time::Instant::now();
        let lease = Lease::acquire(&lake, "runs/.lock-dead", "run dead")
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no wait for a 600 s lease"
        );
        let (_, now) = lake.read_back("runs/.lock-dead").await.unwrap().unwrap();
        assert_eq!(now, lease.body, "the lease is ours now");
        lease.release().await;

        // The same dead process on another machine, and a live process here: the lease stands.
        let elsewhere = ProcessIdentity {
            host: format!("{}-elsewhere", me.host),
            ..dead
        };
        let alive = ProcessIdentity {
            pid: std::os::unix::process::parent_id(),
            started: None,
            ..me
        };
        for (rel, holder) in [("runs/.lock-far", elsewhere), ("runs/.lock-live", alive)] {
            held_by(&lake, rel, holder.clone()).await;
            let err = Lease::acquire(&lake, rel, "run x").await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::RunLocked, "{holder:?}");
            assert!(
                err.message()
                    .contains(&format!("by process {}", holder.pid)),
                "{err}"
            );
        }
    }
}
