//! Where a corpus day's files are written before they are published: the day's own staging directory (one
//! machine, all buckets), or the work area of a shard inside the day directory. In an object store both are
//! built on local disk and uploaded; a shard then holds the lease of its part of the day.

use std::path::{Path, PathBuf};

use crate::corpus::shards::{
    publish_remote_shard, publish_shard_buckets, seal_day_from_shards, RemoteShard,
};
use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::day_manifest::DayManifest;
use crate::lake::layout::shard_manifest_name;
use crate::lake::manifest::{manifest_bytes, WrittenFile};
use crate::lake::place::LakePlace;
use crate::lake::publish::{publish_sealed, write_atomically, Staging, Target, TargetLock};
use crate::lake::remote::block_on;
use crate::lake::remote::lease::Lease;
use crate::spec::bucket_range::BucketRange;
use crate::task::cancel::CancelFlag;

/// A day being written.
pub(crate) enum DayTarget {
    /// Every bucket: the day is published in one step.
    Whole(Staging),
    /// Some buckets: they are published one by one, then the shard's manifest.
    Shard {
        day_dir: PathBuf,
        range: BucketRange,
        work: Staging,
        remote: Option<Box<RemoteShard>>,
        _lock: TargetLock,
    },
}

impl DayTarget {
    /// Locks the day (or the shard's part of it) and makes an empty place to write into.
    pub fn prepare(lake: &LakePlace, day_rel: &str, range: BucketRange) -> Result<Self> {
        if range.is_all() {
            return Ok(Self::Whole(lake.stage(day_rel, true)?));
        }
        let day_dir = lake.local.join(day_rel);
        std::fs::create_dir_all(&day_dir)
            .map_err(|e| LakeError::io("cannot create directory", &day_dir, &e))?;
        let lock_name = format!(".lock-{}", shard_manifest_name(range));
        let locked = || {
            LakeError::new(
                ErrorCode::RunLocked,
                format!(
                    "buckets {} of {} are being exported by another process",
                    range.label(),
                    lake.shown(day_rel).display()
                ),
            )
        };
        let lock = TargetLock::try_acquire(&day_dir.join(&lock_name))?.ok_or_else(locked)?;
        let remote = match &lake.remote {
            Some(store) => {
                let what = format!("buckets {} of {}", range.label(), store.url(day_rel));
                let lease = block_on(Lease::acquire(
                    store,
                    &format!("{day_rel}/{lock_name}"),
                    &what,
                ))?;
                Some(Box::new(RemoteShard {
                    lake: store.clone(),
                    day_rel: day_rel.to_owned(),
                    lease,
                    kept: Default::default(),
                }))
            }
            None => None,
        };
        // A staging directory that is never published: the shard's work area, swept like any staging debris.
        let work = Staging::begin(
            Target::new(&day_dir, &format!("shard-{}", range.label())),
            true,
        )?;
        Ok(Self::Shard {
            day_dir,
            range,
            work,
            remote,
            _lock: lock,
        })
    }

    /// The directory the day's bucket files go to.
    pub fn root(&self) -> &Path {
        match self {
            Self::Whole(staging) => staging.dir(),
            Self::Shard { work, .. } => work.dir(),
        }
    }

    /// Carries the sealed day's `files` (unchanged buckets of a partial refresh) into the new day as they are: on
    /// disk hard links from `sealed_dir` (a copy where the file system has none), in an object store objects
    /// left in place.
    pub fn keep(&mut self, sealed_dir: &Path, files: &[WrittenFile]) -> Result<()> {
        let rels = files.iter().map(|f| f.rel_path.clone());
        match self {
            Self::Whole(staging) if staging.is_remote() => {
                staging.keep_objects(rels);
                return Ok(());
            }
            Self::Shard {
                remote: Some(remote),
                ..
            } => {
                remote.kept.extend(rels);
                return Ok(());
            }
            _ => {}
        }
        let root = self.root().to_owned();
        for f in files {
            let (from, to) = (sealed_dir.join(&f.rel_path), root.join(&f.rel_path));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| LakeError::io("cannot create directory", parent, &e))?;
            }
            let linked =
                !crate::failpoint::disabled("hard_link") && std::fs::hard_link(&from, &to).is_ok();
            if !linked {
                std::fs::copy(&from, &to).map_err(|e| LakeError::io("cannot copy", &from, &e))?;
                // A copy is new data: flushed like every file an export writes, before its directories are.
                std::fs::File::open(&to)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| LakeError::io("cannot flush", &to, &e))?;
            }
        }
        Ok(())
    }

    /// Writes the sealed manifest and publishes: the whole day in one step; a shard's bucket directories (on
    /// disk one atomic swap each), then its own manifest (the shard that completes the set writes the day's).
    /// Returns whether the day now has its `manifest.json`.
    pub fn seal(self, manifest: &DayManifest, cancel: &CancelFlag) -> Result<bool> {
        let sealed = manifest.to_sealed_json();
        match self {
            Self::Whole(staging) => {
                publish_sealed(staging, &sealed, || {
                    crate::failpoint::hit("corpus.before_publish");
                    cancel.check()
                })?;
                Ok(true)
            }
            Self::Shard {
                range,
                work,
                remote: Some(remote),
                ..
            } => {
                cancel.check()?;
                publish_remote_shard(*remote, work.dir(), range, &manifest_bytes(&sealed))
            }
            Self::Shard {
                day_dir,
                range,
                work,
                remote: None,
                _lock,
            } => {
                publish_shard_buckets(&day_dir, work.dir(), range)?;
                drop(work);
                write_atomically(
                    &day_dir,
                    &shard_manifest_name(range),
                    &manifest_bytes(&sealed),
                )?;
                seal_day_from_shards(&day_dir)
            }
        }
    }
}
