//! A corpus in an object store, as a run reads it: the sealed days the run touches are fetched to a private
//! local directory (the manifest, and only the files of the buckets the run's mints fall in), each file's
//! SHA-256 checked against its manifest as it streams, and then read like a corpus on disk.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::stream::TryStreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::layout::{bucket_of_day_path, corpus_rel_dir, day_dir_name, MANIFEST_FILE};
use crate::lake::manifest::WrittenFile;
use crate::lake::manifest_reader::{parse_manifest, Manifest};
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::store::store_error;
use crate::source::corpus::days_touched;
use crate::spec::fetch_plan::MintRanges;
use crate::spec::mint_bucket::mint_bucket_index;

/// A local copy of the days a run reads; removed when dropped.
#[derive(Debug)]
pub struct CorpusMirror {
    root: PathBuf,
}

impl CorpusMirror {
    /// The lake root of the copy, to open as a [`crate::source::corpus::CorpusSource`].
    pub fn lake_root(&self) -> &Path {
        &self.root
    }

    /// Fetches the days and buckets `plan` touches from `lake` into a new directory beside its work directory.
    pub async fn fetch(
        lake: &RemoteLake,
        interval_spec: &str,
        plan: &[MintRanges],
    ) -> Result<Self> {
        let mirror = Self::beside(lake);
        let buckets: BTreeSet<u8> = plan.iter().map(|m| mint_bucket_index(&m.mint)).collect();
        for day in days_touched(plan) {
            let rel = format!("{}/{}", corpus_rel_dir(interval_spec), day_dir_name(day));
            mirror.fetch_day(lake, &rel, &buckets).await?;
        }
        Ok(mirror)
    }

    /// Fetches `files` of the sealed directory `rel` of `lake` (checked against the SHA-256 each lists) into a
    /// new directory; returns the copy and where the directory's files are in it.
    pub async fn fetch_files(
        lake: &RemoteLake,
        rel: &str,
        files: &[WrittenFile],
    ) -> Result<(Self, PathBuf)> {
        let mirror = Self::beside(lake);
        mirror.download_files(lake, rel, files).await?;
        let dir = mirror.root.join(rel);
        Ok((mirror, dir))
    }

    /// An empty copy beside the lake's work directory.
    fn beside(lake: &RemoteLake) -> Self {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let work = lake.work_lake_root();
        let parent = work.parent().unwrap_or(&work);
        Self {
            root: parent.join(format!(".corpus-read-{}-{stamp}", std::process::id())),
        }
    }

    async fn fetch_day(&self, lake: &RemoteLake, rel: &str, buckets: &BTreeSet<u8>) -> Result<()> {
        let manifest_rel = format!("{rel}/{MANIFEST_FILE}");
        let bytes = match lake.read_back(&manifest_rel).await? {
            Ok((_, bytes)) => bytes,
            // No manifest: the corpus source reports the missing day, as it does on disk.
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(store_error("read", &lake.url(&manifest_rel), &e)),
        };
        let dir = self.root.join(rel);
        write(&dir.join(MANIFEST_FILE), &bytes)?;
        let Ok((_, Manifest::Day(manifest))) = parse_manifest(&bytes) else {
            return Ok(());
        };
        let wanted: Vec<WrittenFile> = manifest
            .files
            .into_iter()
            .filter(|f| bucket_of_day_path(&f.rel_path).is_some_and(|b| buckets.contains(&b)))
            .collect();
        self.download_files(lake, rel, &wanted).await
    }

    /// Downloads `files` of the directory `rel` into the copy, each checked against its SHA-256.
    async fn download_files(
        &self,
        lake: &RemoteLake,
        rel: &str,
        files: &[WrittenFile],
    ) -> Result<()> {
        let dir = self.root.join(rel);
        for file in files {
            if file.rel_path.split('/').any(|s| s == "..") {
                continue;
            }
            let object_rel = format!("{rel}/{}", file.rel_path);
            let url = lake.url(&object_rel);
            let path = dir.join(&file.rel_path);
            let sha256 = lake
                .retried("read", &object_rel, || download(lake, &object_rel, &path))
                .await?
                .map_err(|e| store_error("read", &url, &e))?;
            if sha256 != file.sha256 {
                return Err(LakeError::new(
                    ErrorCode::ObjectStore,
                    format!(
                        "{url} does not match its day's manifest; run verify on {} and export the day again",
                        lake.url(rel)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for CorpusMirror {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Streams `object_rel` into a new file at `path` (replacing what an earlier attempt left) and returns its
/// SHA-256. Writing the local file failing is reported as the store's kind of error, which is never retried.
async fn download(
    lake: &RemoteLake,
    object_rel: &str,
    path: &Path,
) -> std::result::Result<String, object_store::Error> {
    let local = |e: LakeError| object_store::Error::Generic {
        store: "local file",
        source: e.message().into(),
    };
    let got = lake.store().get(&lake.key(object_rel)).await?;
    let mut out = create(path).map_err(local)?;
    let mut hasher = Sha256::new();
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
        out.write_all(&chunk)
            .map_err(|e| local(LakeError::io("cannot write", path, &e)))?;
    }
    Ok(hex::encode(hasher.finalize()))
}

fn create(path: &Path) -> Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| LakeError::io("cannot create directory", parent, &e))?;
    }
    std::fs::File::create(path).map_err(|e| LakeError::io("cannot create", path, &e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    create(path)?
        .write_all(bytes)
        .map_err(|e| LakeError::io("cannot write", path, &e))
}
