//! A file writer that hashes and counts what it writes, so no file is read back to fill the manifest.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{LakeError, Result};
use crate::platform::write_chunk::WRITE_CHUNK;

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
    /// Creates the file; fails with `IO` if it exists or cannot be created. Writes reach the file in pieces of
    /// [`WRITE_CHUNK`] (small enough for 256 part files open at once, too).
    pub fn create(path: &Path) -> Result<Self> {
        let file = create_new(path, false)?;
        Ok(Self {
            path: path.to_owned(),
            inner: BufWriter::with_capacity(WRITE_CHUNK, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Flushes, fsyncs and returns the size and hash.
    pub fn finish(self) -> Result<FileDigest> {
        let (unsynced, digest) = self.finish_unsynced()?;
        sync_files(vec![unsynced])?;
        Ok(digest)
    }

    /// Flushes and starts writing the file back to disk without waiting; [`sync_files`] waits. Lets many
    /// files' writeback overlap instead of paying one disk round trip per file in turn.
    pub fn finish_unsynced(self) -> Result<(UnsyncedFile, FileDigest)> {
        let path = self.path;
        let file = self
            .inner
            .into_inner()
            .map_err(|e| LakeError::io("cannot write", &path, e.error()))?;
        crate::platform::writeback::start_writeback(&file);
        Ok((
            UnsyncedFile { path, file },
            FileDigest {
                bytes: self.bytes,
                sha256: hex::encode(self.hasher.finalize()),
            },
        ))
    }
}

/// A written file whose data may not be on disk yet.
#[derive(Debug)]
pub struct UnsyncedFile {
    path: PathBuf,
    file: File,
}

/// Threads that wait for disks at once: fsync is a wait, not work, so more threads than cores pay off.
const SYNC_THREADS: usize = 8;

/// Waits until every file's data is on disk (fdatasync), several at a time.
pub fn sync_files(files: Vec<UnsyncedFile>) -> Result<()> {
    let sync = |f: &UnsyncedFile| {
        f.file
            .sync_data()
            .map_err(|e| LakeError::io("cannot flush to disk", &f.path, &e))
    };
    if files.len() <= 1 {
        return files.iter().try_for_each(sync);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SYNC_THREADS.min(files.len()))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else {
                            return Ok(());
                        };
                        sync(f)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(LakeError::internal("a disk sync thread panicked")))
        })
    })
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A write larger than the buffer would go to the file in one piece (see `WRITE_CHUNK`).
        let n = self.inner.write(&buf[..buf.len().min(WRITE_CHUNK)])?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Creates a file that must not exist yet (a stale one means a bug or a race, never something to overwrite),
/// open for writing and, when `read`, reading.
pub(crate) fn create_new(path: &Path, read: bool) -> Result<File> {
    File::options()
        .read(read)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| LakeError::io("cannot create", path, &e))
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
