//! The corpus export: every candle of one interval and chain for each UTC day of a range, one sealed manifest
//! per day, each day published on its own.
//!
//! Candles stream from ClickHouse in key order into the days' bucket files: one query for a run of up to seven
//! days (see [`batch`]); a mint filter or a shard (`buckets` = a sub-range) asks for its own mints only. Each
//! day's manifest records the source's fingerprint, made from the rows read where the version column allows
//! (`source::clickhouse::row_prints`), else asked for before they are read (see [`freshness`]). On a
//! re-run a sealed day is skipped when it verifies and its source's fingerprint is unchanged; a stale day is
//! refreshed in part where it can be (only its changed mints fetched, only their buckets rebuilt: see
//! [`refresh`]), a damaged one redone. A shard publishes each of its bucket
//! directories atomically, then its own sealed manifest; the shard that completes the set of shards writes the
//! day's `manifest.json` from them (see [`shards`]).

mod batch;
mod bucket_filter;
pub(crate) mod config;
mod day_target;
mod existing;
mod printing_sink;
mod publisher;
mod refresh;
mod shards;
pub(crate) mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;

use crate::error::{LakeError, Result};
use crate::lake::day_manifest::{DayManifest, MintFilter, Selection};
use crate::lake::fingerprint::SourceFingerprint;
use crate::lake::layout::{day_label, shard_manifest_name, MANIFEST_FILE};
use crate::lake::manifest::{now_iso, FetchStats, FileTotals, SourceSnapshot, WrittenFile};
use crate::lake::publish::{Staging, Target};
use crate::lake::verify::ReuseCheck;
use crate::pipeline::hooks::ExportHooks;
use crate::pipeline::part_sink::{PartDir, PartSink, Parts};
use crate::pipeline::progress::{Phase, Progress};
use crate::pipeline::sink::fetch_into;
use crate::source::clickhouse::day_mints::mints_in_range;
use crate::source::clickhouse::part_prints::{mint_hash, prints_by_parts};
use crate::source::clickhouse::row_prints::RowPrints;
use crate::source::clickhouse::table_parts::{list_parts, TableParts};
use crate::source::clickhouse::CandleSource;
use crate::source::corpus_mirror::CorpusMirror;
use crate::source::feed::{CandleFeed, FetchRequest};
use crate::spec::fetch_plan::MintRanges;
use crate::spec::mint_bucket::mint_bucket_index;
use crate::task::blocking::blocking;
use crate::task::cancel::CancelFlag;
use crate::writer::bucket_writer::PartSettings;

use crate::lake::fingerprint::{freshness, Freshness};
use crate::source::clickhouse::fingerprint::{current_fingerprints, DaySizes};
use batch::{ParkedDays, ParkingSink, MAX_BATCH_DAYS};
use bucket_filter::BucketFilter;
use config::CorpusSettings;
use day_target::DayTarget;
use existing::{confirm_sealed, fingerprinted, previous_days, Previous};
use printing_sink::PrintingSink;
use publisher::Publisher;
use refresh::{FetchedRows, RefreshPlan};

/// The refresh's fetched rows, parked in the day's build directory until its buckets are rebuilt (hidden: never
/// published).
const REFRESH_SPILL: &str = ".refresh.spill";

/// What happened to one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    /// Exported for the first time.
    Exported,
    /// Already sealed and intact with the same selection: left alone.
    Skipped,
    /// Sealed but stale, damaged, made with another selection, or overwrite asked: exported again.
    Redone,
}

impl DayStatus {
    /// `exported`, `skipped` or `redone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exported => "exported",
            Self::Skipped => "skipped",
            Self::Redone => "redone",
        }
    }
}

/// Why a day was exported, skipped or redone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayReason {
    /// Nothing was there.
    New,
    /// Sealed, intact, and its source unchanged.
    Fresh,
    /// Sealed and intact, but without a fingerprint (an older exporter's day): left alone, freshness unknown.
    Unfingerprinted,
    /// The source changed since the day was read: what changed.
    Stale(String),
    /// A file or the manifest did not verify: the first problem.
    Damaged(String),
    /// Made with another chain, bucket range or mint filter.
    OtherSelection,
    /// `overwrite` was asked.
    Overwrite,
}

impl DayReason {
    /// `new`, `fresh`, `unfingerprinted`, `stale`, `damaged`, `other_selection` or `overwrite`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Fresh => "fresh",
            Self::Unfingerprinted => "unfingerprinted",
            Self::Stale(_) => "stale",
            Self::Damaged(_) => "damaged",
            Self::OtherSelection => "other_selection",
            Self::Overwrite => "overwrite",
        }
    }

    /// What changed (stale) or what is damaged; empty otherwise.
    pub fn detail(&self) -> &str {
        match self {
            Self::Stale(d) | Self::Damaged(d) => d,
            _ => "",
        }
    }
}

/// One day's outcome.
#[derive(Debug, Clone)]
pub struct DayOutcome {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What happened.
    pub status: DayStatus,
    /// Why.
    pub reason: DayReason,
    /// The day directory.
    pub dir: PathBuf,
    /// Files, rows and bytes written now (this export's buckets).
    pub written: FileTotals,
    /// True once the day has its `manifest.json` (always, unless this is one shard of several).
    pub sealed: bool,
    /// Set when a stale day was refreshed in part rather than exported again whole.
    pub refreshed: Option<Refreshed>,
}

/// What a partial refresh of a stale day did (docs/lake-format.md, "Refresh").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Buckets rebuilt (their source changed).
    pub buckets: u32,
    /// Mints fetched again (changed or new); the other mints of the rebuilt buckets were copied from the day.
    pub mints: u64,
    /// Files of unchanged buckets kept as they were.
    pub files_kept: u32,
}

/// What a corpus export reports.
#[derive(Debug, Clone)]
pub struct CorpusExportResult {
    /// `<lake>/corpus/ohlcv/interval=<i>`.
    pub corpus_dir: PathBuf,
    /// Every day, in order.
    pub days: Vec<DayOutcome>,
    /// Fetch counters over the days exported now.
    pub stats: FetchStats,
    /// Wall time.
    pub duration_ms: u64,
}

/// Everything the days of one export share.
struct Export {
    settings: CorpusSettings,
    corpus_dir: PathBuf,
    source: Arc<CandleSource>,
    feed: Arc<CandleFeed>,
    /// The feed reads row versions: fingerprints come from the rows read.
    prints_rows: bool,
    snapshot: SourceSnapshot,
    selection: Selection,
    part: PartSettings,
    cancel: CancelFlag,
    progress: Progress,
    publisher: Publisher,
}

/// A day written now (its publish may still be under way): its files and what fetching it cost.
struct Written {
    files: Vec<WrittenFile>,
    stats: FetchStats,
}

/// A batch of days whose rows were read, not yet sealed: the first day written in its target with what fetching
/// the batch cost, the others parked (with the work directory that holds them), and the days' fingerprints.
struct ReadBatch {
    days: Vec<NaiveDate>,
    first: (DayTarget, Vec<WrittenFile>, FetchStats),
    prints: BTreeMap<NaiveDate, SourceFingerprint>,
    parked: Option<(ParkedDays, Staging)>,
}

impl Export {
    /// Connects to the server and makes the corpus directory.
    async fn start(mut settings: CorpusSettings, hooks: ExportHooks) -> Result<Self> {
        let progress = Progress::new(hooks.progress);
        settings.lake.report_retries_to(progress.retry_observer());
        let (source, snapshot) = CandleSource::connect(
            &settings.clickhouse,
            &settings.chain,
            settings.interval.seconds(),
            Some(progress.retry_observer()),
            &hooks.cancel,
        )
        .await?;
        let corpus_dir = settings.interval_dir();
        std::fs::create_dir_all(&corpus_dir)
            .map_err(|e| LakeError::io("cannot create directory", &corpus_dir, &e))?;
        let reading = source
            .with_row_versions()
            .filter(|_| !server_fingerprints_forced());
        let prints_rows = reading.is_some();
        let feed = CandleFeed::ClickHouse(Box::new(reading.unwrap_or_else(|| source.clone())));
        let source = Arc::new(source);
        Ok(Self {
            corpus_dir,
            feed: Arc::new(feed),
            prints_rows,
            source,
            snapshot,
            selection: selection_of(&settings),
            part: PartSettings {
                compression: settings.compression,
                target_file_bytes: settings.target_file_bytes,
                interval_s: settings.interval.seconds(),
            },
            cancel: hooks.cancel,
            publisher: Publisher::new(
                settings.lake.remote.is_some(),
                MAX_BATCH_DAYS,
                progress.clone(),
            ),
            progress,
            settings,
        })
    }

    /// The manifest of a day before its files are known.
    fn day_manifest(&self, day: NaiveDate) -> DayManifest {
        DayManifest::new(
            day_label(day),
            self.settings.interval.spec().to_owned(),
            self.settings.chain.clone(),
            self.snapshot.clone(),
            self.selection.clone(),
        )
    }

    /// What to ask ClickHouse for a run of days `[start_s, end_s)`: every mint in one range query, or (a mint
    /// filter, a shard) a list of mints.
    async fn request(&self, (start_s, end_s): (u32, u32)) -> Result<FetchRequest> {
        let settings = &self.settings;
        let range = (i64::from(start_s) * 1000, i64::from(end_s) * 1000);
        let in_shard = |m: &String| settings.buckets.contains(mint_bucket_index(m));
        let mints: Vec<String> = match (&settings.mint_filter, settings.buckets.is_all()) {
            (None, true) => return Ok(FetchRequest::Range(range.0, range.1)),
            (Some(filter), _) => filter.iter().filter(|m| in_shard(m)).cloned().collect(),
            (None, false) => mints_in_range(
                &self.source.conn,
                &self.source.schema,
                &settings.chain,
                settings.interval.seconds(),
                (start_s, end_s),
                None,
                None,
            )
            .await?
            .into_iter()
            .filter(|m| in_shard(m))
            .collect(),
        };
        if let Some(list) = &settings.mint_filter {
            self.progress
                .phase(Phase::Exporting, Some(list.len() as u64));
        }
        Ok(FetchRequest::Mints(
            mints
                .into_iter()
                .map(|m| MintRanges::new(m, vec![range]))
                .collect(),
        ))
    }

    /// A fresh part sink writing the buckets of this export under `root`.
    fn part_sink(&self, root: &Path) -> Result<PartSink<BucketFilter>> {
        let dir = PartDir {
            root: root.to_owned(),
            rel_root: String::new(),
            part: self.part,
        };
        PartSink::new(
            &dir,
            BucketFilter(self.settings.buckets),
            self.cancel.clone(),
            self.progress.clone(),
            "corpus.write_mint",
        )
    }

    /// Reads a run of consecutive days with one query. The first day is written as its rows arrive; the others are
    /// parked, to be written by [`Self::finish_batch`], which also seals them all. Nothing is sealed here, so a
    /// batch can be read while the one before it is still being finished.
    /// The days' fingerprints are made from the rows read where the feed reads versions; else `known` holds
    /// those already asked for (a stale day's, by the survey) and the other days' are asked for now.
    async fn read_batch(
        self: &Arc<Self>,
        batch: &[NaiveDate],
        known: BTreeMap<NaiveDate, SourceFingerprint>,
    ) -> Result<ReadBatch> {
        self.cancel.check()?;
        // The batch's retries are recorded on its first day, whose query read them all.
        let retries_before = self.feed.retries();
        let first = day_bounds_s(batch[0])?;
        let last = day_bounds_s(batch[batch.len() - 1])?;
        // Before the rows: a change between the two makes the day look stale later, never fresh when it is not.
        // The data parts are listed first, so each listed part's rows are in both.
        let listing = list_parts(&self.source).await?;
        let unknown: Vec<NaiveDate> = batch
            .iter()
            .filter(|d| !self.prints_rows && !known.contains_key(d))
            .copied()
            .collect();
        let mut prints = if unknown.is_empty() {
            BTreeMap::new()
        } else {
            // New days: their size is unknown, so they are counted under `FINAL`.
            self.fingerprints(&unknown, &DaySizes::new()).await?
        };
        with_listed_parts(&mut prints, listing.as_ref());
        prints.extend(known);
        let request = Arc::new(self.request((first.0, last.1)).await?);
        let target = self.prepare(batch[0]).await?;
        let root = target.root().to_owned();
        self.progress.day_started(batch[0]);
        let (parked, parts, rows) = if batch.len() == 1 {
            let this = self.clone();
            let (parts, rows) = fetch_into(
                self.feed.clone(),
                request,
                self.settings.concurrency,
                &self.cancel,
                move || Ok(PrintingSink::new(this.part_sink(&root)?, this.row_prints())),
            )
            .await?;
            (None, parts, rows)
        } else {
            let (parked, (parts, rows), work) = self.park(batch, request, &root).await?;
            (Some((parked, work)), parts, rows)
        };
        let mut of_rows = self.prints_of_rows(rows, batch).await?;
        with_listed_parts(&mut of_rows, listing.as_ref());
        prints.extend(of_rows);
        let stats = FetchStats {
            retries: self.feed.retries() - retries_before,
            ..parts.stats
        };
        Ok(ReadBatch {
            days: batch.to_vec(),
            first: (target, parts.files, stats),
            prints,
            parked,
        })
    }

    /// Seals a read batch's first day, then writes and seals its parked days in turn. Each day is sealed, and its
    /// publish started or queued, before the next is written: a failure keeps the days before it.
    async fn finish_batch(self: &Arc<Self>, read: ReadBatch) -> Result<Vec<Written>> {
        let ReadBatch {
            days,
            first: (target, files, stats),
            mut prints,
            parked,
        } = read;
        let mut written = Vec::with_capacity(days.len());
        let print = prints.remove(&days[0]);
        written.push(self.seal(target, days[0], files, stats, print).await?);
        let Some((mut parked, work)) = parked else {
            return Ok(written);
        };
        for (k, &day) in days.iter().enumerate().skip(1) {
            let target = self.prepare(day).await?;
            self.progress.day_started(day);
            let files;
            (files, parked) = self.write_parked(parked, k, target.root()).await?;
            let stats = parked.stats(k);
            let print = prints.remove(&day);
            written.push(self.seal(target, day, files, stats, print).await?);
        }
        drop(work);
        Ok(written)
    }

    /// Refreshes a stale sealed day in part (see [`refresh`]): the unchanged buckets' files are kept, the changed
    /// buckets rebuilt from the day's own files and the changed mints' rows, fetched with one query. `now` is the
    /// server's fingerprint the plan was made from, taken before those rows are read; the prints of the mints of
    /// `reprint` in it are replaced by those of their fetched rows. Returns the fingerprint sealed.
    async fn refresh_day(
        self: &Arc<Self>,
        day: NaiveDate,
        plan: RefreshPlan,
        mut now: SourceFingerprint,
        reprint: Option<Vec<String>>,
    ) -> Result<(Written, SourceFingerprint)> {
        self.cancel.check()?;
        self.progress.phase(Phase::Exporting, None);
        let retries_before = self.feed.retries();
        let (start_s, end_s) = day_bounds_s(day)?;
        let span = (i64::from(start_s) * 1000, i64::from(end_s) * 1000);
        let day_rel = self.settings.day_rel(day);
        let mut target = self.prepare(day).await?;
        self.progress.day_started(day);
        // The sealed files of the changed buckets are read for their unchanged mints: in place on disk, a checked
        // copy of just those from an object store.
        let (sealed_dir, mirror) = match &self.settings.lake.remote {
            Some(lake) => {
                let (mirror, dir) =
                    CorpusMirror::fetch_files(lake, &day_rel, &plan.old_files()).await?;
                (dir, Some(mirror))
            }
            None => (self.settings.lake.local.join(&day_rel), None),
        };
        let (from, kept) = (sealed_dir.clone(), plan.kept_files.clone());
        target = blocking(move || {
            target.keep(&from, &kept)?;
            Ok(target)
        })
        .await?;
        let root = target.root().to_owned();
        let spill = root.join(REFRESH_SPILL);
        let mints = plan.fetched_mints();
        let (fetched, rows) = if mints.is_empty() {
            (FetchedRows::new(&spill, self.cancel.clone())?, None)
        } else {
            let request = Arc::new(FetchRequest::Mints(
                mints
                    .into_iter()
                    .map(|m| MintRanges::new(m, vec![span]))
                    .collect(),
            ));
            let cancel = self.cancel.clone();
            let print_rows = reprint.is_some();
            fetch_into(
                self.feed.clone(),
                request,
                self.settings.concurrency,
                &self.cancel,
                || {
                    let prints = self.row_prints().filter(|_| print_rows);
                    Ok(PrintingSink::new(
                        FetchedRows::new(&spill, cancel.clone())?,
                        prints,
                    ))
                },
            )
            .await?
        };
        if let Some(mints) = &reprint {
            if rows.is_none() {
                return Err(LakeError::internal(
                    "a refresh of new rows for mints without the prints of their rows",
                ));
            }
            let of_rows = self.prints_of_rows(rows, &[day]).await?;
            let buckets = of_rows
                .get(&day)
                .map(|p| p.buckets.clone())
                .unwrap_or_default();
            now = now.with_mints(mints, &buckets, mint_hash).ok_or_else(|| {
                LakeError::internal("a refresh of new rows for mints without their sealed prints")
            })?;
        }
        let stats = FetchStats {
            retries: self.feed.retries() - retries_before,
            ..fetched.stats
        };
        let (part, plan_w) = (self.part, plan.clone());
        let new_files =
            blocking(move || fetched.write_buckets(&plan_w, &sealed_dir, span, &root, part))
                .await?;
        drop(mirror);
        self.progress.files_done(FileTotals::of(&new_files).bytes);
        let mut files = plan.kept_files.clone();
        files.extend(new_files.iter().cloned());
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        let sealed = self
            .seal(target, day, files, stats, Some(now.clone()))
            .await?;
        Ok((
            Written {
                files: new_files,
                stats: sealed.stats,
            },
            now,
        ))
    }

    /// A collector of the fingerprints of the rows read, where the feed reads versions.
    fn row_prints(&self) -> Option<RowPrints> {
        self.prints_rows
            .then(|| RowPrints::new(&self.source.schema))
    }

    /// The fingerprints of `days` made from the rows read (none without a collector).
    async fn prints_of_rows(
        &self,
        rows: Option<RowPrints>,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<NaiveDate, SourceFingerprint>> {
        match rows {
            Some(rows) => {
                rows.fingerprints(&self.source, days, self.settings.buckets)
                    .await
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// The server's fingerprints of the sealed days `days` of `found`: through the data parts made since each
    /// was read where those tell (see [`prints_by_parts`]), else with the fingerprint query (`sizes`: see
    /// [`DaySizes`]). Each carries the parts listed before any of it was asked for.
    async fn current_prints(
        &self,
        found: &[(NaiveDate, Previous)],
        days: &[NaiveDate],
        sizes: &DaySizes,
    ) -> Result<CurrentPrints> {
        let sealed: Vec<(NaiveDate, (u32, u32), &SourceFingerprint)> = found
            .iter()
            .filter_map(|(d, p)| match p {
                Previous::Sealed(m) => {
                    Some((*d, day_bounds_s(*d).ok()?, m.source_fingerprint.as_ref()?))
                }
                _ => None,
            })
            .collect();
        let survey = prints_by_parts(
            &self.source,
            &sealed,
            self.settings.buckets,
            self.settings.mint_filter.as_deref(),
            self.prints_rows,
        )
        .await?;
        let rest: Vec<NaiveDate> = days
            .iter()
            .filter(|d| {
                !survey.prints.contains_key(d)
                    && !survey.whole.contains_key(d)
                    && !survey.refetch.contains_key(d)
            })
            .copied()
            .collect();
        let mut asked = self.fingerprints(&rest, sizes).await?;
        with_listed_parts(&mut asked, survey.listing.as_ref());
        let mut prints = survey.prints;
        prints.extend(asked);
        Ok(CurrentPrints {
            prints,
            whole: survey.whole,
            refetch: survey.refetch,
        })
    }

    /// The source's fingerprints of `days` for this export's selection (`sizes`: see [`DaySizes`]).
    async fn fingerprints(
        &self,
        days: &[NaiveDate],
        sizes: &DaySizes,
    ) -> Result<BTreeMap<NaiveDate, SourceFingerprint>> {
        current_fingerprints(
            &self.source,
            days,
            self.settings.buckets,
            self.settings.mint_filter.as_deref(),
            sizes,
        )
        .await
    }

    async fn prepare(&self, day: NaiveDate) -> Result<DayTarget> {
        let (lake, day_rel, range) = (
            self.settings.lake.clone(),
            self.settings.day_rel(day),
            self.settings.buckets,
        );
        blocking(move || DayTarget::prepare(&lake, &day_rel, range)).await
    }

    async fn seal(
        &self,
        target: DayTarget,
        day: NaiveDate,
        files: Vec<WrittenFile>,
        stats: FetchStats,
        fingerprint: Option<SourceFingerprint>,
    ) -> Result<Written> {
        let manifest = self
            .day_manifest(day)
            .with_files(files.clone(), stats, now_iso())
            .with_fingerprint(fingerprint);
        let cancel = self.cancel.clone();
        self.publisher
            .publish(day, move || target.seal(&manifest, &cancel))
            .await?;
        Ok(Written { files, stats })
    }

    /// Reads a run of days with one query: the first day is written under `first_root` as its rows arrive, the
    /// others are parked (in a work directory that is never published, swept like any staging debris).
    async fn park(
        self: &Arc<Self>,
        batch: &[NaiveDate],
        request: Arc<FetchRequest>,
        first_root: &Path,
    ) -> Result<(ParkedDays, (Parts<()>, Option<RowPrints>), Staging)> {
        let spans = batch
            .iter()
            .map(|&d| day_bounds_s(d).map(|(s, e)| (i64::from(s) * 1000, i64::from(e) * 1000)))
            .collect::<Result<Vec<_>>>()?;
        let name = format!(
            "batch-{}-{}",
            day_label(batch[0]),
            day_label(batch[batch.len() - 1])
        );
        let target = Target::new(&self.corpus_dir, &name);
        let work = blocking(move || Staging::begin(target, true)).await?;
        let spill = work.dir().join(".rows.spill");
        let (this, first_root) = (self.clone(), first_root.to_owned());
        let ((parked, first), rows) = fetch_into(
            self.feed.clone(),
            request,
            self.settings.concurrency,
            &self.cancel,
            move || {
                let first = this.part_sink(&first_root)?;
                let parking = ParkingSink::new(spans.clone(), first, &spill, this.cancel.clone())?;
                Ok(PrintingSink::new(parking, this.row_prints()))
            },
        )
        .await?;
        Ok((parked, (first, rows), work))
    }

    /// Writes day `k` of a batch from its parked rows under `root`; hands the parked rows back for the next day.
    async fn write_parked(
        &self,
        mut parked: ParkedDays,
        k: usize,
        root: &Path,
    ) -> Result<(Vec<WrittenFile>, ParkedDays)> {
        let (root, part, cancel) = (root.to_owned(), self.part, self.cancel.clone());
        let (files, parked) = blocking(move || {
            let files = parked.write_day(k, &root, part, &cancel)?;
            Ok((files, parked))
        })
        .await?;
        self.progress.files_done(FileTotals::of(&files).bytes);
        Ok((files, parked))
    }
}

/// What the server holds now for the sealed days of a re-run.
#[derive(Default)]
struct CurrentPrints {
    /// The current fingerprint of each day asked about.
    prints: BTreeMap<NaiveDate, SourceFingerprint>,
    /// Days found stale without a fingerprint, to export whole: why.
    whole: BTreeMap<NaiveDate, String>,
    /// Days whose mints with new rows are to be fetched, with the sealed fingerprint to patch (see
    /// [`PartsSurvey::refetch`]).
    refetch: BTreeMap<NaiveDate, (Vec<String>, SourceFingerprint)>,
}

/// Records in each day's fingerprint the parts of `listing` that could hold its rows.
fn with_listed_parts(
    prints: &mut BTreeMap<NaiveDate, SourceFingerprint>,
    listing: Option<&TableParts>,
) {
    for (&day, print) in prints.iter_mut() {
        print.parts = listing
            .zip(day_bounds_s(day).ok())
            .and_then(|(l, range)| l.for_day(range));
    }
}

/// Debug builds only: `QUANTBOT_LAKE_TEST_SERVER_FINGERPRINTS=1` has the server compute every fingerprint, as
/// for a version column the rows cannot fingerprint, so that tests can compare the two ways.
fn server_fingerprints_forced() -> bool {
    cfg!(debug_assertions)
        && std::env::var("QUANTBOT_LAKE_TEST_SERVER_FINGERPRINTS").as_deref() == Ok("1")
}

/// The manifest an export with `settings` writes per day: the day's own, or this shard's.
fn manifest_name(settings: &CorpusSettings) -> String {
    if settings.buckets.is_all() {
        MANIFEST_FILE.to_owned()
    } else {
        shard_manifest_name(settings.buckets)
    }
}

/// What part of each day an export with `settings` covers.
fn selection_of(settings: &CorpusSettings) -> Selection {
    Selection {
        buckets: settings.buckets,
        mint_filter: settings.mint_filter.as_deref().map(MintFilter::of),
    }
}

fn day_bounds_s(day: NaiveDate) -> Result<(u32, u32)> {
    let start = day
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp())
        .unwrap_or(-1);
    let end = start + 86_400;
    match (u32::try_from(start), u32::try_from(end)) {
        (Ok(s), Ok(e)) => Ok((s, e)),
        _ => Err(LakeError::invalid_config(format!(
            "{day} is outside what ClickHouse DateTime holds (1970-01-01 to 2106-02-07)"
        ))),
    }
}

/// One day of the export: why it is (re)done, what the server's fingerprint of it is (a stale day's, asked by
/// the survey), whether it is refreshed in part, and (once known) what happened to it.
struct DayState {
    day: NaiveDate,
    reason: DayReason,
    now: Option<SourceFingerprint>,
    refresh: Option<RefreshPlan>,
    /// Mints whose prints in `now` are replaced by those of their rows as the refresh fetches them.
    reprint: Option<Vec<String>>,
    outcome: Option<DayOutcome>,
}

/// Where each day stands before the export; days to skip already have their outcome. Sealed days are checked
/// against the server's fingerprints of their selection; on disk their files' bytes are read only for the days
/// kept or rebuilt from (an indexer's catch-up makes every day stale: re-hashing them all would be waste).
async fn survey(export: &Export) -> Result<Vec<DayState>> {
    let found = previous_days(&export.settings, ReuseCheck::Sizes).await?;
    let (to_check, sizes) = fingerprinted(&found);
    let mut now = if export.settings.overwrite {
        Default::default()
    } else {
        export.current_prints(&found, &to_check, &sizes).await?
    };
    let whole = std::mem::take(&mut now.whole);
    let mut refetch = std::mem::take(&mut now.refetch);
    let mut now = now.prints;
    let mut states = Vec::with_capacity(found.len());
    for (day, prev) in found {
        let (mut refresh, mut print, mut reprint) = (None, None, None);
        let mut reason = match prev {
            Previous::Missing => DayReason::New,
            Previous::Damaged(what) => DayReason::Damaged(what),
            Previous::OtherSelection => DayReason::OtherSelection,
            Previous::Sealed(_) if export.settings.overwrite => DayReason::Overwrite,
            Previous::Sealed(_) if whole.contains_key(&day) => {
                DayReason::Stale(whole[&day].clone())
            }
            Previous::Sealed(m) => match refetch.remove(&day) {
                // New rows for these mints: fetched, they tell their own prints (and whether they changed).
                Some((mints, then)) => {
                    refresh = RefreshPlan::for_mints(&m, &mints);
                    if refresh.is_some() {
                        print = Some(then);
                        reprint = Some(mints.clone());
                    }
                    DayReason::Stale(format!("new rows for {} mints", mints.len()))
                }
                None => match freshness(&m, now.get(&day)) {
                    Freshness::Fresh => DayReason::Fresh,
                    Freshness::Unfingerprinted => DayReason::Unfingerprinted,
                    Freshness::Stale(what) => {
                        print = now.remove(&day);
                        refresh = print.as_ref().and_then(|now| RefreshPlan::new(&m, now));
                        DayReason::Stale(what)
                    }
                },
            },
        };
        let kept = matches!(reason, DayReason::Fresh | DayReason::Unfingerprinted);
        if kept || refresh.is_some() {
            if let Some(what) = confirm_sealed(&export.settings, day).await? {
                (reason, refresh, print, reprint) = (DayReason::Damaged(what), None, None, None);
            }
        }
        let skip = matches!(reason, DayReason::Fresh | DayReason::Unfingerprinted);
        let outcome = match skip {
            true => Some(DayOutcome {
                date: day_label(day),
                status: DayStatus::Skipped,
                reason: reason.clone(),
                sealed: has_day_manifest(&export.settings, day).await,
                dir: export.settings.shown_day(day),
                written: FileTotals::default(),
                refreshed: None,
            }),
            false => None,
        };
        states.push(DayState {
            day,
            reason,
            now: print,
            refresh,
            reprint,
            outcome,
        });
    }
    Ok(states)
}

/// True when the day has its own `manifest.json` (a shard's export may have sealed only its part).
async fn has_day_manifest(settings: &CorpusSettings, day: NaiveDate) -> bool {
    let dir = settings.lake.sealed(&settings.day_rel(day));
    blocking(move || Ok(matches!(dir.read_manifest(MANIFEST_FILE), Ok(Ok(_)))))
        .await
        .unwrap_or(false)
}

/// The end of the batch that starts at day `i`: consecutive days still to do whole, at most [`MAX_BATCH_DAYS`].
/// A day outside what DateTime holds ends the batch before it, so the days before it are kept.
fn batch_end(states: &[DayState], i: usize) -> usize {
    let mut end = i + 1;
    while end < states.len()
        && states[end].outcome.is_none()
        && states[end].refresh.is_none()
        && end - i < MAX_BATCH_DAYS
        && day_bounds_s(states[end].day).is_ok()
    {
        end += 1;
    }
    end
}

/// Exports the days `states` leaves to do, batch by batch, adding their fetch counters to `stats`; the last
/// day's publish may still be under way when this returns.
///
/// A batch's parked days are written while the next batch is read: the read waits on the server, the writing on
/// the exporter's CPU, so the two overlap. Days are still sealed in order (the next batch is only sealed once
/// the one before is), and both always run to their end, so a failure leaves no work behind and keeps every
/// day before it.
async fn export_days(
    export: &Arc<Export>,
    states: &mut [DayState],
    stats: &mut FetchStats,
) -> Result<()> {
    // The batch read but not yet finished, and where its days lie in `states`.
    let mut pending: Option<(ReadBatch, std::ops::Range<usize>)> = None;
    let mut i = 0;
    while i < states.len() {
        if states[i].outcome.is_some() {
            i += 1;
            continue;
        }
        if let Some(plan) = states[i].refresh.take() {
            finish_pending(export, states, stats, pending.take()).await?;
            let state = &mut states[i];
            let now = state.now.take().ok_or_else(|| {
                LakeError::internal("a refresh plan without the fingerprint it was made from")
            })?;
            let refreshed = Refreshed {
                buckets: plan.changed.len() as u32,
                mints: plan.mints_fetched(),
                files_kept: plan.kept_files.len() as u32,
            };
            let reprint = state.reprint.take();
            let then = reprint.as_ref().map(|_| now.clone());
            let (written, sealed) = export.refresh_day(state.day, plan, now, reprint).await?;
            // Found by new rows: what they changed is known now.
            if let Some(then) = then {
                let what = then.changes(&sealed).unwrap_or_else(|| {
                    "new rows, the same candles and versions (rewritten as they were)".to_owned()
                });
                state.reason = DayReason::Stale(what);
            }
            *stats += written.stats;
            state.outcome = Some(DayOutcome {
                date: day_label(state.day),
                status: DayStatus::Redone,
                reason: state.reason.clone(),
                dir: export.settings.shown_day(state.day),
                written: FileTotals::of(&written.files),
                sealed: false,
                refreshed: Some(refreshed),
            });
            i += 1;
            continue;
        }
        let end = batch_end(states, i);
        let batch: Vec<NaiveDate> = states[i..end].iter().map(|s| s.day).collect();
        let known = states[i..end]
            .iter_mut()
            .filter_map(|s| Some((s.day, s.now.take()?)))
            .collect();
        export.progress.phase(Phase::Exporting, None);
        let before = pending.take();
        let (finished, read) = tokio::join!(
            finish_pending(export, states, stats, before),
            export.read_batch(&batch, known)
        );
        // The earlier days' failure first: it is the first in day order, and a batch read after it is dropped
        // unsealed.
        finished?;
        pending = Some((read?, i..end));
        i = end;
    }
    finish_pending(export, states, stats, pending).await
}

/// Finishes a read batch (see [`Export::finish_batch`]) and records its days' outcomes.
async fn finish_pending(
    export: &Arc<Export>,
    states: &mut [DayState],
    stats: &mut FetchStats,
    pending: Option<(ReadBatch, std::ops::Range<usize>)>,
) -> Result<()> {
    let Some((read, range)) = pending else {
        return Ok(());
    };
    let written = export.finish_batch(read).await?;
    for (state, written) in states[range].iter_mut().zip(written) {
        *stats += written.stats;
        state.outcome = Some(DayOutcome {
            date: day_label(state.day),
            status: if state.reason == DayReason::New {
                DayStatus::Exported
            } else {
                DayStatus::Redone
            },
            reason: state.reason.clone(),
            dir: export.settings.shown_day(state.day),
            written: FileTotals::of(&written.files),
            sealed: false,
            refreshed: None,
        });
    }
    Ok(())
}

/// Exports every day of the settings; a failure on day N keeps days before it published.
pub async fn export_corpus(
    settings: CorpusSettings,
    hooks: ExportHooks,
) -> Result<CorpusExportResult> {
    let started = Instant::now();
    let export = Arc::new(Export::start(settings, hooks).await?);
    let mut states = survey(&export).await?;
    let mut stats = FetchStats::default();
    let to_do = states.iter().filter(|s| s.outcome.is_none()).count();
    export.progress.days_planned(to_do as u64);
    export.progress.phase(Phase::Exporting, None);
    let exported = export_days(&export, &mut states, &mut stats).await;
    // The last day's publish, or the one under way when a later day failed: the days before a failure are kept.
    let published = export.publisher.finish().await;
    exported?;
    published?;
    for state in &mut states {
        if let Some(outcome) = &mut state.outcome {
            if outcome.status != DayStatus::Skipped {
                outcome.sealed = export.publisher.sealed(state.day);
            }
        }
    }
    export.progress.phase(Phase::Done, None);
    // Every retry of the export, those of its checks outside the batches too.
    stats.retries = export.feed.retries();
    Ok(CorpusExportResult {
        corpus_dir: export.settings.shown_corpus(),
        days: states.into_iter().filter_map(|s| s.outcome).collect(),
        stats,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
