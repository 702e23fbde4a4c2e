//! The corpus export: every candle of one interval and chain for each UTC day of a range, one sealed manifest
//! per day, each day published on its own.
//!
//! Per day: discover the day's mints (one query), bucket them here, then fetch bucket by bucket through the
//! table's primary key. A sealed day that verifies is skipped on a re-run; one that does not is redone. A
//! shard (`buckets` = a sub-range) publishes each of its bucket directories atomically, then its own sealed
//! manifest; the shard that completes the set of shards writes the day's `manifest.json` from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bucket_range::BucketRange;
use crate::bucket_stream::{for_each_bucket, BucketFeed, BucketSink};
use crate::cancel::CancelFlag;
use crate::clickhouse_source::day_mints::mints_in_range;
use crate::clickhouse_source::{CandleSource, FetchedBucket};
use crate::corpus_config::{day_dir_name, CorpusSettings};
use crate::corpus_manifest::{merge_shards, shard_manifest_name, DayManifest};
use crate::error::{LakeError, Result};
use crate::export_run::ExportHooks;
use crate::fetch_plan::{plan_buckets, BucketRequest};
use crate::hashing_writer::write_file;
use crate::manifest::{manifest_bytes, now_iso, FetchStats, MANIFEST_FILE};
use crate::mint_bucket::bucket_name;
use crate::part_writer::{PartSettings, PartWriter, WrittenFile};
use crate::progress::{Phase, Progress};
use crate::publish::{sync_dir, Staging, Target, TargetLock};
use crate::verify::verify_manifest;
use crate::worker::blocking;

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

/// Shared by the bucket workers of one export.
struct DayContext {
    feed: Arc<BucketFeed>,
    part: PartSettings,
    cancel: CancelFlag,
    progress: Progress,
}

/// Where a day's buckets go: into the whole day's staging directory, or (a shard) each into its own staging
/// directory inside the shared day directory, published as soon as it is complete.
#[derive(Clone)]
enum DayTarget {
    Whole(PathBuf),
    Shard(PathBuf),
}

/// Writes one stream's buckets of a day.
struct DaySink {
    ctx: Arc<DayContext>,
    target: DayTarget,
    open: Option<(PartWriter, FetchStats, Option<Staging>)>,
}

impl BucketSink for DaySink {
    type Output = (Vec<WrittenFile>, FetchStats);

    fn begin(&mut self, bucket: u8) -> Result<()> {
        self.ctx.cancel.check()?;
        crate::failpoint::hit("corpus.write_bucket");
        let rel = format!("mint_bucket={}", bucket_name(bucket));
        let (dir, staging) = match &self.target {
            DayTarget::Whole(staging_dir) => (staging_dir.join(&rel), None),
            DayTarget::Shard(day_dir) => {
                let staging = Staging::begin(Target::new(day_dir, &rel), true)?;
                (staging.dir().to_owned(), Some(staging))
            }
        };
        let writer = PartWriter::new(&dir, &rel, self.ctx.part)?;
        self.open = Some((writer, FetchStats::default(), staging));
        Ok(())
    }

    fn add(&mut self, piece: FetchedBucket) -> Result<()> {
        self.ctx.cancel.check()?;
        let (writer, stats, _) = self
            .open
            .as_mut()
            .ok_or_else(|| LakeError::internal("mints arrived outside a bucket"))?;
        stats.rows_fetched += piece.rows_fetched;
        stats.duplicates_dropped += piece.duplicates_dropped;
        for candles in &piece.mints {
            writer.write(candles)?;
        }
        Ok(())
    }

    fn end(&mut self) -> Result<Self::Output> {
        let (writer, stats, staging) = self
            .open
            .take()
            .ok_or_else(|| LakeError::internal("a bucket ended twice"))?;
        let files = writer.finish()?;
        if let Some(staging) = staging {
            staging.publish()?;
        }
        self.ctx.progress.bucket_done(
            files.iter().map(|f| f.rows).sum(),
            files.iter().map(|f| f.bytes).sum(),
        );
        Ok((files, stats))
    }
}

/// The sink factory for one day.
fn day_sinks(
    ctx: &Arc<DayContext>,
    target: DayTarget,
) -> impl Fn() -> DaySink + Clone + Send + 'static {
    let ctx = ctx.clone();
    move || DaySink {
        ctx: ctx.clone(),
        target: target.clone(),
        open: None,
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
    let conn = source.conn.clone();
    let ctx = Arc::new(DayContext {
        feed: Arc::new(BucketFeed::ClickHouse(Box::new(source))),
        part: PartSettings {
            compression: settings.compression,
            target_file_bytes: settings.target_file_bytes,
            interval_s: settings.interval.seconds(),
        },
        cancel: cancel.clone(),
        progress: progress.clone(),
    });
    let digest = filter_digest(&settings.mint_filter);
    let mut days = Vec::new();
    let mut stats = FetchStats::default();
    let mut planned_buckets = 0u32;
    progress.phase(Phase::Exporting, Some(0));
    for &day in &settings.days {
        cancel.check()?;
        let name = day_dir_name(day);
        let day_dir = corpus_dir.join(&name);
        let manifest_name = if settings.buckets.is_all() {
            MANIFEST_FILE.to_owned()
        } else {
            shard_manifest_name(settings.buckets)
        };
        let previous = already_done(&day_dir, &manifest_name, &settings, &digest)?;
        if previous == Some(true) && !settings.overwrite {
            days.push(DayOutcome {
                date: day.format("%Y-%m-%d").to_string(),
                status: DayStatus::Skipped,
                sealed: day_dir.join(MANIFEST_FILE).exists(),
                dir: day_dir,
                rows: 0,
                files: 0,
                bytes: 0,
            });
            continue;
        }
        let (start_s, end_s) = day_bounds_s(day)?;
        let mints = mints_in_range(
            &conn,
            &settings.chain,
            settings.interval.seconds(),
            start_s,
            end_s,
            settings.mint_filter.as_deref(),
        )
        .await?;
        let range = (i64::from(start_s) * 1000, i64::from(end_s) * 1000);
        let plan: Vec<BucketRequest> =
            plan_buckets(mints.into_iter().map(|m| (m, vec![range])).collect())
                .into_iter()
                .filter(|b| settings.buckets.contains(b.bucket))
                .collect();
        planned_buckets += plan.len() as u32;
        progress.phase(Phase::Exporting, Some(planned_buckets));
        let meta = DayManifest {
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
        let (files, day_stats, sealed) = if settings.buckets.is_all() {
            export_whole_day(&ctx, &corpus_dir, &name, plan, meta, settings.concurrency).await?
        } else {
            export_shard(
                &ctx,
                &day_dir,
                plan,
                meta,
                settings.buckets,
                settings.concurrency,
            )
            .await?
        };
        stats.rows_fetched += day_stats.rows_fetched;
        stats.duplicates_dropped += day_stats.duplicates_dropped;
        days.push(DayOutcome {
            date: day.format("%Y-%m-%d").to_string(),
            status: if previous.is_some() {
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
    progress.phase(Phase::Done, None);
    Ok(CorpusExportResult {
        corpus_dir,
        days,
        stats,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The files, counters and sealed manifest of what the bucket workers wrote for a day (or a shard of it).
fn day_manifest(
    parts: Vec<(Vec<WrittenFile>, FetchStats)>,
    meta: DayManifest,
) -> (Vec<WrittenFile>, FetchStats, Value) {
    let stats = parts
        .iter()
        .fold(FetchStats::default(), |a, (_, s)| FetchStats {
            rows_fetched: a.rows_fetched + s.rows_fetched,
            duplicates_dropped: a.duplicates_dropped + s.duplicates_dropped,
        });
    let files: Vec<WrittenFile> = parts.into_iter().flat_map(|(f, _)| f).collect();
    let manifest = DayManifest {
        created_at: now_iso(),
        files: files.clone(),
        stats,
        ..meta
    }
    .to_json();
    (files, stats, manifest)
}

/// One machine, all buckets: the whole day is staged beside its final place and published in one rename.
async fn export_whole_day(
    ctx: &Arc<DayContext>,
    corpus_dir: &Path,
    name: &str,
    plan: Vec<BucketRequest>,
    meta: DayManifest,
    concurrency: usize,
) -> Result<(Vec<WrittenFile>, FetchStats, bool)> {
    let target = Target::new(corpus_dir, name);
    let staging = blocking(move || Staging::begin(target, true)).await?;
    let sinks = day_sinks(ctx, DayTarget::Whole(staging.dir().to_owned()));
    let parts = for_each_bucket(ctx.feed.clone(), plan, concurrency, &ctx.cancel, sinks).await?;
    let (files, stats, manifest) = day_manifest(parts, meta);
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

/// One shard: each bucket directory is published atomically into the shared day directory, then the shard's
/// sealed manifest; the shard that completes the set writes the day's `manifest.json`.
async fn export_shard(
    ctx: &Arc<DayContext>,
    day_dir: &Path,
    plan: Vec<BucketRequest>,
    meta: DayManifest,
    range: BucketRange,
    concurrency: usize,
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
    // Bucket directories of this range that the new plan does not fill are stale: remove them.
    let wanted: Vec<u8> = plan.iter().map(|b| b.bucket).collect();
    for b in (range.lo..=range.hi).filter(|b| !wanted.contains(b)) {
        let stale = day_dir.join(format!("mint_bucket={}", bucket_name(b)));
        if stale.exists() {
            std::fs::remove_dir_all(&stale)
                .map_err(|e| LakeError::io("cannot remove", &stale, &e))?;
        }
    }
    let sinks = day_sinks(ctx, DayTarget::Shard(day_dir.to_owned()));
    let parts = for_each_bucket(ctx.feed.clone(), plan, concurrency, &ctx.cancel, sinks).await?;
    let (files, stats, manifest) = day_manifest(parts, meta);
    let day = day_dir.to_owned();
    let sealed = blocking(move || {
        write_atomically(&day, &shard_name, &manifest_bytes(&manifest))?;
        seal_day_from_shards(&day)
    })
    .await?;
    Ok((files, stats, sealed))
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
