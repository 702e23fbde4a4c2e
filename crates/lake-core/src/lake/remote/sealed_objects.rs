//! A sealed directory in an object store, as `verify` reads it: one listing, every listed object streamed
//! once through SHA-256, and its Parquet footer fetched by a ranged read.

use std::path::PathBuf;

use futures_util::stream::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;
use sha2::{Digest, Sha256};

use crate::error::{LakeError, Result};
use crate::lake::hashed_file::FileDigest;
use crate::lake::layout::is_hidden;
use crate::lake::manifest_reader::{parse_manifest, ManifestError};
use crate::lake::remote::block_on;
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::store::store_error;
use crate::lake::sealed_files::{Inspected, Listed, ManifestRead, SealedFiles};

/// The Parquet file trailer: footer length (4 bytes, little-endian) and `PAR1`.
const TRAILER: usize = 8;

/// A run or corpus day under an `s3://…/lake/` URL.
pub struct RemoteDir {
    lake: RemoteLake,
    rel_dir: String,
}

impl RemoteDir {
    /// The directory `rel_dir` of `lake`.
    pub fn new(lake: RemoteLake, rel_dir: &str) -> Self {
        Self {
            lake,
            rel_dir: rel_dir.to_owned(),
        }
    }

    /// Opens `s3://bucket/prefix/lake/<rel_dir>`, with the AWS environment's credentials.
    pub fn open(url: &str) -> Result<Self> {
        let url = url.trim_end_matches('/');
        let (root, rel_dir) = url.rsplit_once("/lake/").ok_or_else(|| {
            LakeError::invalid_config(format!(
                "{url} is not inside a lake: give the URL of a run (s3://bucket/prefix/lake/runs/run_id=<id>) or a corpus day"
            ))
        })?;
        Ok(Self {
            lake: RemoteLake::open(root, &Default::default())?,
            rel_dir: rel_dir.to_owned(),
        })
    }

    fn rel(&self, rel: &str) -> String {
        format!("{}/{rel}", self.rel_dir)
    }

    async fn inspect_async(&self, rel: &str) -> std::result::Result<Inspected, String> {
        let rel = self.rel(rel);
        let key = self.lake.key(&rel);
        let (digest, tail) = self
            .lake
            .retried("read", &rel, || self.digest(&key))
            .await
            .map_err(|e| e.message().to_owned())?
            .map_err(|e| e.to_string())?;
        let rows = self.footer_rows(&rel, digest.bytes, &tail).await;
        Ok(Inspected { digest, rows })
    }

    /// The object streamed once through SHA-256, and its last bytes (the Parquet trailer).
    async fn digest(
        &self,
        key: &object_store::path::Path,
    ) -> std::result::Result<(FileDigest, Vec<u8>), object_store::Error> {
        let mut stream = self.lake.store().get(key).await?.into_stream();
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut tail: Vec<u8> = Vec::with_capacity(TRAILER);
        while let Some(chunk) = stream.try_next().await? {
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(TRAILER)..]);
            let keep = tail.len().saturating_sub(TRAILER);
            tail.drain(..keep);
        }
        let digest = FileDigest {
            bytes,
            sha256: hex::encode(hasher.finalize()),
        };
        Ok((digest, tail))
    }

    async fn footer_rows(
        &self,
        rel: &str,
        size: u64,
        tail: &[u8],
    ) -> std::result::Result<u64, String> {
        if tail.len() < TRAILER || &tail[4..] != b"PAR1" {
            return Err("no Parquet trailer".to_owned());
        }
        let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        let end = size - TRAILER as u64;
        let start = end
            .checked_sub(footer)
            .ok_or("the footer is longer than the file")?;
        let key = self.lake.key(rel);
        let store = self.lake.store();
        let raw = self
            .lake
            .retried("read", rel, || store.get_range(&key, start..end))
            .await
            .map_err(|e| e.message().to_owned())?
            .map_err(|e| e.to_string())?;
        let meta = ParquetMetaDataReader::decode_metadata(&raw).map_err(|e| e.to_string())?;
        u64::try_from(meta.file_metadata().num_rows()).map_err(|e| e.to_string())
    }
}

impl SealedFiles for RemoteDir {
    fn name(&self) -> PathBuf {
        PathBuf::from(self.lake.url(&self.rel_dir))
    }

    fn read_manifest(&self, name: &str) -> Result<ManifestRead> {
        let rel = self.rel(name);
        match block_on(self.lake.read_back(&rel))? {
            Ok((_, bytes)) => Ok(parse_manifest(&bytes)),
            Err(e @ object_store::Error::NotFound { .. }) => Ok(Err(ManifestError::Missing(
                format!("no object {}: {e}", self.lake.url(&rel)),
            ))),
            Err(e) => Err(store_error("read", &self.lake.url(&rel), &e)),
        }
    }

    fn inspect(&self, rel: &str) -> std::result::Result<Inspected, String> {
        block_on(self.inspect_async(rel))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.objects()?.into_iter().map(|o| o.rel).collect())
    }

    fn listing(&self) -> Result<Option<Vec<Listed>>> {
        self.objects().map(Some)
    }
}

impl RemoteDir {
    /// One listing of the directory: every object a reader sees, sorted.
    fn objects(&self) -> Result<Vec<Listed>> {
        let prefix = self.lake.key(&self.rel_dir);
        let store = self.lake.store();
        let listed: Vec<_> = block_on(self.lake.retried("list", &self.rel_dir, || {
            store.list(Some(&prefix)).try_collect::<Vec<_>>()
        }))?
        .map_err(|e| store_error("list", &self.lake.url(&self.rel_dir), &e))?;
        let mut out: Vec<Listed> = listed
            .into_iter()
            .filter_map(|meta| {
                let rel = self.lake.rel_under(&meta.location, &self.rel_dir)?;
                (!is_hidden(&rel)).then_some(Listed {
                    rel,
                    bytes: meta.size,
                    written: Some(meta.last_modified),
                })
            })
            .collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }
}
