//! The run-slice export: alerts → windows → bucket plan → fetch → coverage → bucket files → manifest → publish.
//!
//! Memory is bounded by the buckets in flight (`concurrency`), never by the size of the run: each bucket's
//! candles are fetched, filtered to the kept windows, written and dropped before its slot takes the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::alerts::{alerts_to_parquet, load_alerts, Alert, AlertsFormat};
use crate::bucket_stream::{for_each_bucket, BucketFeed, BucketSink};
use crate::cancel::CancelFlag;
use crate::candles::MintCandles;
use crate::clickhouse_source::{CandleSource, FetchedBucket};
use crate::corpus_source::CorpusSource;
use crate::coverage::{coverage_to_parquet, CoveragePolicy, CoverageRow, WindowCoverage};
use crate::error::{LakeError, Result};
use crate::fetch_plan::{plan_buckets, BucketRequest, TimeRange};
use crate::hashing_writer::{write_file, HashingWriter};
use crate::manifest::{
    manifest_bytes, now_iso, CoverageSummary, FetchStats, RunManifest, SourceSnapshot, ALERTS_PATH,
    COVERAGE_PATH, MANIFEST_FILE,
};
use crate::mint_bucket::bucket_name;
use crate::part_writer::{PartSettings, PartWriter, WrittenFile};
use crate::progress::{Phase, Progress, ProgressCallback};
use crate::publish::{Staging, Target};
use crate::run_config::{RunSettings, SourceChoice};
use crate::window::{compute_window_slice, WindowSlice};
use crate::worker::blocking;

/// What the caller can do to a running export.
#[derive(Clone, Default)]
pub struct ExportHooks {
    /// Set to stop the export; it then fails with `CANCELLED` and removes its staging directory.
    pub cancel: CancelFlag,
    /// Receives throttled progress events.
    pub progress: Option<ProgressCallback>,
}

/// What a finished run-slice export reports.
#[derive(Debug, Clone)]
pub struct RunExportResult {
    /// The sealed manifest.
    pub manifest: Value,
    /// The published run directory.
    pub run_dir: PathBuf,
    /// `<run_dir>/manifest.json`.
    pub manifest_path: PathBuf,
    /// `<run_dir>/outputs/coverage.parquet`.
    pub coverage_path: PathBuf,
    /// Candle rows in the slice files.
    pub total_rows: u64,
    /// Slice files written.
    pub total_files: u64,
    /// Bytes of the slice files.
    pub total_bytes: u64,
    /// Fetch counters.
    pub stats: FetchStats,
    /// Alerts read.
    pub alerts: u64,
    /// Alerts kept (all unless strict).
    pub kept_events: u64,
    /// Alerts dropped by strict mode.
    pub dropped_events: u64,
    /// Wall time of the export in milliseconds.
    pub duration_ms: u64,
}

/// Alerts and their windows, shared read-only by the bucket workers.
struct AlertIndex {
    alerts: Vec<Alert>,
    windows: Vec<WindowSlice>,
    by_mint: BTreeMap<String, Vec<usize>>,
}

impl AlertIndex {
    fn build(alerts: Vec<Alert>, settings: &RunSettings) -> Result<Self> {
        let windows = alerts
            .iter()
            .map(|a| {
                compute_window_slice(
                    a.ts_ms,
                    settings.interval.seconds(),
                    settings.window.pre,
                    settings.window.post,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut by_mint: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, a) in alerts.iter().enumerate() {
            by_mint.entry(a.mint.clone()).or_default().push(i);
        }
        Ok(Self {
            alerts,
            windows,
            by_mint,
        })
    }

    fn plan(&self) -> Vec<BucketRequest> {
        let per_mint: BTreeMap<String, Vec<TimeRange>> = self
            .by_mint
            .iter()
            .map(|(mint, idxs)| {
                let ranges = idxs
                    .iter()
                    .map(|&i| (self.windows[i].start_ms, self.windows[i].end_ms))
                    .collect();
                (mint.clone(), ranges)
            })
            .collect();
        plan_buckets(per_mint)
    }
}

/// Opens the run's candle source: a ClickHouse server or the lake's own corpus.
async fn open_feed(
    settings: &RunSettings,
    plan: &[BucketRequest],
) -> Result<(BucketFeed, SourceSnapshot)> {
    match &settings.source {
        SourceChoice::ClickHouse(cfg) => {
            let (source, snapshot) =
                CandleSource::connect(cfg, &settings.chain, settings.interval.seconds()).await?;
            Ok((BucketFeed::ClickHouse(Box::new(source)), snapshot))
        }
        SourceChoice::Corpus => {
            let (lake, interval, chain, plan) = (
                settings.lake_root.clone(),
                settings.interval.spec().to_owned(),
                settings.chain.clone(),
                plan.to_vec(),
            );
            let source =
                blocking(move || CorpusSource::open(&lake, &interval, &chain, &plan)).await?;
            let snapshot = source.snapshot();
            Ok((BucketFeed::Corpus(Arc::new(source)), snapshot))
        }
    }
}

/// One bucket's contribution to the run.
struct BucketOutput {
    files: Vec<WrittenFile>,
    coverage: Vec<(usize, WindowCoverage)>,
    rows_fetched: u64,
    duplicates_dropped: u64,
}

/// Everything a bucket worker needs besides its candles.
struct BucketContext {
    index: AlertIndex,
    policy: CoveragePolicy,
    part: PartSettings,
    slice_root: PathBuf,
    slice_dir: String,
    cancel: CancelFlag,
}

/// Writes one stream's buckets: coverage of every alert of each mint as it arrives, then the kept windows'
/// candles into the bucket's files.
struct RunSink {
    ctx: Arc<BucketContext>,
    progress: Progress,
    open: Option<(PartWriter, BucketOutput)>,
}

impl BucketSink for RunSink {
    type Output = BucketOutput;

    fn begin(&mut self, bucket: u8) -> Result<()> {
        self.ctx.cancel.check()?;
        crate::failpoint::hit("export.write_bucket");
        let name = format!("mint_bucket={}", bucket_name(bucket));
        let writer = PartWriter::new(
            &self.ctx.slice_root.join(&name),
            &format!("{}/{name}", self.ctx.slice_dir),
            self.ctx.part,
        )?;
        let output = BucketOutput {
            files: Vec::new(),
            coverage: Vec::new(),
            rows_fetched: 0,
            duplicates_dropped: 0,
        };
        self.open = Some((writer, output));
        Ok(())
    }

    fn add(&mut self, piece: FetchedBucket) -> Result<()> {
        self.ctx.cancel.check()?;
        let (writer, output) = self
            .open
            .as_mut()
            .ok_or_else(|| LakeError::internal("mints arrived outside a bucket"))?;
        output.rows_fetched += piece.rows_fetched;
        output.duplicates_dropped += piece.duplicates_dropped;
        for candles in &piece.mints {
            let Some(alert_idxs) = self.ctx.index.by_mint.get(&candles.mint) else {
                continue;
            };
            let mut keep: Vec<std::ops::Range<usize>> = Vec::new();
            for &i in alert_idxs {
                let window = &self.ctx.index.windows[i];
                let cov = WindowCoverage::count(candles, window);
                if cov.kept(&self.ctx.policy) {
                    keep.push(candles.range(window.start_ms, window.end_ms));
                }
                output.coverage.push((i, cov));
            }
            writer.write(&candles.select(&merge_index_ranges(keep)))?;
        }
        Ok(())
    }

    fn end(&mut self) -> Result<BucketOutput> {
        let (writer, mut output) = self
            .open
            .take()
            .ok_or_else(|| LakeError::internal("a bucket ended twice"))?;
        output.files = writer.finish()?;
        self.progress.bucket_done(
            output.files.iter().map(|f| f.rows).sum(),
            output.files.iter().map(|f| f.bytes).sum(),
        );
        Ok(output)
    }
}

fn merge_index_ranges(mut ranges: Vec<std::ops::Range<usize>>) -> Vec<std::ops::Range<usize>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Runs a whole run-slice export and publishes the sealed run.
pub async fn export_run_slices(
    settings: RunSettings,
    hooks: ExportHooks,
) -> Result<RunExportResult> {
    let started = Instant::now();
    let cancel = hooks.cancel.clone();
    let progress = Progress::new(hooks.progress.clone());
    progress.phase(Phase::LoadingAlerts, None);

    let target = Target::new(&settings.runs_dir(), &format!("run_id={}", settings.run_id));
    let overwrite = settings.overwrite;
    let staging = blocking(move || Staging::begin(target, overwrite)).await?;

    crate::failpoint::hit("export.staging_created");
    let alerts_path = settings.alerts_path.clone();
    let alerts = blocking(move || load_alerts(&alerts_path)).await?;
    cancel.check()?;
    let index = AlertIndex::build(alerts, &settings)?;
    let plan = index.plan();

    let (feed, snapshot) = open_feed(&settings, &plan).await?;

    let slice_root = staging.dir().join(settings.slice_dir());
    std::fs::create_dir_all(&slice_root)
        .map_err(|e| LakeError::io("cannot create directory", &slice_root, &e))?;
    let ctx = Arc::new(BucketContext {
        index,
        policy: CoveragePolicy {
            window: settings.window,
            strict: settings.strict,
            min_required_pre: settings.min_required_pre,
            target_total: settings.target_total,
        },
        part: PartSettings {
            compression: settings.compression,
            target_file_bytes: settings.target_file_bytes,
            interval_s: settings.interval.seconds(),
        },
        slice_root,
        slice_dir: settings.slice_dir(),
        cancel: cancel.clone(),
    });

    progress.phase(Phase::Exporting, Some(plan.len() as u32));
    let make_sink = {
        let (ctx, progress) = (ctx.clone(), progress.clone());
        move || RunSink {
            ctx: ctx.clone(),
            progress: progress.clone(),
            open: None,
        }
    };
    let outputs = for_each_bucket(
        Arc::new(feed),
        plan,
        settings.concurrency,
        &cancel,
        make_sink,
    )
    .await?;
    cancel.check()?;

    progress.phase(Phase::Sealing, None);
    let ctx = Arc::try_unwrap(ctx)
        .map_err(|_| LakeError::internal("bucket workers still hold the alert index"))?;
    let run_id = settings.run_id.clone();
    let settings_for_seal = settings.clone();
    let result =
        blocking(move || seal_run(staging, settings_for_seal, ctx, outputs, snapshot, run_id))
            .await?;
    progress.phase(Phase::Done, None);
    Ok(RunExportResult {
        duration_ms: started.elapsed().as_millis() as u64,
        ..result
    })
}

/// Writes the stored alerts, coverage and manifest into staging, then publishes.
fn seal_run(
    staging: Staging,
    settings: RunSettings,
    ctx: BucketContext,
    outputs: Vec<BucketOutput>,
    source: SourceSnapshot,
    run_id: String,
) -> Result<RunExportResult> {
    ctx.cancel.check()?;
    let index = &ctx.index;
    let mut per_alert: Vec<Option<WindowCoverage>> = vec![None; index.alerts.len()];
    let mut slice_files = Vec::new();
    let mut stats = FetchStats::default();
    for out in outputs {
        for (i, cov) in out.coverage {
            per_alert[i] = Some(cov);
        }
        slice_files.extend(out.files);
        stats.rows_fetched += out.rows_fetched;
        stats.duplicates_dropped += out.duplicates_dropped;
    }
    // Alerts whose windows lie wholly outside what the source can hold were never fetched: zero candles.
    let empty = MintCandles::default();
    let rows: Vec<CoverageRow> = index
        .alerts
        .iter()
        .zip(&index.windows)
        .zip(per_alert)
        .map(|((alert, window), cov)| {
            let cov = cov.unwrap_or_else(|| WindowCoverage::count(&empty, window));
            CoverageRow::new(alert, window, cov, &ctx.policy)
        })
        .collect();
    let kept = rows.iter().filter(|r| r.kept).count() as u64;

    let dir = staging.dir().to_owned();
    let alerts_file = store_alerts(&dir, &settings, &index.alerts)?;
    std::fs::create_dir(dir.join("outputs"))
        .map_err(|e| LakeError::io("cannot create directory", &dir, &e))?;
    let coverage_bytes = coverage_to_parquet(&rows, settings.compression)?;
    let digest = write_file(&dir.join(COVERAGE_PATH), &coverage_bytes)?;
    let coverage_file = WrittenFile {
        rel_path: COVERAGE_PATH.to_owned(),
        rows: rows.len() as u64,
        bytes: digest.bytes,
        sha256: digest.sha256,
    };
    let total_rows = slice_files.iter().map(|f| f.rows).sum();
    let total_bytes = slice_files.iter().map(|f| f.bytes).sum();
    let total_files = slice_files.len() as u64;
    let manifest = RunManifest {
        run_id,
        created_at: now_iso(),
        alerts_file,
        source,
        interval: settings.interval.spec().to_owned(),
        window: settings.window_spec.clone(),
        chain: settings.chain.clone(),
        slice_dir: settings.slice_dir(),
        slice_files,
        coverage_file,
        coverage: CoverageSummary {
            strict: settings.strict,
            min_required_pre: settings.min_required_pre,
            target_total: settings.target_total,
            kept_events: kept,
            dropped_events: rows.len() as u64 - kept,
        },
        stats,
    }
    .to_json();
    write_file(&dir.join(MANIFEST_FILE), &manifest_bytes(&manifest))?;
    crate::failpoint::hit("export.before_publish");
    ctx.cancel.check()?;
    let run_dir = staging.publish()?;
    Ok(RunExportResult {
        manifest,
        manifest_path: run_dir.join(MANIFEST_FILE),
        coverage_path: run_dir.join(COVERAGE_PATH),
        run_dir,
        total_rows,
        total_files,
        total_bytes,
        stats,
        alerts: rows.len() as u64,
        kept_events: kept,
        dropped_events: rows.len() as u64 - kept,
        duration_ms: 0,
    })
}

/// `inputs/alerts.parquet`: the Parquet input byte for byte, or the CSV input converted deterministically.
fn store_alerts(dir: &Path, settings: &RunSettings, alerts: &[Alert]) -> Result<WrittenFile> {
    let inputs = dir.join("inputs");
    std::fs::create_dir(&inputs)
        .map_err(|e| LakeError::io("cannot create directory", &inputs, &e))?;
    let path = dir.join(ALERTS_PATH);
    let digest = match AlertsFormat::of(&settings.alerts_path)? {
        AlertsFormat::Csv => write_file(&path, &alerts_to_parquet(alerts, settings.compression)?)?,
        AlertsFormat::Parquet => {
            let mut src = std::fs::File::open(&settings.alerts_path)
                .map_err(|e| LakeError::io("cannot read", &settings.alerts_path, &e))?;
            let mut dst = HashingWriter::create(&path)?;
            std::io::copy(&mut src, &mut dst)
                .map_err(|e| LakeError::io("cannot copy", &path, &e))?;
            dst.finish()?
        }
    };
    Ok(WrittenFile {
        rel_path: ALERTS_PATH.to_owned(),
        rows: alerts.len() as u64,
        bytes: digest.bytes,
        sha256: digest.sha256,
    })
}
