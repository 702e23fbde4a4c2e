//! Where a lake lives: a local directory, or an `s3://bucket/prefix` whose keys mirror the directory's paths.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use sha1::{Digest, Sha1};

use crate::error::{LakeError, Result};
use crate::lake::remote::store::{open_s3, ObjectStoreConfig};
use crate::task::retry::{Retrier, RetryObserver};

const S3_SCHEME: &str = "s3://";

/// True when `data_root` names an object store rather than a directory.
pub fn is_remote(data_root: &str) -> bool {
    data_root.contains("://")
}

/// A lake on S3: the store, and the key prefix standing for `<data_root>/lake`.
#[derive(Clone)]
pub struct RemoteLake {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix` as given, without a trailing `/`.
    root_url: String,
    /// `prefix/lake` (or `lake` at the bucket's top).
    lake_prefix: String,
    /// Asks the store again after transient failures (`retried`); clones share its count.
    retrier: Retrier,
}

impl std::fmt::Debug for RemoteLake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLake")
            .field("root_url", &self.root_url)
            .finish()
    }
}

impl RemoteLake {
    /// Opens `s3://bucket[/prefix]` with credentials, region and endpoint from `config` and the AWS
    /// environment.
    pub fn open(data_root: &str, config: &ObjectStoreConfig) -> Result<Self> {
        let rest = data_root.strip_prefix(S3_SCHEME).ok_or_else(|| {
            LakeError::invalid_config(format!(
                "data_root {data_root:?} is not a directory or an s3:// URL: only s3://bucket/prefix object stores are supported"
            ))
        })?;
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LakeError::invalid_config(format!(
                "data_root {data_root:?} names no bucket: write s3://bucket/prefix"
            )));
        }
        let lake_prefix = if prefix.is_empty() {
            "lake".to_owned()
        } else {
            format!("{prefix}/lake")
        };
        ObjectPath::parse(&lake_prefix).map_err(|e| {
            LakeError::invalid_config(format!(
                "data_root {data_root:?} has a prefix that is not a valid object key ({e}): use plain path segments"
            ))
        })?;
        Ok(Self {
            store: open_s3(bucket, config)?,
            root_url: format!("{S3_SCHEME}{rest}"),
            lake_prefix,
            retrier: Retrier::new(config.retry_policy()?),
        })
    }

    /// A lake in memory, for unit tests of the commit protocol.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            root_url: "s3://memory".to_owned(),
            lake_prefix: "lake".to_owned(),
            retrier: Retrier::new(crate::task::retry::RetryPolicy {
                block: "object_store",
                retries: 0,
                max_wait: std::time::Duration::ZERO,
            }),
        }
    }

    /// The store. Every request goes through [`RemoteLake::retried`].
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Reports every retry of the lake's requests to `observer` (an export's progress).
    pub fn report_retries_to(&mut self, observer: RetryObserver) {
        self.retrier = self.retrier.clone().observed(Some(observer));
    }

    /// The retry budget of the lake's requests, and how many retries they needed so far.
    pub fn retrier(&self) -> &Retrier {
        &self.retrier
    }

    /// The key of a path relative to the lake (`runs/run_id=r/manifest.json`).
    pub fn key(&self, rel: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{rel}", self.lake_prefix))
    }

    /// A key read back as a path relative to `rel_dir` of the lake, if it lies under it.
    pub fn rel_under(&self, key: &ObjectPath, rel_dir: &str) -> Option<String> {
        key.as_ref()
            .strip_prefix(&format!("{}/{rel_dir}/", self.lake_prefix))
            .map(str::to_owned)
    }

    /// `s3://bucket/prefix/lake/<rel>`: how messages and results name an object or a directory of the lake.
    pub fn url(&self, rel: &str) -> String {
        format!("{}/lake/{rel}", self.root_url)
    }

    /// The local directory where exports to this lake are built before they are uploaded: one per lake under
    /// the system's temporary directory, so two exports of one run on one machine meet at the same lock.
    pub fn work_lake_root(&self) -> PathBuf {
        let id = hex::encode(&Sha1::digest(self.root_url.as_bytes())[..8]);
        std::env::temp_dir()
            .join(format!("quantbot-lake-{id}"))
            .join("lake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mirror_the_lake_layout() {
        let lake = RemoteLake::open("s3://bkt/some/prefix/", &Default::default()).unwrap();
        assert_eq!(
            lake.key("runs/run_id=r/manifest.json").as_ref(),
            "some/prefix/lake/runs/run_id=r/manifest.json"
        );
        assert_eq!(
            lake.url("runs/run_id=r"),
            "s3://bkt/some/prefix/lake/runs/run_id=r"
        );
        let key = lake.key("runs/run_id=r/inputs/alerts.parquet");
        assert_eq!(
            lake.rel_under(&key, "runs/run_id=r").as_deref(),
            Some("inputs/alerts.parquet")
        );
        assert_eq!(lake.rel_under(&key, "runs/run_id=q"), None);
        let top = RemoteLake::open("s3://bkt", &Default::default()).unwrap();
        assert_eq!(top.key("runs").as_ref(), "lake/runs");
    }

    #[test]
    fn other_urls_are_config_errors() {
        for bad in ["gs://b/p", "s3://", "s3:///p", "http://x/y"] {
            let err = RemoteLake::open(bad, &Default::default()).unwrap_err();
            assert_eq!(err.code(), crate::error::ErrorCode::InvalidConfig, "{bad}");
        }
        assert!(is_remote("s3://b") && !is_remote("/data/lake"));
    }
}
