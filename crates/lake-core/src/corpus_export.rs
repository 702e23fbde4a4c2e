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
        let entries =
            std::fs::read_dir(root).map_err(|e| LakeError::io("cannot list", root, &e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| LakeError::io("cannot list", root, &e))?
                .path();
            std::fs::remove_dir_all(&path)
                .or_else(|_| std::fs::remove_file(&path))
                .map_err(|e| LakeError::io("cannot clear", &path, &e))?;
        }
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
        let mut parked = if batch.len() > 1 {
            Some(park_batch(&ctx, &corpus_dir, batch, request.clone()).await?)
        } else {
            None
        };
        for (k, &day) in batch.iter().enumerate() {
            let name = day_dir_name(day);
            let day_dir = corpus_dir.join(&name);
            let content = match &mut parked {
                Some((parked, _)) => DayContent::Parked(parked, k),
                None => DayContent::Fetch(request.clone()),
            };
            let (files, day_stats, sealed) = if settings.buckets.is_all() {
                export_whole_day(&ctx, &corpus_dir, &name, content, meta(day)).await?
            } else {
                export_shard(&ctx, &day_dir, content, meta(day), settings.buckets).await?
            };
            stats += day_stats;
            outcomes[i + k] = Some(DayOutcome {
                date: day.format("%Y-%m-%d").to_string(),
                status: if previous[i + k].is_some() {
                    DayStatus::Redone
                } else {
                    DayStatus::Exported
                },
                dir: day_dir,
                rows: files.iter().map(|f| f.rows).sum(),
                files: files.len() as u64,
                bytes: files.iter().map(|f| f.bytes).sum(),
                sealed,
            });
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

/// Where a day's candles come from: its own query, or the rows a batch parked for it.
enum DayContent<'a> {
    Fetch(FetchRequest),
    Parked(&'a mut Option<ParkedDays>, usize),
}

/// Reads a run of days with one query, parking each day's rows; the spill lives in a work directory that is
/// never published (swept like any staging debris if the process dies).
async fn park_batch(
    ctx: &Arc<DayContext>,
    corpus_dir: &Path,
    batch: &[NaiveDate],
    request: FetchRequest,
) -> Result<(Option<ParkedDays>, Staging)> {
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
    let (buckets, cancel, progress) = (ctx.buckets, ctx.cancel.clone(), ctx.progress.clone());
    let parked = fetch_into(
        ctx.feed.clone(),
        Arc::new(request),
        ctx.concurrency,
        &ctx.cancel,
        move || {
            ParkingSink::new(
                spans.clone(),
                buckets,
                &spill,
                cancel.clone(),
                progress.clone(),
            )
        },
    )
    .await?;
    Ok((Some(parked), work))
}

/// Fills `root` with a day's bucket files, from its own query or from the rows its batch parked.
async fn fill_day(
    ctx: &Arc<DayContext>,
    content: DayContent<'_>,
    root: &Path,
) -> Result<(Vec<WrittenFile>, FetchStats)> {
    match content {
        DayContent::Fetch(request) => fetch_day(ctx, request, root).await,
        DayContent::Parked(slot, d) => {
            let mut parked = slot
                .take()
                .ok_or_else(|| LakeError::internal("the parked rows of a batch are gone"))?;
            let (root, part, cancel) = (root.to_owned(), ctx.part, ctx.cancel.clone());
            let (files, parked) = blocking(move || {
                let files = parked.write_day(d, &root, part, &root.join(SPILL_FILE), &cancel)?;
                Ok((files, parked))
            })
            .await?;
            let stats = parked.stats(d);
            *slot = Some(parked);
            ctx.progress.files_done(files.iter().map(|f| f.bytes).sum());
            Ok((files, stats))
        }
    }
}

/// One machine, all buckets: the whole day is staged beside its final place and published in one rename.
async fn export_whole_day(
    ctx: &Arc<DayContext>,
    corpus_dir: &Path,
    name: &str,
    content: DayContent<'_>,
    meta: DayManifest,
) -> Result<(Vec<WrittenFile>, FetchStats, bool)> {
    let target = Target::new(corpus_dir, name);
    let staging = blocking(move || Staging::begin(target, true)).await?;
    let (files, stats) = fill_day(ctx, content, staging.dir()).await?;
    let manifest = day_manifest(&files, stats, meta);
    let cancel = ctx.cancel.clone();
    blocking(move || {
        write_file(
            &staging.dir().join(MANIFEST_FILE),
            &manifest_bytes(&manifest),
        )?;
        crate::failpoint::hit("corpus.before_publish");
        cancel.check()?;
        staging.publish()
    })
    .await?;
    Ok((files, stats, true))
}

/// One shard: its buckets are written in a work directory inside the day, then each bucket directory is
/// published atomically into the day, then the shard's sealed manifest; the shard that completes the set
/// writes the day's `manifest.json`.
async fn export_shard(
    ctx: &Arc<DayContext>,
    day_dir: &Path,
    content: DayContent<'_>,
    meta: DayManifest,
    range: BucketRange,
) -> Result<(Vec<WrittenFile>, FetchStats, bool)> {
    std::fs::create_dir_all(day_dir)
        .map_err(|e| LakeError::io("cannot create directory", day_dir, &e))?;
    let shard_name = shard_manifest_name(range);
    let lock_path = day_dir.join(format!(".lock-{shard_name}"));
    let _lock = TargetLock::try_acquire(&lock_path)?.ok_or_else(|| {
        LakeError::new(
            crate::error::ErrorCode::RunLocked,
            format!(
                "buckets {} of {} are being exported by another process",
                range.label(),
                day_dir.display()
            ),
        )
    })?;
    // A staging directory that is never published: the shard's work area, swept like any staging debris.
    let work_target = Target::new(day_dir, &format!("shard-{}", range.label()));
    let work = blocking(move || Staging::begin(work_target, true)).await?;
    let (files, stats) = fill_day(ctx, content, work.dir()).await?;
    let day = day_dir.to_owned();
    let work_dir = work.dir().to_owned();
    let manifest = day_manifest(&files, stats, meta);
    let sealed = blocking(move || {
        publish_shard_buckets(&day, &work_dir, range)?;
        drop(work);
        write_atomically(&day, &shard_name, &manifest_bytes(&manifest))?;
        seal_day_from_shards(&day)
    })
    .await?;
    Ok((files, stats, sealed))
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
