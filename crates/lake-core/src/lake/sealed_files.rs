//! A sealed directory as `verify` reads it: its manifest, each listed file's size, SHA-256 and Parquet row
//! count, and the files a reader would see. On local disk here; in an object store in
//! `lake::remote::sealed_objects`.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::error::{LakeError, Result};
use crate::lake::hashed_file::{digest_file, FileDigest};
use crate::lake::layout::is_hidden;
use crate::lake::manifest_reader::{read_manifest, Manifest, ManifestError};

/// What verify needs of a sealed directory, on disk or in an object store.
pub(crate) trait SealedFiles {
    /// How the report names the directory.
    fn name(&self) -> PathBuf;
    /// The raw and typed manifest `name` at the top of the directory; the outer error is a store that could
    /// not be asked (refused credentials, unreachable), not a missing or malformed manifest.
    fn read_manifest(&self, name: &str) -> Result<ManifestRead>;
    /// The size and SHA-256 of a file and its Parquet row count (or why it has none); `Err` when the file
    /// cannot be read at all.
    fn inspect(&self, rel: &str) -> std::result::Result<Inspected, String>;
    /// Every file a reader sees, relative to the directory.
    fn list(&self) -> Result<Vec<String>>;
    /// Every file a reader sees with its size and when it was last written, where one listing gives both
    /// without reading any bytes (an object store); `None` where reading the files costs no more (disk).
    fn listing(&self) -> Result<Option<Vec<Listed>>> {
        Ok(None)
    }
    /// Every file a reader sees with its size, from metadata alone (no file's bytes read): the listing where
    /// there is one, else the file system's sizes (without write times).
    fn sizes(&self) -> Result<Vec<Listed>> {
        self.listing()?
            .ok_or_else(|| LakeError::internal("a sealed directory with neither listing nor sizes"))
    }
}

/// A file as a listing shows it.
pub(crate) struct Listed {
    /// Relative to the directory.
    pub rel: String,
    /// Size.
    pub bytes: u64,
    /// When it was last written (by the store's clock); `None` on disk, where a file's times are anyone's to set.
    pub written: Option<chrono::DateTime<chrono::Utc>>,
}

/// A manifest as read: its raw and typed forms, or why it is missing or malformed.
pub(crate) type ManifestRead = std::result::Result<(Value, Manifest), ManifestError>;

/// A file's bytes as verify recomputes them.
pub(crate) struct Inspected {
    /// Size and hash.
    pub digest: FileDigest,
    /// Rows in the Parquet footer, or why it could not be read.
    pub rows: std::result::Result<u64, String>,
}

/// A sealed directory on local disk.
pub(crate) struct LocalDir(PathBuf);

impl LocalDir {
    /// The directory at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self(path)
    }
}

impl SealedFiles for LocalDir {
    fn name(&self) -> PathBuf {
        self.0.clone()
    }

    fn read_manifest(&self, name: &str) -> Result<ManifestRead> {
        Ok(read_manifest(&self.0.join(name)))
    }

    fn inspect(&self, rel: &str) -> std::result::Result<Inspected, String> {
        let path = self.0.join(rel);
        let digest = digest_file(&path).map_err(|e| e.to_string())?;
        Ok(Inspected {
            digest,
            rows: parquet_rows(&path),
        })
    }

    fn list(&self) -> Result<Vec<String>> {
        visible_files(&self.0)
    }

    fn sizes(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for rel in visible_files(&self.0)? {
            let path = self.0.join(&rel);
            let bytes = std::fs::metadata(&path)
                .map_err(|e| LakeError::io("cannot read the size of", &path, &e))?
                .len();
            out.push(Listed {
                rel,
                bytes,
                written: None,
            });
        }
        Ok(out)
    }
}

fn parquet_rows(path: &Path) -> std::result::Result<u64, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).map_err(|e| e.to_string())
}

/// Every file under `dir` a reader sees (hidden names and what is under them skipped), relative with `/`
/// separators, sorted.
pub(crate) fn visible_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if is_hidden(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out).map_err(|e| LakeError::io("cannot list", dir, &e))?;
    out.sort();
    Ok(out)
}
