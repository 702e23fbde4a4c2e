//! The sink both pipelines write through: each fetched mint passes a [`MintFilter`] (a run keeps its alerts'
//! windows and counts their coverage; a corpus shard keeps its buckets), and what passes goes to the bucket
//! files.

use std::path::{Path, PathBuf};

use crate::error::{LakeError, Result};
use crate::lake::layout::SPILL_FILE;
use crate::lake::manifest::{FetchStats, FileTotals, WrittenFile};
use crate::pipeline::progress::{Phase, Progress};
use crate::pipeline::sink::MintSink;
use crate::source::fetched_mint::FetchedMint;
use crate::spec::candles::MintCandles;
use crate::spec::mint_bucket::mint_bucket_index;
use crate::task::cancel::CancelFlag;
use crate::writer::bucket_writer::PartSettings;
use crate::writer::page_spill::PageStore;
use crate::writer::pool::WriterPool;

/// Decides, mint by mint, which candles go to the bucket files, and keeps what else it learns on the way.
pub(crate) trait MintFilter: Send + 'static {
    /// What the filter yields besides the files.
    type Output: Send + 'static;
    /// The candles of a fetched mint to write (`None`: nothing, and the mint does not count as written).
    fn keep(&mut self, candles: MintCandles) -> Option<MintCandles>;
    /// Every mint was seen.
    fn finish(self) -> Self::Output;
}

/// Where the bucket files go.
#[derive(Debug, Clone)]
pub(crate) struct PartDir {
    /// The directory the `mint_bucket=<bb>` directories are made in; emptied first.
    pub root: PathBuf,
    /// Its path relative to the sealed directory (empty for the sealed directory itself).
    pub rel_root: String,
    /// Part file settings.
    pub part: PartSettings,
}

/// What the sink wrote.
#[derive(Debug)]
pub(crate) struct Parts<T> {
    /// The bucket files.
    pub files: Vec<WrittenFile>,
    /// Fetch counters over every mint received.
    pub stats: FetchStats,
    /// What the filter yielded.
    pub filtered: T,
}

/// Writes the mints a filter keeps into bucket files.
pub(crate) struct PartSink<F> {
    writer: WriterPool,
    filter: F,
    stats: FetchStats,
    cancel: CancelFlag,
    progress: Progress,
    /// The fail point hit before each mint (tests crash exports there).
    failpoint: &'static str,
}

/// Empties a directory, creating it if needed (a fetch that starts over starts from nothing).
pub(crate) fn clear_dir(root: &Path) -> Result<()> {
    std::fs::create_dir_all(root)
        .map_err(|e| LakeError::io("cannot create directory", root, &e))?;
    let entries = std::fs::read_dir(root).map_err(|e| LakeError::io("cannot list", root, &e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| LakeError::io("cannot list", root, &e))?
            .path();
        std::fs::remove_dir_all(&path)
            .or_else(|_| std::fs::remove_file(&path))
            .map_err(|e| LakeError::io("cannot clear", &path, &e))?;
    }
    Ok(())
}

impl<F: MintFilter> PartSink<F> {
    /// A sink over an emptied `dir.root`.
    pub fn new(
        dir: &PartDir,
        filter: F,
        cancel: CancelFlag,
        progress: Progress,
        failpoint: &'static str,
    ) -> Result<Self> {
        clear_dir(&dir.root)?;
        Ok(Self {
            writer: WriterPool::new(
                &dir.root,
                &dir.rel_root,
                dir.part,
                PageStore::File(&dir.root.join(SPILL_FILE)),
            )?,
            filter,
            stats: FetchStats::default(),
            cancel,
            progress,
            failpoint,
        })
    }
}

impl<F: MintFilter> MintSink for PartSink<F> {
    type Output = Parts<F::Output>;

    fn add(&mut self, m: FetchedMint) -> Result<()> {
        self.cancel.check()?;
        crate::failpoint::hit(self.failpoint);
        self.stats += m.stats();
        let bucket = mint_bucket_index(&m.candles.mint);
        match self.filter.keep(m.candles) {
            Some(kept) => {
                self.progress.mint_done(kept.len() as u64);
                self.writer.write(bucket, kept)
            }
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<Self::Output> {
        self.cancel.check()?;
        self.progress.phase(Phase::Finishing, None);
        let files = self.writer.finish()?;
        self.progress.files_done(FileTotals::of(&files).bytes);
        Ok(Parts {
            files,
            stats: self.stats,
            filtered: self.filter.finish(),
        })
    }
}
