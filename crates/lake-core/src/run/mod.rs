//! The run-slice export: alerts → windows → plan → fetch → coverage and bucket files → manifest → publish.
//!
//! Memory is flat in the size of the run: mints stream from the source into the part sink, whose window filter
//! counts each alert's coverage and keeps the candles of the kept windows for the bucket writer, whose open
//! buckets hold the page each column is filling.

mod alert_index;
pub(crate) mod alerts;
pub(crate) mod config;
mod outputs;
mod window_filter;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::error::Result;
use crate::lake::layout::{run_rel_dir, COVERAGE_PATH, MANIFEST_FILE};
use crate::lake::manifest::{FetchStats, FileTotals, SourceSnapshot};
use crate::pipeline::hooks::ExportHooks;
use crate::pipeline::part_sink::{PartDir, PartSink};
use crate::pipeline::progress::{Phase, Progress};
use crate::pipeline::sink::fetch_into;
use crate::source::clickhouse::CandleSource;
use crate::source::corpus::CorpusSource;
use crate::source::corpus_freshness;
use crate::source::corpus_mirror::CorpusMirror;
use crate::source::feed::{CandleFeed, FetchRequest};
use crate::spec::coverage::CoveragePolicy;
use crate::spec::fetch_plan::MintRanges;
use crate::task::blocking::blocking;
use crate::task::cancel::CancelFlag;
use crate::writer::bucket_writer::PartSettings;

use alert_index::AlertIndex;
use alerts::load_alerts;
use config::{RunSettings, SourceChoice};
use outputs::{seal_run, Fetched};
use window_filter::WindowFilter;

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
    /// Files, rows and bytes of the slice files.
    pub slices: FileTotals,
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

/// The run's candle source: a ClickHouse server or the lake's own corpus (with the local copy it reads when
/// the corpus is in an object store; it must live as long as the feed).
struct Feed {
    feed: CandleFeed,
    snapshot: SourceSnapshot,
    _mirror: Option<CorpusMirror>,
}

/// Opens the run's candle source; its retries are reported to `progress`, and `cancel` ends their waits.
async fn open_feed(
    settings: &RunSettings,
    plan: &[MintRanges],
    progress: &Progress,
    cancel: &CancelFlag,
) -> Result<Feed> {
    match &settings.source {
        SourceChoice::ClickHouse(cfg) => {
            let (source, snapshot) = CandleSource::connect(
                cfg,
                &settings.chain,
                settings.interval.seconds(),
                Some(progress.retry_observer()),
                cancel,
            )
            .await?;
            Ok(Feed {
                feed: CandleFeed::ClickHouse(Box::new(source)),
                snapshot,
                _mirror: None,
            })
        }
        SourceChoice::Corpus { require_fresh } => {
            let mirror = match &settings.lake.remote {
                Some(remote) => {
                    Some(CorpusMirror::fetch(remote, settings.interval.spec(), plan).await?)
                }
                None => None,
            };
            let root = mirror
                .as_ref()
                .map_or(settings.lake.local.clone(), |m| m.lake_root().to_owned());
            let (lake, interval, chain, plan) = (
                root,
                settings.interval.spec().to_owned(),
                settings.chain.clone(),
                plan.to_vec(),
            );
            let source =
                blocking(move || CorpusSource::open(&lake, &interval, &chain, &plan)).await?;
            if let Some(server) = require_fresh {
                corpus_freshness::require_fresh(
                    &source,
                    server,
                    &settings.chain,
                    settings.interval.seconds(),
                    settings.interval.spec(),
                )
                .await?;
            }
            Ok(Feed {
                snapshot: source.snapshot(),
                feed: CandleFeed::Corpus(Arc::new(source)),
                _mirror: mirror,
            })
        }
    }
}

/// Runs a whole run-slice export and publishes the sealed run.
pub async fn export_run_slices(
    mut settings: RunSettings,
    hooks: ExportHooks,
) -> Result<RunExportResult> {
    let started = Instant::now();
    let cancel = hooks.cancel.clone();
    let progress = Progress::new(hooks.progress.clone());
    settings.lake.report_retries_to(progress.retry_observer());
    progress.phase(Phase::LoadingAlerts, None);

    let (lake, overwrite) = (settings.lake.clone(), settings.overwrite);
    let rel_dir = run_rel_dir(&settings.run_id);
    let staging = blocking(move || lake.stage(&rel_dir, overwrite)).await?;

    crate::failpoint::hit("export.staging_created");
    let alerts_path = settings.alerts_path.clone();
    let alerts = blocking(move || load_alerts(&alerts_path)).await?;
    cancel.check()?;
    let index = Arc::new(AlertIndex::build(alerts, &settings)?);
    let plan = index.plan();
    let Feed {
        feed,
        snapshot: source,
        _mirror,
    } = open_feed(&settings, &plan, &progress, &cancel).await?;
    let feed = Arc::new(feed);

    let policy = CoveragePolicy {
        window: settings.window,
        strict: settings.strict,
        min_required_pre: settings.min_required_pre,
        target_total: settings.target_total,
    };
    let slice_dir = settings.slice_dir();
    let dir = PartDir {
        root: staging.dir().join(&slice_dir),
        rel_root: slice_dir,
        part: PartSettings {
            compression: settings.compression,
            target_file_bytes: settings.target_file_bytes,
            interval_s: settings.interval.seconds(),
        },
    };
    progress.phase(Phase::Exporting, Some(plan.len() as u64));
    let (sink_index, sink_cancel, sink_progress) =
        (index.clone(), cancel.clone(), progress.clone());
    let parts = fetch_into(
        feed.clone(),
        Arc::new(FetchRequest::Mints(plan)),
        settings.concurrency,
        &cancel,
        move || {
            PartSink::new(
                &dir,
                WindowFilter::new(sink_index.clone(), policy),
                sink_cancel.clone(),
                sink_progress.clone(),
                "export.write_mint",
            )
        },
    )
    .await?;
    cancel.check()?;

    progress.phase(Phase::Sealing, None);
    let slices = FileTotals::of(&parts.files);
    let stats = FetchStats {
        retries: feed.retries(),
        ..parts.stats
    };
    let fetched = Fetched {
        slice_files: parts.files,
        coverage: parts.filtered,
        stats,
        source,
    };
    let seal_cancel = cancel.clone();
    let published =
        blocking(move || seal_run(staging, &settings, &index, &policy, fetched, &seal_cancel))
            .await?;
    progress.phase(Phase::Done, None);
    Ok(RunExportResult {
        manifest: published.manifest,
        manifest_path: published.run_dir.join(MANIFEST_FILE),
        coverage_path: published.run_dir.join(COVERAGE_PATH),
        run_dir: published.run_dir,
        slices,
        stats,
        alerts: published.alerts,
        kept_events: published.kept_events,
        dropped_events: published.alerts - published.kept_events,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
