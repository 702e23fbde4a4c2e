//! The run-slice export: alerts → windows → plan → fetch → coverage and bucket files → manifest → publish.
//!
//! Memory is flat in the size of the run: mints stream from the source to one sink that counts each alert's
//! coverage, keeps the candles of the kept windows and hands them to the bucket writer, whose open buckets
//! hold one page per column each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::alerts::{alerts_to_parquet, load_alerts, Alert, AlertsFormat};
use crate::bucket_writer::{PartSettings, WrittenFile};
use crate::cancel::CancelFlag;
use crate::candle_feed::{fetch_into, CandleFeed, FetchRequest, MintSink};
use crate::candles::MintCandles;
use crate::clickhouse_source::{CandleSource, FetchedMint};
use crate::corpus_source::CorpusSource;
use crate::coverage::{coverage_to_parquet, CoveragePolicy, CoverageRow, WindowCoverage};
use crate::error::{LakeError, Result};
use crate::fetch_plan::{plan_mints, MintRanges, TimeRange};
use crate::hashing_writer::{write_file, HashingWriter};
use crate::manifest::{
    manifest_bytes, now_iso, CoverageSummary, FetchStats, RunManifest, SourceSnapshot, ALERTS_PATH,
    COVERAGE_PATH, MANIFEST_FILE,
};
use crate::mint_bucket::mint_bucket_index;
use crate::progress::{Phase, Progress, ProgressCallback};
use crate::publish::{Staging, Target};
use crate::run_config::{RunSettings, SourceChoice};
use crate::window::{compute_window_slice, WindowSlice};
use crate::worker::blocking;
use crate::writer_pool::WriterPool;

/// Name of the spill file inside an export's staging directory.
pub const SPILL_FILE: &str = ".pages.spill";

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

/// Alerts and their windows, shared read-only by the sink.
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

    fn plan(&self) -> Vec<MintRanges> {
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
        plan_mints(per_mint)
    }
}

/// Opens the run's candle source: a ClickHouse server or the lake's own corpus.
async fn open_feed(
    settings: &RunSettings,
    plan: &[MintRanges],
) -> Result<(CandleFeed, SourceSnapshot)> {
    match &settings.source {
        SourceChoice::ClickHouse(cfg) => {
            let (source, snapshot) =
                CandleSource::connect(cfg, &settings.chain, settings.interval.seconds()).await?;
            Ok((CandleFeed::ClickHouse(Box::new(source)), snapshot))
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
            Ok((CandleFeed::Corpus(Arc::new(source)), snapshot))
        }
    }
}

/// What the sink made of the run's candles.
struct RunOutput {
    files: Vec<WrittenFile>,
    coverage: Vec<(usize, WindowCoverage)>,
    stats: FetchStats,
}

/// Everything the sink needs besides its candles.
struct RunContext {
    index: AlertIndex,
    policy: CoveragePolicy,
    part: PartSettings,
    staging_dir: PathBuf,
    slice_dir: String,
    cancel: CancelFlag,
    progress: Progress,
}

/// Counts each alert's coverage as its mint arrives, then writes the kept windows' candles.
struct RunSink {
    ctx: Arc<RunContext>,
    writer: WriterPool,
    coverage: Vec<(usize, WindowCoverage)>,
    stats: FetchStats,
}

impl RunSink {
    /// A sink over an empty slice directory (a retried fetch starts from nothing).
    fn new(ctx: Arc<RunContext>) -> Result<Self> {
        let root = ctx.staging_dir.join(&ctx.slice_dir);
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(|e| LakeError::io("cannot clear", &root, &e))?;
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| LakeError::io("cannot create directory", &root, &e))?;
        let writer = WriterPool::new(
            &root,
            &ctx.slice_dir,
            ctx.part,
            &ctx.staging_dir.join(SPILL_FILE),
        )?;
        Ok(Self {
            ctx,
            writer,
            coverage: Vec::new(),
            stats: FetchStats::default(),
        })
    }
}

impl MintSink for RunSink {
    type Output = RunOutput;

    fn add(&mut self, m: FetchedMint) -> Result<()> {
        self.ctx.cancel.check()?;
        crate::failpoint::hit("export.write_mint");
        self.stats += FetchStats {
            rows_fetched: m.rows_fetched,
            duplicates_dropped: m.duplicates_dropped,
        };
        let candles = &m.candles;
        let Some(alert_idxs) = self.ctx.index.by_mint.get(&candles.mint) else {
            return Ok(());
        };
        let mut keep: Vec<std::ops::Range<usize>> = Vec::new();
        for &i in alert_idxs {
            let window = &self.ctx.index.windows[i];
            let cov = WindowCoverage::count(candles, window);
            if cov.kept(&self.ctx.policy) {
                keep.push(candles.range(window.start_ms, window.end_ms));
            }
            self.coverage.push((i, cov));
        }
        let keep = merge_index_ranges(keep);
        let bucket = mint_bucket_index(&candles.mint);
        // Usually every fetched candle lies in a kept window (the fetch reads only the windows): no copy then.
        let whole = keep.len() == 1 && keep[0] == (0..candles.len());
        let kept = if whole {
            m.candles
        } else {
            candles.select(&keep)
        };
        self.ctx.progress.mint_done(kept.len() as u64);
        self.writer.write(bucket, kept)
    }

    fn finish(self) -> Result<RunOutput> {
        self.ctx.cancel.check()?;
        self.ctx.progress.phase(Phase::Finishing, None);
        let files = self.writer.finish()?;
        self.ctx
            .progress
            .files_done(files.iter().map(|f| f.bytes).sum());
        Ok(RunOutput {
            files,
            coverage: self.coverage,
            stats: self.stats,
        })
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

    let ctx = Arc::new(RunContext {
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
        staging_dir: staging.dir().to_owned(),
        slice_dir: settings.slice_dir(),
        cancel: cancel.clone(),
        progress: progress.clone(),
    });

    progress.phase(Phase::Exporting, Some(plan.len() as u64));
    let sink_ctx = ctx.clone();
    let output = fetch_into(
        Arc::new(feed),
        Arc::new(FetchRequest::Mints(plan)),
        settings.concurrency,
        &cancel,
        move || RunSink::new(sink_ctx.clone()),
    )
    .await?;
    cancel.check()?;

    progress.phase(Phase::Sealing, None);
    let ctx = Arc::try_unwrap(ctx)
        .map_err(|_| LakeError::internal("the sink still holds the alert index"))?;
    let run_id = settings.run_id.clone();
    let settings_for_seal = settings.clone();
    let result =
        blocking(move || seal_run(staging, settings_for_seal, ctx, output, snapshot, run_id))
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
    ctx: RunContext,
    output: RunOutput,
    source: SourceSnapshot,
    run_id: String,
) -> Result<RunExportResult> {
    ctx.cancel.check()?;
    let index = &ctx.index;
    let mut per_alert: Vec<Option<WindowCoverage>> = vec![None; index.alerts.len()];
    for (i, cov) in output.coverage {
        per_alert[i] = Some(cov);
    }
    let slice_files = output.files;
    let stats = output.stats;
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
