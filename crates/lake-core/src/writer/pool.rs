//! Bucket writers on as many cores as the process may use: each worker owns the buckets `b % workers == k`.
//!
//! Encoding and compressing pages is most of an export's own work. When the exporter shares a machine with
//! the server, or has cores of its own, spreading buckets over threads keeps it ahead of the server; with one
//! core (the process's CPU affinity says so) it writes inline. A bucket's bytes depend only on its own rows, so
//! the files are the same whatever the number of workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::error::{LakeError, Result};
use crate::lake::manifest::WrittenFile;
use crate::spec::candles::MintCandles;
use crate::writer::bucket_writer::{BucketWriter, PartSettings};
use crate::writer::page_spill::PageStore;

/// Most workers: the exporter shares its machine with the fetch (and often the server).
const MAX_WORKERS: usize = 2;
/// Mints queued per worker (a mint of a long window can hold megabytes: few are queued).
const QUEUE: usize = 2;

/// What a worker is asked to do.
enum Job {
    Write(u8, MintCandles),
    Close(u8),
}

enum Worker {
    Inline(Box<BucketWriter>),
    Threaded {
        jobs: mpsc::SyncSender<Job>,
        done: Option<JoinHandle<Result<Vec<WrittenFile>>>>,
    },
}

fn join(done: JoinHandle<Result<Vec<WrittenFile>>>) -> Result<Vec<WrittenFile>> {
    done.join()
        .unwrap_or_else(|_| Err(LakeError::internal("a writer thread panicked")))
}

/// Writes buckets under one directory with one or more [`BucketWriter`]s.
///
/// Dropped without [`WriterPool::finish`] (the export failed, or starts over), its workers stop without
/// closing any file and are waited for, so nothing is written after the pool is gone.
pub struct WriterPool {
    workers: Vec<Worker>,
    abandoned: Arc<AtomicBool>,
}

/// Workers for this process: the cores its CPU affinity allows, at most [`MAX_WORKERS`].
fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
}

fn spill_path(base: &Path, k: usize) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

impl WriterPool {
    /// A pool writing under `root` (see [`BucketWriter::new`]); with a file store at `base`, worker `k` spills to
    /// `<base>.<k>`.
    pub fn new(
        root: &Path,
        rel_root: &str,
        settings: PartSettings,
        pages: PageStore<'_>,
    ) -> Result<Self> {
        Self::with_workers(worker_count(), root, rel_root, settings, pages)
    }

    fn with_workers(
        count: usize,
        root: &Path,
        rel_root: &str,
        settings: PartSettings,
        pages: PageStore<'_>,
    ) -> Result<Self> {
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(count);
        for k in 0..count {
            let writer = match pages {
                PageStore::File(base) => BucketWriter::new(
                    root,
                    rel_root,
                    settings,
                    PageStore::File(&spill_path(base, k)),
                )?,
                PageStore::Memory => BucketWriter::new(root, rel_root, settings, pages)?,
            };
            if count == 1 {
                workers.push(Worker::Inline(Box::new(writer)));
                continue;
            }
            let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
            let abandoned = abandoned.clone();
            let done = std::thread::Builder::new()
                .name(format!("lake-writer-{k}"))
                .spawn(move || {
                    let mut writer = writer;
                    while let Ok(job) = queue.recv() {
                        if abandoned.load(Ordering::SeqCst) {
                            break;
                        }
                        match job {
                            Job::Write(bucket, candles) => writer.write(bucket, &candles)?,
                            Job::Close(bucket) => writer.close_bucket(bucket)?,
                        }
                    }
                    if abandoned.load(Ordering::SeqCst) {
                        return Err(LakeError::internal("the writer pool was abandoned"));
                    }
                    writer.finish()
                })
                .map_err(|e| LakeError::internal(format!("cannot start a writer thread: {e}")))?;
            workers.push(Worker::Threaded {
                jobs,
                done: Some(done),
            });
        }
        Ok(Self { workers, abandoned })
    }

    /// Appends a mint's candles to its bucket (mints of one bucket in increasing order).
    pub fn write(&mut self, bucket: u8, candles: MintCandles) -> Result<()> {
        self.send(bucket, Job::Write(bucket, candles))
    }

    /// Closes one bucket's files now: no more of its mints will come.
    pub fn close_bucket(&mut self, bucket: u8) -> Result<()> {
        self.send(bucket, Job::Close(bucket))
    }

    fn send(&mut self, bucket: u8, job: Job) -> Result<()> {
        let n = self.workers.len();
        match &mut self.workers[usize::from(bucket) % n] {
            Worker::Inline(writer) => match job {
                Job::Write(bucket, candles) => writer.write(bucket, &candles),
                Job::Close(bucket) => writer.close_bucket(bucket),
            },
            Worker::Threaded { jobs, done } => match jobs.send(job) {
                Ok(()) => Ok(()),
                // The worker stopped on an error of its own (a full disk, say): that error is the one to report.
                Err(_) => match done.take().map(join) {
                    Some(Err(e)) => Err(e),
                    _ => Err(LakeError::internal("a writer thread stopped early")),
                },
            },
        }
    }

    /// Closes every bucket; returns the files sorted by path. A worker's own error is reported as it is.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        // Close every queue first, so that the workers close their files at the same time.
        let mut closing = Vec::with_capacity(self.workers.len());
        for worker in std::mem::take(&mut self.workers) {
            closing.push(match worker {
                Worker::Inline(writer) => Err(writer),
                Worker::Threaded { jobs, done } => {
                    drop(jobs);
                    Ok(done)
                }
            });
        }
        let mut files = Vec::new();
        let mut first_error = None;
        for worker in closing {
            let outcome = match worker {
                Err(writer) => writer.finish(),
                Ok(Some(done)) => join(done),
                Ok(None) => Err(LakeError::internal("a writer thread stopped early")),
            };
            match outcome {
                Ok(mut f) => files.append(&mut f),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(files)
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::SeqCst);
        for worker in std::mem::take(&mut self.workers) {
            if let Worker::Threaded { jobs, done } = worker {
                drop(jobs);
                if let Some(done) = done {
                    let _ = done.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::settings::CompressionKind;

    fn settings() -> PartSettings {
        PartSettings {
            compression: CompressionKind::Zstd,
            target_file_bytes: 1 << 30,
            interval_s: 60,
        }
    }

    fn candles(mint: &str, n: i64) -> MintCandles {
        let mut c = MintCandles::new(mint);
        for i in 0..n {
            let v = (i * 7 % 13) as f64;
            c.push(i * 60_000, [v, v + 1.0, v - 1.0, v, v * 2.0]);
        }
        c
    }

    fn write_all(workers: usize, dir: &Path) -> Vec<WrittenFile> {
        let mut pool = WriterPool::with_workers(
            workers,
            dir,
            "",
            settings(),
            PageStore::File(&dir.join(".spill")),
        )
        .unwrap();
        for k in 0..40u8 {
            pool.write(k % 5, candles(&format!("m{k:03}"), 500 + i64::from(k)))
                .unwrap();
        }
        pool.finish().unwrap()
    }

    #[test]
    fn the_files_do_not_depend_on_the_number_of_workers() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = write_all(1, one.path());
        let b = write_all(2, two.path());
        assert_eq!(a.len(), 5);
        assert_eq!(a, b, "same paths, sizes and hashes");
        for k in 0..2 {
            assert!(!spill_path(&two.path().join(".spill"), k).exists());
        }
    }

    #[test]
    fn a_dropped_pool_writes_nothing_more_and_leaves_no_spill() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = WriterPool::with_workers(
            2,
            dir.path(),
            "",
            settings(),
            PageStore::File(&dir.path().join(".spill")),
        )
        .unwrap();
        for k in 0..10u8 {
            pool.write(k % 4, candles(&format!("m{k:03}"), 300))
                .unwrap();
        }
        drop(pool);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        // Row groups far from full were never closed: no part file, no spill.
        assert!(left.is_empty(), "{left:?}");
        // The same spill names are free again for a fresh pool.
        assert_eq!(write_all(2, dir.path()).len(), 5);
    }
}
