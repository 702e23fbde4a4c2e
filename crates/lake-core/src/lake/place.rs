//! Where an export's sealed directories go: the lake on local disk, or a lake in an object store that is
//! built in a local work directory and uploaded. Exports ask this one place for their staging, for how a
//! directory is named in results, and for a sealed directory to read back, and never branch on the kind.

use std::path::PathBuf;

use crate::error::{LakeError, Result};
use crate::lake::layout::lake_root;
use crate::lake::publish::{Staging, Target};
use crate::lake::remote::location::{is_remote, RemoteLake};
use crate::lake::remote::sealed_objects::RemoteDir;
use crate::lake::remote::store::ObjectStoreConfig;
use crate::lake::sealed_files::{LocalDir, SealedFiles};
use crate::task::retry::RetryObserver;

/// A lake, as an export writes and reads it.
#[derive(Debug, Clone)]
pub struct LakePlace {
    /// The local lake root: the lake itself, or the work directory where a remote lake's exports are built.
    pub local: PathBuf,
    /// The object store, when `data_root` is an `s3://` URL.
    pub remote: Option<RemoteLake>,
}

impl LakePlace {
    /// The lake of a config's `data_root`: a directory (the lake is `<data_root>/lake`) or `s3://bucket/prefix`
    /// (with the config's `object_store` block, which a directory refuses).
    pub fn open(data_root: &str, object_store: Option<&ObjectStoreConfig>) -> Result<Self> {
        if is_remote(data_root) {
            let remote = RemoteLake::open(data_root, object_store.unwrap_or(&Default::default()))?;
            Ok(Self {
                local: remote.work_lake_root(),
                remote: Some(remote),
            })
        } else if object_store.is_some() {
            Err(LakeError::invalid_config(format!(
                "object_store applies to an s3:// data_root, and data_root {data_root:?} is a directory: remove object_store or give s3://bucket/prefix"
            )))
        } else {
            Ok(Self {
                local: lake_root(data_root),
                remote: None,
            })
        }
    }

    /// Reports every retry of the object store's requests to `observer` (an export's progress); nothing for
    /// a lake on disk.
    pub fn report_retries_to(&mut self, observer: RetryObserver) {
        if let Some(remote) = &mut self.remote {
            remote.report_retries_to(observer);
        }
    }

    /// How results name the lake's directory `rel`: a path, or an `s3://` URL.
    pub fn shown(&self, rel: &str) -> PathBuf {
        match &self.remote {
            Some(lake) => PathBuf::from(lake.url(rel)),
            None => self.local.join(rel),
        }
    }

    /// The sealed directory `rel` of the lake, to read its manifest or verify it.
    pub(crate) fn sealed(&self, rel: &str) -> Box<dyn SealedFiles + Send> {
        match &self.remote {
            Some(lake) => Box::new(RemoteDir::new(lake.clone(), rel)),
            None => Box::new(LocalDir::new(self.local.join(rel))),
        }
    }

    /// Begins the staging of the lake's directory `rel` (`runs/run_id=r`, a corpus day): locked (and, in an
    /// object store, leased), refusing an existing one unless `overwrite`.
    pub fn stage(&self, rel: &str, overwrite: bool) -> Result<Staging> {
        let local = self.local.join(rel);
        let parent = local.parent().unwrap_or(&self.local).to_owned();
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = Target::new(&parent, &name);
        match &self.remote {
            Some(lake) => Staging::begin_remote(target, overwrite, lake, rel),
            None => Staging::begin(target, overwrite),
        }
    }
}
