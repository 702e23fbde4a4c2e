//! Shards of a multi-machine corpus export: each publishes its bucket directories and its own sealed manifest;
//! the shard that completes the set writes the day's `manifest.json` from all of them. In an object store the
//! shard manifest and the day manifest are conditional creates, so no file system is shared at all.

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;

use crate::error::{LakeError, Result};
use crate::lake::day_manifest::{merge_shards, DayManifest};
use crate::lake::layout::{
    bucket_dir_name, bucket_of_day_path, is_shard_manifest, shard_manifest_name, MANIFEST_FILE,
};
use crate::lake::manifest::{manifest_bytes, now_iso};
use crate::lake::manifest_reader::{parse_manifest, read_manifest, Manifest};
use crate::lake::publish::{write_atomically, Staging, Target, TargetLock};
use object_store::ObjectStoreExt;

use crate::lake::remote::block_on;
use crate::lake::remote::commit::Commit;
use crate::lake::remote::lease::Lease;
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::store::store_error;
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

/// A shard's part of a day in an object store, under the shard's lease.
pub(crate) struct RemoteShard {
    /// The lake.
    pub lake: RemoteLake,
    /// The day's directory relative to the lake.
    pub day_rel: String,
    /// The lease of this shard's part of the day.
    pub lease: Lease,
    /// Objects of unchanged buckets a partial refresh keeps as they are.
    pub kept: BTreeSet<String>,
}

/// Publishes a shard to an object store: retracts the day's manifest (it would list this shard's old files),
/// uploads the shard's buckets and commits its manifest, then writes the day's manifest if the shards now
/// cover every bucket. Returns whether the day has its `manifest.json`.
pub(crate) fn publish_remote_shard(
    shard: RemoteShard,
    work_dir: &Path,
    range: BucketRange,
    manifest: &[u8],
) -> Result<bool> {
    let name = shard_manifest_name(range);
    crate::lake::hashed_file::write_file(&work_dir.join(&name), manifest)?;
    let RemoteShard {
        lake,
        day_rel,
        lease,
        kept,
    } = shard;
    let published = block_on(async {
        lease.confirm().await?;
        let day_manifest = format!("{day_rel}/{MANIFEST_FILE}");
        let (store, key) = (lake.store(), lake.key(&day_manifest));
        match lake
            .retried("retract", &day_manifest, || store.delete(&key))
            .await?
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error("retract", &lake.url(&day_manifest), &e)),
        }
        let owns = |rel: &str| bucket_of_day_path(rel).is_some_and(|b| range.contains(b));
        Commit {
            lake: &lake,
            rel_dir: &day_rel,
            local_dir: work_dir,
            manifest_name: &name,
            overwrite: true,
            owns: &owns,
            kept: &kept,
        }
        .run(&lease)
        .await?;
        seal_remote_day(&lake, &day_rel).await
    });
    if published.is_ok() {
        block_on(lease.release());
    }
    published
}

/// Writes the day's `manifest.json` by a conditional create when the shard manifests in the store cover every
/// bucket. Two shards finishing at once may both see the full set: one creates it, the other finds it there.
async fn seal_remote_day(lake: &RemoteLake, day_rel: &str) -> Result<bool> {
    use futures_util::stream::TryStreamExt;
    let url = lake.url(day_rel);
    let (store, prefix) = (lake.store(), lake.key(day_rel));
    let listed: Vec<_> = lake
        .retried("list", day_rel, || {
            store.list(Some(&prefix)).try_collect::<Vec<_>>()
        })
        .await?
        .map_err(|e| store_error("list", &url, &e))?;
    let mut shards = Vec::new();
    for meta in listed {
        let Some(rel) = lake.rel_under(&meta.location, day_rel) else {
            continue;
        };
        if !is_shard_manifest(&rel) {
            continue;
        }
        let bytes = match lake.read_back(&format!("{day_rel}/{rel}")).await? {
            Ok((_, bytes)) => bytes,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(store_error("read", &url, &e)),
        };
        if let Ok((_, Manifest::Day(m))) = parse_manifest(&bytes) {
            shards.push(m);
        }
    }
    let Some(day) = merge_shards(shards, &now_iso()) else {
        return Ok(false);
    };
    let body = Bytes::from(manifest_bytes(&day.to_sealed_json()));
    // Ours or the other shard's: either way the day has its manifest.
    lake.create("commit", &format!("{day_rel}/{MANIFEST_FILE}"), body)
        .await?;
    Ok(true)
}
