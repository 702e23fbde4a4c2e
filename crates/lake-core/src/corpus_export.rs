//! The corpus export: every candle of one interval and chain for each UTC day of a range, one sealed manifest
//! per day, each day published on its own.
//!
//! Per day, candles stream from ClickHouse in key order into the day's bucket files: one query for the whole
//! day (a server that must sort gets the day's mints first, then bounded queries over them); a mint filter or a
//! shard (`buckets` = a sub-range) asks for its own mints only. A sealed day that verifies is skipped on a re-run;
//! one that does not is redone. A shard publishes each of its bucket directories atomically, then its own sealed
//! manifest; the shard that completes the set of shards writes the day's `manifest.json` from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bucket_range::BucketRange;
use crate::bucket_writer::{PartSettings, WrittenFile};
use crate::cancel::CancelFlag;
use crate::candle_feed::{fetch_into, CandleFeed, FetchRequest, MintSink};
use crate::clickhouse_source::day_mints::mints_in_range;
use crate::clickhouse_source::{CandleSource, FetchedMint};
use crate::corpus_batch::{ParkedDays, ParkingSink, MAX_BATCH_DAYS};
use crate::corpus_config::{day_dir_name, CorpusSettings};
use crate::corpus_manifest::{merge_shards, shard_manifest_name, DayManifest};
use crate::error::{LakeError, Result};
use crate::export_run::{ExportHooks, SPILL_FILE};
use crate::fetch_plan::MintRanges;
use crate::hashing_writer::write_file;
use crate::manifest::{manifest_bytes, now_iso, FetchStats, MANIFEST_FILE};
use crate::mint_bucket::{bucket_name, mint_bucket_index};
use crate::progress::{Phase, Progress};
use crate::publish::{sync_dir, Staging, Target, TargetLock};
use crate::verify::verify_manifest;
use crate::worker::blocking;
use crate::writer_pool::WriterPool;

/// What happened to one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    /// Exported for the first time.
    Exported,
    /// Already sealed and intact with the same selection: left alone.
    Skipped,
    /// Sealed but damaged, different, or overwrite asked: exported again.
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

/// One day's outcome.
#[derive(Debug, Clone)]
pub struct DayOutcome {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What happened.
    pub status: DayStatus,
    /// The day directory.
    pub dir: PathBuf,
    /// Rows in this day's files of this export's buckets.
    pub rows: u64,
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// True once the day has its `manifest.json` (always, unless this is one shard of several).
    pub sealed: bool,
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

/// `{mints, sha256}` of the sorted filter, so a re-run can tell whether a sealed day used the same selection.
fn filter_digest(filter: &Option<Vec<String>>) -> Value {
    match filter {
        None => Value::Null,
        Some(list) => {
            let mut h = Sha256::new();
            for m in list {
                h.update(m.as_bytes());
                h.update([0]);
            }
            json!({ "mints": list.len(), "sha256": hex::encode(h.finalize()) })
        }
    }
}

/// Whether a day (or this shard of it) is already sealed, intact and made with the same selection.
fn already_done(
    day_dir: &Path,
    manifest_name: &str,
    settings: &CorpusSettings,
    digest: &Value,
) -> Result<Option<bool>> {
    let path = day_dir.join(manifest_name);
    if !path.exists() {
        return Ok(None);
    }
    let range = settings.buckets;
    let in_scope = move |rel: &str| {
        rel.split('/')
            .next()
            .and_then(|d| d.strip_prefix("mint_bucket="))
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .is_some_and(|b| range.contains(b))
    };
    let report = verify_manifest(day_dir, manifest_name, &in_scope)?;
    let same = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| DayManifest::from_json(&v).ok())
        .is_some_and(|m| m.same_selection(&settings.chain, settings.buckets, digest));
    Ok(Some(report.ok() && same))
}

/// Shared by the days of one export.
struct DayContext {
    source: Arc<CandleSource>,
    feed: Arc<CandleFeed>,
    part: PartSettings,
    buckets: BucketRange,
    concurrency: usize,
    cancel: CancelFlag,
    progress: Progress,
}

/// Writes a day's mints (those of its bucket range) into bucket files under one directory.
struct DaySink {
    writer: WriterPool,
    buckets: BucketRange,
    stats: FetchStats,
    cancel: CancelFlag,
    progress: Progress,
}

impl DaySink {
    /// A sink writing under `root`, emptied first (a retried fetch starts from nothing).
    fn new(ctx: &DayContext, root: &Path) -> Result<Self> {
        clear_dir(root)?;
        Ok(Self {
            writer: WriterPool::new(root, "", ctx.part, &root.join(SPILL_FILE))?,
            buckets: ctx.buckets,
            stats: FetchStats::default(),
            cancel: ctx.cancel.clone(),
            progress: ctx.progress.clone(),
        })
    }
}

impl MintSink for DaySink {
    type Output = (Vec<WrittenFile>, FetchStats);

    fn add(&mut self, m: FetchedMint) -> Result<()> {
        self.cancel.check()?;
        crate::failpoint::hit("corpus.write_mint");
        self.stats += FetchStats {
            rows_fetched: m.rows_fetched,
            duplicates_dropped: m.duplicates_dropped,
        };
        let bucket = mint_bucket_index(&m.candles.mint);
        if self.buckets.contains(bucket) {
            self.progress.mint_done(m.candles.len() as u64);
            self.writer.write(bucket, m.candles)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Self::Output> {
        self.cancel.check()?;
        let files = self.writer.finish()?;
        self.progress
            .files_done(files.iter().map(|f| f.bytes).sum());
        Ok((files, self.stats))
    }
}

/// Empties a staging directory (a fetch that starts over starts from nothing).
pub(crate) fn clear_dir(root: &Path) -> Result<()> {
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

/// What to ask ClickHouse for a run of days `[start_s, end_s)`: every mint in one range query, or (a mint filter,
/// a shard) a list of mints.
async fn range_request(
    ctx: &DayContext,
    settings: &CorpusSettings,
    (start_s, end_s): (u32, u32),
) -> Result<FetchRequest> {
    let range = (i64::from(start_s) * 1000, i64::from(end_s) * 1000);
    let in_shard = |m: &String| settings.buckets.contains(mint_bucket_index(m));
    let mints: Vec<String> = match (&settings.mint_filter, settings.buckets.is_all()) {
        (None, true) => return Ok(FetchRequest::Range(range.0, range.1)),
        (Some(filter), _) => filter.iter().filter(|m| in_shard(m)).cloned().collect(),
        (None, false) => mints_in_range(
            &ctx.source.conn,
            &ctx.source.schema,
            &settings.chain,
            settings.interval.seconds(),
            (start_s, end_s),
            None,
        )
        .await?
        .into_iter()
        .filter(|m| in_shard(m))
        .collect(),
    };
    if let Some(list) = &settings.mint_filter {
        ctx.progress
            .phase(Phase::Exporting, Some(list.len() as u64));
    }
    Ok(FetchRequest::Mints(
        mints
            .into_iter()
            .map(|m| MintRanges::new(m, vec![range]))
            .collect(),
    ))
}

/// Fetches a day into bucket files under `root`.
async fn fetch_day(
    ctx: &Arc<DayContext>,
    request: FetchRequest,
    root: &Path,
) -> Result<(Vec<WrittenFile>, FetchStats)> {
    let sink_ctx = ctx.clone();
    let root = root.to_owned();
    fetch_into(
        ctx.feed.clone(),
        Arc::new(request),
        ctx.concurrency,
        &ctx.cancel,
        move || DaySink::new(&sink_ctx, &root),
    )
    .await
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

/// Exports every day of the settings; a failure on day N keeps days before it published.
pub async fn export_corpus(
    settings: CorpusSettings,
    hooks: ExportHooks,
) -> Result<CorpusExportResult> {
    let started = Instant::now();
    let progress = Progress::new(hooks.progress.clone());
    let cancel = hooks.cancel.clone();
    let (source, snapshot) = CandleSource::connect(
        &settings.clickhouse,
        &settings.chain,
        settings.interval.seconds(),
    )
    .await?;
    let corpus_dir = settings.interval_dir();
    std::fs::create_dir_all(&corpus_dir)
        .map_err(|e| LakeError::io("cannot create directory", &corpus_dir, &e))?;
    let source = Arc::new(source);
    let ctx = Arc::new(DayContext {
        feed: Arc::new(CandleFeed::ClickHouse(Box::new((*source).clone()))),
        source,
        part: PartSettings {
            compression: settings.compression,
            target_file_bytes: settings.target_file_bytes,
            interval_s: settings.interval.seconds(),
        },
        buckets: settings.buckets,
        concurrency: settings.concurrency,
        cancel: cancel.clone(),
        progress: progress.clone(),
    });
    let digest = filter_digest(&settings.mint_filter);
    let manifest_name = if settings.buckets.is_all() {
        MANIFEST_FILE.to_owned()
    } else {
        shard_manifest_name(settings.buckets)
    };
    // Sealed days that are intact and made the same way are skipped; the others are exported in runs of
    // consecutive days, one query per run (see `corpus_batch`).
    let mut outcomes: Vec<Option<DayOutcome>> = Vec::with_capacity(settings.days.len());
    let mut previous: Vec<Option<bool>> = Vec::with_capacity(settings.days.len());
    for &day in &settings.days {
        let day_dir = corpus_dir.join(day_dir_name(day));
        let before = already_done(&day_dir, &manifest_name, &settings, &digest)?;
        outcomes.push(
            (before == Some(true) && !settings.overwrite).then(|| DayOutcome {
                date: day.format("%Y-%m-%d").to_string(),
                status: DayStatus::Skipped,
                sealed: day_dir.join(MANIFEST_FILE).exists(),
                dir: day_dir.clone(),
                rows: 0,
                files: 0,
                bytes: 0,
            }),
        );
        previous.push(before);
    }
    let mut stats = FetchStats::default();
    progress.phase(Phase::Exporting, None);
    let mut i = 0;
    while i < settings.days.len() {
        if outcomes[i].is_some() {
            i += 1;
            continue;
        }
        // A day outside what DateTime holds ends the batch before it, so the days before it are kept.
        let mut end = i + 1;
        while end < settings.days.len()
            && outcomes[end].is_none()
            && end - i < MAX_BATCH_DAYS
            && day_bounds_s(settings.days[end]).is_ok()
        {
            end += 1;
        }
        cancel.check()?;
        let batch = &settings.days[i..end];
        let first = day_bounds_s(batch[0])?;
        let last = day_bounds_s(batch[batch.len() - 1])?;
        let request = range_request(&ctx, &settings, (first.0, last.1)).await?;
        let meta = |day: NaiveDate| DayManifest {
            date: day.format("%Y-%m-%d").to_string(),
            interval: settings.interval.spec().to_owned(),
            chain: settings.chain.clone(),
            created_at: String::new(),
            source: snapshot.clone(),
            buckets: settings.buckets,
            mint_filter: digest.clone(),
            files: Vec::new(),
            stats: FetchStats::default(),
        };
        // A batch's first day is written as its rows arrive; the others are parked and written after. Each day
        // is sealed before the next is written: a failure keeps the days before it.
        let mut sealed_days = Vec::with_capacity(batch.len());
        let target = DayTarget::prepare(&corpus_dir, batch[0], settings.buckets).await?;
        if batch.len() == 1 {
            let (files, day_stats) = fetch_day(&ctx, request, target.root()).await?;
            let sealed = target.seal(&ctx, &files, day_stats, meta(batch[0])).await?;
            sealed_days.push((files, day_stats, sealed));
        } else {
            let (mut parked, files, day_stats, work) =
                park_batch(&ctx, &corpus_dir, batch, request, target.root()).await?;
            let sealed = target.seal(&ctx, &files, day_stats, meta(batch[0])).await?;
            sealed_days.push((files, day_stats, sealed));
            for (k, &day) in batch.iter().enumerate().skip(1) {
                let target = DayTarget::prepare(&corpus_dir, day, settings.buckets).await?;
                let (files, day_stats);
                (files, day_stats, parked) = write_parked(&ctx, parked, k, target.root()).await?;
                let sealed = target.seal(&ctx, &files, day_stats, meta(day)).await?;
                sealed_days.push((files, day_stats, sealed));
            }
            drop(work);
        }
        for (k, (files, day_stats, sealed)) in sealed_days.into_iter().enumerate() {
            stats += day_stats;
            outcomes[i + k] = Some(outcome(
                batch[k],
                &previous[i + k],
                &corpus_dir,
                &files,
                sealed,
            ));
        }
        i = end;
    }
    let days = outcomes.into_iter().flatten().collect();
    progress.phase(Phase::Done, None);
    Ok(CorpusExportResult {
        corpus_dir,
        days,
        stats,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The sealed manifest of what a day (or a shard of it) wrote.
fn day_manifest(files: &[WrittenFile], stats: FetchStats, meta: DayManifest) -> Value {
    DayManifest {
        created_at: now_iso(),
        files: files.to_vec(),
        stats,
        ..meta
    }
    .to_json()
}

/// What one day's export reports.
fn outcome(
    day: NaiveDate,
    previous: &Option<bool>,
    corpus_dir: &Path,
    files: &[WrittenFile],
    sealed: bool,
) -> DayOutcome {
    DayOutcome {
        date: day.format("%Y-%m-%d").to_string(),
        status: if previous.is_some() {
            DayStatus::Redone
        } else {
            DayStatus::Exported
        },
        dir: corpus_dir.join(day_dir_name(day)),
        rows: files.iter().map(|f| f.rows).sum(),
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.bytes).sum(),
        sealed,
    }
}

/// Where a day's files are written before they are published: the day's own staging directory (one machine,
/// all buckets), or the work area of a shard inside the day directory.
enum DayTarget {
    Whole(Staging),
    Shard {
        day_dir: PathBuf,
        range: BucketRange,
        work: Staging,
        _lock: TargetLock,
    },
}

impl DayTarget {
    async fn prepare(corpus_dir: &Path, day: NaiveDate, range: BucketRange) -> Result<Self> {
        let corpus_dir = corpus_dir.to_owned();
        blocking(move || {
            let name = day_dir_name(day);
            if range.is_all() {
                return Ok(Self::Whole(Staging::begin(
                    Target::new(&corpus_dir, &name),
                    true,
                )?));
            }
            let day_dir = corpus_dir.join(&name);
            std::fs::create_dir_all(&day_dir)
                .map_err(|e| LakeError::io("cannot create directory", &day_dir, &e))?;
            let lock_path = day_dir.join(format!(".lock-{}", shard_manifest_name(range)));
            let lock = TargetLock::try_acquire(&lock_path)?.ok_or_else(|| {
                LakeError::new(
                    crate::error::ErrorCode::RunLocked,
                    format!(
                        "buckets {} of {} are being exported by another process",
                        range.label(),
                        day_dir.display()
                    ),
                )
            })?;
            // A staging directory that is never published: the shard's work area, swept like any staging
            // debris.
            let work = Staging::begin(
                Target::new(&day_dir, &format!("shard-{}", range.label())),
                true,
            )?;
            Ok(Self::Shard {
                day_dir,
                range,
                work,
                _lock: lock,
            })
        })
        .await
    }

    /// The directory the day's bucket files go to.
    fn root(&self) -> &Path {
        match self {
            Self::Whole(staging) => staging.dir(),
            Self::Shard { work, .. } => work.dir(),
        }
    }

    /// Writes the sealed manifest and publishes: the whole day in one rename; a shard's bucket directories one
    /// atomic swap each, then its own manifest (the shard that completes the set writes the day's). Returns
    /// whether the day now has its `manifest.json`.
    async fn seal(
        self,
        ctx: &DayContext,
        files: &[WrittenFile],
        stats: FetchStats,
        meta: DayManifest,
    ) -> Result<bool> {
        let manifest = day_manifest(files, stats, meta);
        let cancel = ctx.cancel.clone();
        blocking(move || match self {
            Self::Whole(staging) => {
                write_file(
                    &staging.dir().join(MANIFEST_FILE),
                    &manifest_bytes(&manifest),
                )?;
                crate::failpoint::hit("corpus.before_publish");
                cancel.check()?;
                staging.publish()?;
                Ok(true)
            }
            Self::Shard {
                day_dir,
                range,
                work,
                _lock,
            } => {
                publish_shard_buckets(&day_dir, work.dir(), range)?;
                drop(work);
                write_atomically(
                    &day_dir,
                    &shard_manifest_name(range),
                    &manifest_bytes(&manifest),
                )?;
                seal_day_from_shards(&day_dir)
            }
        })
        .await
    }
}

/// Reads a run of days with one query: the first day is written under `first_root` as its rows arrive, the
/// others are parked (in a work directory that is never published, swept like any staging debris).
async fn park_batch(
    ctx: &Arc<DayContext>,
    corpus_dir: &Path,
    batch: &[NaiveDate],
    request: FetchRequest,
    first_root: &Path,
) -> Result<(ParkedDays, Vec<WrittenFile>, FetchStats, Staging)> {
    let spans = batch
        .iter()
        .map(|&d| day_bounds_s(d).map(|(s, e)| (i64::from(s) * 1000, i64::from(e) * 1000)))
        .collect::<Result<Vec<_>>>()?;
    let name = format!(
        "batch-{}-{}",
        batch[0].format("%Y-%m-%d"),
        batch[batch.len() - 1].format("%Y-%m-%d")
    );
    let target = Target::new(corpus_dir, &name);
    let work = blocking(move || Staging::begin(target, true)).await?;
    let spill = work.dir().join(".rows.spill");
    let sink_ctx = ctx.clone();
    let first_root = first_root.to_owned();
    let (parked, first) = fetch_into(
        ctx.feed.clone(),
        Arc::new(request),
        ctx.concurrency,
        &ctx.cancel,
        move || {
            let first = DaySink::new(&sink_ctx, &first_root)?;
            ParkingSink::new(spans.clone(), first, &spill, sink_ctx.cancel.clone())
        },
    )
    .await?;
    Ok((parked, first.0, first.1, work))
}

/// Writes day `k` of a batch from its parked rows under `root`; hands the parked rows back for the next day.
async fn write_parked(
    ctx: &DayContext,
    mut parked: ParkedDays,
    k: usize,
    root: &Path,
) -> Result<(Vec<WrittenFile>, FetchStats, ParkedDays)> {
    let (root, part, cancel) = (root.to_owned(), ctx.part, ctx.cancel.clone());
    let (files, parked) = blocking(move || {
        let files = parked.write_day(k, &root, part, &root.join(SPILL_FILE), &cancel)?;
        Ok((files, parked))
    })
    .await?;
    ctx.progress.files_done(files.iter().map(|f| f.bytes).sum());
    Ok((files, parked.stats(k), parked))
}

/// Moves each bucket directory of the shard's work area into the day, one atomic swap each, and removes the
/// shard's bucket directories that the new export left empty.
fn publish_shard_buckets(day_dir: &Path, work_dir: &Path, range: BucketRange) -> Result<()> {
    for b in range.lo..=range.hi {
        let rel = format!("mint_bucket={}", bucket_name(b));
        let fresh = work_dir.join(&rel);
        if fresh.exists() {
            let staging = Staging::begin(Target::new(day_dir, &rel), true)?;
            std::fs::remove_dir(staging.dir())
                .and_then(|()| std::fs::rename(&fresh, staging.dir()))
                .map_err(|e| LakeError::io("cannot stage", &fresh, &e))?;
            staging.publish()?;
        } else {
            let stale = day_dir.join(&rel);
            if stale.exists() {
                std::fs::remove_dir_all(&stale)
                    .map_err(|e| LakeError::io("cannot remove", &stale, &e))?;
            }
        }
    }
    Ok(())
}

/// Writes `dir/name` through a temporary file and a rename, so a reader sees the old or the new file only.
fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_file(&tmp, content)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| LakeError::io("cannot publish", &path, &e))?;
    sync_dir(dir)
}

/// Writes the day's `manifest.json` when the shard manifests cover every bucket; returns whether it exists.
fn seal_day_from_shards(day_dir: &Path) -> Result<bool> {
    let lock = TargetLock::try_acquire(&day_dir.join(".lock-manifest"))?;
    if lock.is_none() {
        // Another shard is sealing this very day right now.
        return Ok(false);
    }
    let mut shards = Vec::new();
    for entry in
        std::fs::read_dir(day_dir).map_err(|e| LakeError::io("cannot list", day_dir, &e))?
    {
        let entry = entry.map_err(|e| LakeError::io("cannot list", day_dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("manifest.buckets-") && name.ends_with(".json") {
            let bytes = std::fs::read(entry.path())
                .map_err(|e| LakeError::io("cannot read", &entry.path(), &e))?;
            if let Some(m) = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| DayManifest::from_json(&v).ok())
            {
                shards.push(m);
            }
        }
    }
    match merge_shards(shards, &now_iso()) {
        Some(day) => {
            write_atomically(day_dir, MANIFEST_FILE, &manifest_bytes(&day.to_json()))?;
            Ok(true)
        }
        None => Ok(false),
    }
}
