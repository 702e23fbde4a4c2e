//! Publishing a built directory to object storage: data objects first, then the manifest by a conditional
//! create, which is the commit (docs/lake-format.md, "Object storage").
//!
//! S3 has no rename, and the lake keeps the disk's keys, so a replaced run's data objects are overwritten in
//! place. The old manifest is therefore retracted before the first object changes: a reader that goes through
//! the manifest (as the format asks) sees the old run, then no run, then the new one, never a manifest over
//! objects it does not list. Objects under the target that no manifest lists (a crashed attempt's) are deleted
//! before the new manifest appears.

use std::collections::BTreeSet;
use std::path::Path;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::layout::is_hidden;
use crate::lake::remote::lease::Lease;
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::retried::Created;
use crate::lake::remote::store::store_error;
use crate::lake::sealed_files::visible_files;

/// Files up to this size go up in one request; larger ones as multipart uploads of parts this size, read
/// from disk part by part so memory stays flat whatever the file's size.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight per multipart upload.
const PARTS_IN_FLIGHT: usize = 2;
/// Files uploaded at once.
const FILES_IN_FLIGHT: usize = 4;

/// One directory to publish: its local build and where it goes.
pub struct Commit<'a> {
    /// The lake.
    pub lake: &'a RemoteLake,
    /// The directory relative to the lake (`runs/run_id=r`, `corpus/…/date=…`).
    pub rel_dir: &'a str,
    /// The built directory on local disk.
    pub local_dir: &'a Path,
    /// The manifest that commits it (`manifest.json`, or a shard's).
    pub manifest_name: &'a str,
    /// Replace a committed manifest of the same name.
    pub overwrite: bool,
    /// Objects under `rel_dir` this commit owns (a shard owns only its buckets); others are never touched.
    pub owns: &'a (dyn Fn(&str) -> bool + Sync),
    /// Objects under `rel_dir` already in place that the new directory keeps without a local copy (a partly
    /// refreshed day's unchanged buckets): neither uploaded nor swept.
    pub kept: &'a BTreeSet<String>,
}

impl Commit<'_> {
    /// `RUN_EXISTS` when the manifest is there and overwrite was not asked for: checked before the export
    /// starts, so a run that exists fails at once rather than after its fetch.
    pub async fn refuse_existing(&self) -> Result<()> {
        if !self.overwrite && self.manifest_exists().await? {
            return Err(self.exists_error());
        }
        Ok(())
    }

    async fn manifest_exists(&self) -> Result<bool> {
        let rel = format!("{}/{}", self.rel_dir, self.manifest_name);
        let key = self.lake.key(&rel);
        match self
            .lake
            .retried("read", &rel, || self.lake.store().head(&key))
            .await?
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("read", &self.lake.url(&rel), &e)),
        }
    }

    fn exists_error(&self) -> LakeError {
        LakeError::new(
            ErrorCode::RunExists,
            format!(
                "{} already exists; pass overwrite to replace it, or choose another run id",
                self.lake.url(self.rel_dir)
            ),
        )
    }

    /// Uploads every file of the local directory, then commits the manifest. Runs under `lease`, which is
    /// confirmed before the first change and again right before the commit.
    pub async fn run(&self, lease: &Lease) -> Result<String> {
        let files = visible_files(self.local_dir)?;
        if !files.iter().any(|f| f == self.manifest_name) {
            return Err(LakeError::internal(format!(
                "{} has no {}",
                self.local_dir.display(),
                self.manifest_name
            )));
        }
        lease.confirm().await?;
        let manifest_rel = format!("{}/{}", self.rel_dir, self.manifest_name);
        let manifest_key = self.lake.key(&manifest_rel);
        if self.manifest_exists().await? {
            if !self.overwrite {
                return Err(self.exists_error());
            }
            let store = self.lake.store();
            match self
                .lake
                .retried("retract", &manifest_rel, || store.delete(&manifest_key))
                .await?
            {
                // A retried delete may find its own earlier success.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("retract", &self.lake.url(&manifest_rel), &e)),
            }
        }
        let data: Vec<&String> = files.iter().filter(|f| *f != self.manifest_name).collect();
        let fresh: BTreeSet<&str> = data
            .iter()
            .map(|s| s.as_str())
            .chain(self.kept.iter().map(String::as_str))
            .collect();
        self.sweep(&fresh).await?;
        futures_util::stream::iter(data)
            .map(|rel| async move {
                lease.still_held()?;
                self.upload(rel).await
            })
            .buffer_unordered(FILES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        crate::failpoint::hit("remote.before_commit");
        lease.confirm().await?;
        let manifest = std::fs::read(self.local_dir.join(self.manifest_name)).map_err(|e| {
            LakeError::io("cannot read", &self.local_dir.join(self.manifest_name), &e)
        })?;
        // The manifest's creation time and seal make its bytes this attempt's own: a create that finds exactly
        // them was this commit's, whose answer was lost.
        match self
            .lake
            .create("commit", &manifest_rel, Bytes::from(manifest))
            .await?
        {
            Created::Ours(_) => Ok(self.lake.url(self.rel_dir)),
            Created::Theirs => Err(self.exists_error()),
        }
    }

    /// Deletes objects this commit owns that the new directory does not have: debris of a crashed attempt,
    /// or files of the replaced run.
    async fn sweep(&self, fresh: &BTreeSet<&str>) -> Result<()> {
        let prefix = self.lake.key(self.rel_dir);
        let url = self.lake.url(self.rel_dir);
        let store = self.lake.store();
        let listed: Vec<_> = self
            .lake
            .retried("list", self.rel_dir, || {
                store.list(Some(&prefix)).try_collect::<Vec<_>>()
            })
            .await?
            .map_err(|e| store_error("list", &url, &e))?;
        let stale: Vec<ObjectPath> = listed
            .into_iter()
            .filter_map(|meta| {
                let rel = self.lake.rel_under(&meta.location, self.rel_dir)?;
                let ours = (self.owns)(&rel) && !is_hidden(&rel) && rel != self.manifest_name;
                (ours && !fresh.contains(rel.as_str())).then_some(meta.location)
            })
            .collect();
        for key in stale {
            match self
                .lake
                .retried("delete", self.rel_dir, || store.delete(&key))
                .await?
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("delete", &url, &e)),
            }
        }
        Ok(())
    }

    async fn upload(&self, rel: &str) -> Result<()> {
        let path = self.local_dir.join(rel);
        let object_rel = format!("{}/{rel}", self.rel_dir);
        let key = self.lake.key(&object_rel);
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| LakeError::io("cannot read", &path, &e))?
            .len();
        let store = self.lake.store();
        let sent = if size <= PART_BYTES as u64 {
            let content = tokio::fs::read(&path)
                .await
                .map_err(|e| LakeError::io("cannot read", &path, &e))?;
            let payload = PutPayload::from(content);
            self.lake
                .retried("upload", &object_rel, || store.put(&key, payload.clone()))
                .await?
                .map(|_| ())
        } else {
            self.lake
                .retried("upload", &object_rel, || upload_parts(store, &key, &path))
                .await?
        };
        sent.map_err(|e| store_error("upload", &self.lake.url(&object_rel), &e))?;
        crate::failpoint::hit("remote.upload");
        Ok(())
    }
}

/// One multipart upload of the file at `path`, read part by part so memory stays flat whatever its size; a
/// failed one is aborted so that the store keeps no orphaned parts. Reading the local file failing is reported
/// as the store's kind of error, which is never retried.
async fn upload_parts(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    path: &Path,
) -> std::result::Result<(), object_store::Error> {
    let local = |e: std::io::Error| object_store::Error::Generic {
        store: "local file",
        source: format!("cannot read {}: {e}", path.display()).into(),
    };
    let mut file = tokio::fs::File::open(path).await.map_err(local)?;
    let upload = store.put_multipart(key).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; PART_BYTES];
    let sent = async {
        loop {
            let n = read_full(&mut file, &mut buf).await.map_err(local)?;
            if n == 0 {
                return Ok(());
            }
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.write(&buf[..n]);
        }
    }
    .await;
    match sent {
        Ok(()) => writer.finish().await.map(|_| ()),
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
