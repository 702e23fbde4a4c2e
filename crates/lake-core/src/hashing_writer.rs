//! A file writer that hashes and counts what it writes, so no file is read back to fill the manifest.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{LakeError, Result};

/// Size and SHA-256 of a finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Bytes written.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
}

/// Buffered writer to a new file that hashes every byte on the way.
pub struct HashingWriter {
    path: PathBuf,
    inner: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    /// Creates the file; fails with `IO` if it exists or cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        Self::create_with_buffer(path, 1 << 20)
    }

    /// Like [`HashingWriter::create`], with a write buffer of `buffer` bytes (small when many files are open).
    pub fn create_with_buffer(path: &Path, buffer: usize) -> Result<Self> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| LakeError::io("cannot create", path, &e))?;
        Ok(Self {
            path: path.to_owned(),
            inner: BufWriter::with_capacity(buffer, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Flushes, fsyncs and returns the size and hash.
    pub fn finish(self) -> Result<FileDigest> {
        let path = self.path;
        let file = self
            .inner
            .into_inner()
            .map_err(|e| LakeError::io("cannot write", &path, e.error()))?;
        file.sync_all()
            .map_err(|e| LakeError::io("cannot flush to disk", &path, &e))?;
        Ok(FileDigest {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a whole file at once (hashing it) and fsyncs it.
pub fn write_file(path: &Path, content: &[u8]) -> Result<FileDigest> {
    let mut w = HashingWriter::create(path)?;
    w.write_all(content)
        .map_err(|e| LakeError::io("cannot write", path, &e))?;
    w.finish()
}

/// SHA-256 and size of an existing file, streamed.
pub fn digest_file(path: &Path) -> io::Result<FileDigest> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok(FileDigest {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}
