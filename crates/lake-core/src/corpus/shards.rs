//! Shards of a multi-machine corpus export: each publishes its bucket directories and its own sealed manifest;
//! the shard that completes the set writes the day's `manifest.json` from all of them.

use std::path::Path;

use crate::error::{LakeError, Result};
use crate::lake::day_manifest::{merge_shards, DayManifest};
use crate::lake::layout::{bucket_dir_name, is_shard_manifest, MANIFEST_FILE};
use crate::lake::manifest::{manifest_bytes, now_iso};
use crate::lake::manifest_reader::{read_manifest, Manifest};
use crate::lake::publish::{write_atomically, Staging, Target, TargetLock};
use crate::spec::bucket_range::BucketRange;

/// Moves each bucket directory of the shard's work area into the day, one atomic swap each, and removes the
/// shard's bucket directories that the new export left empty.
pub(crate) fn publish_shard_buckets(
    day_dir: &Path,
    work_dir: &Path,
    range: BucketRange,
) -> Result<()> {
    for b in range.lo..=range.hi {
        let rel = bucket_dir_name(b);
        let fresh = work_dir.join(&rel);
        if fresh.exists() {
            let staging = Staging::begin(Target::new(day_dir, &rel), true)?;
            std::fs::remove_dir(staging.dir())
                .and_then(|()| std::fs::rename(&fresh, staging.dir()))
                .map_err(|e| LakeError::io("cannot stage", &fresh, &e))?;
            staging.publish()?;
        } else {
            let stale = day_dir.join(&rel);
            if stale.exists() {
                std::fs::remove_dir_all(&stale)
                    .map_err(|e| LakeError::io("cannot remove", &stale, &e))?;
            }
        }
    }
    Ok(())
}

/// The shard manifests in a day directory that read as day manifests.
fn shard_manifests(day_dir: &Path) -> Result<Vec<DayManifest>> {
    let mut shards = Vec::new();
    for entry in
        std::fs::read_dir(day_dir).map_err(|e| LakeError::io("cannot list", day_dir, &e))?
    {
        let entry = entry.map_err(|e| LakeError::io("cannot list", day_dir, &e))?;
        if is_shard_manifest(&entry.file_name().to_string_lossy()) {
            if let Ok((_, Manifest::Day(m))) = read_manifest(&entry.path()) {
                shards.push(m);
            }
        }
    }
    Ok(shards)
}

/// Writes the day's `manifest.json` when the shard manifests cover every bucket; returns whether it exists.
pub(crate) fn seal_day_from_shards(day_dir: &Path) -> Result<bool> {
    let lock = TargetLock::try_acquire(&day_dir.join(".lock-manifest"))?;
    if lock.is_none() {
        // Another shard is sealing this very day right now.
        return Ok(false);
    }
    match merge_shards(shard_manifests(day_dir)?, &now_iso()) {
        Some(day) => {
            write_atomically(
                day_dir,
                MANIFEST_FILE,
                &manifest_bytes(&day.to_sealed_json()),
            )?;
            Ok(true)
        }
        None => Ok(false),
    }
}
