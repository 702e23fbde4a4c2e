//! Where a corpus day's files are written before they are published: the day's own staging directory (one
//! machine, all buckets), or the work area of a shard inside the day directory.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::corpus::shards::{publish_shard_buckets, seal_day_from_shards};
use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::day_manifest::DayManifest;
use crate::lake::layout::{day_dir_name, shard_manifest_name};
use crate::lake::manifest::manifest_bytes;
use crate::lake::publish::{publish_sealed, write_atomically, Staging, Target, TargetLock};
use crate::spec::bucket_range::BucketRange;
use crate::task::cancel::CancelFlag;

/// A day being written.
pub(crate) enum DayTarget {
    /// Every bucket: the day is published in one rename.
    Whole(Staging),
    /// Some buckets: they are published one by one, then the shard's manifest.
    Shard {
        day_dir: PathBuf,
        range: BucketRange,
        work: Staging,
        _lock: TargetLock,
    },
}

impl DayTarget {
    /// Locks the day (or the shard's part of it) and makes an empty place to write into.
    pub fn prepare(corpus_dir: &Path, day: NaiveDate, range: BucketRange) -> Result<Self> {
        let name = day_dir_name(day);
        if range.is_all() {
            return Ok(Self::Whole(Staging::begin(
                Target::new(corpus_dir, &name),
                true,
            )?));
        }
        let day_dir = corpus_dir.join(&name);
        std::fs::create_dir_all(&day_dir)
            .map_err(|e| LakeError::io("cannot create directory", &day_dir, &e))?;
        let lock_path = day_dir.join(format!(".lock-{}", shard_manifest_name(range)));
        let lock = TargetLock::try_acquire(&lock_path)?.ok_or_else(|| {
            LakeError::new(
                ErrorCode::RunLocked,
                format!(
                    "buckets {} of {} are being exported by another process",
                    range.label(),
                    day_dir.display()
                ),
            )
        })?;
        // A staging directory that is never published: the shard's work area, swept like any staging debris.
        let work = Staging::begin(
            Target::new(&day_dir, &format!("shard-{}", range.label())),
            true,
        )?;
        Ok(Self::Shard {
            day_dir,
            range,
            work,
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

    /// Writes the sealed manifest and publishes: the whole day in one rename; a shard's bucket directories one
    /// atomic swap each, then its own manifest (the shard that completes the set writes the day's). Returns
    /// whether the day now has its `manifest.json`.
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
                day_dir,
                range,
                work,
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
