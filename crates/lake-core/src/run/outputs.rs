//! A run's last stage: the coverage table, the stored alerts and the sealed manifest, written into staging, then
//! the run published.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{LakeError, Result};
use crate::lake::hashed_file::{write_file, FileDigest, HashingWriter};
use crate::lake::layout::{ALERTS_PATH, COVERAGE_PATH};
use crate::lake::manifest::{now_iso, FetchStats, SourceSnapshot, WrittenFile};
use crate::lake::publish::{publish_sealed, Staging};
use crate::lake::run_manifest::{CoverageSummary, RunContents, RunManifest, SliceSpec};
use crate::run::alert_index::AlertIndex;
use crate::run::alerts::AlertsFormat;
use crate::run::config::RunSettings;
use crate::spec::alert::Alert;
use crate::spec::candles::MintCandles;
use crate::spec::coverage::{CoveragePolicy, CoverageRow, WindowCoverage};
use crate::task::cancel::CancelFlag;
use crate::writer::tables::{alerts_to_parquet, coverage_to_parquet};

/// What the fetch made of the run's candles.
pub(crate) struct Fetched {
    /// The slice files.
    pub slice_files: Vec<WrittenFile>,
    /// Coverage of every alert whose mint arrived, by alert index.
    pub coverage: Vec<(usize, WindowCoverage)>,
    /// Fetch counters.
    pub stats: FetchStats,
    /// Where the candles came from.
    pub source: SourceSnapshot,
}

/// The published run.
pub(crate) struct Published {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The sealed manifest.
    pub manifest: Value,
    /// Alerts kept (all unless strict).
    pub kept_events: u64,
    /// Alerts in the run.
    pub alerts: u64,
}

/// Writes the stored alerts, coverage and manifest into staging, then publishes.
pub(crate) fn seal_run(
    staging: Staging,
    settings: &RunSettings,
    index: &AlertIndex,
    policy: &CoveragePolicy,
    fetched: Fetched,
    cancel: &CancelFlag,
) -> Result<Published> {
    cancel.check()?;
    let rows = coverage_rows(index, policy, fetched.coverage);
    let kept = rows.iter().filter(|r| r.kept).count() as u64;
    let dir = staging.dir().to_owned();
    let alerts_file = store_alerts(&dir, settings, &index.alerts)?;
    create_dir(&dir.join("outputs"))?;
    let coverage_bytes = coverage_to_parquet(&rows, settings.compression)?;
    let digest = write_file(&dir.join(COVERAGE_PATH), &coverage_bytes)?;
    let coverage_file = written(COVERAGE_PATH, rows.len(), digest);
    let manifest = RunManifest::new(RunContents {
        run_id: settings.run_id.clone(),
        created_at: now_iso(),
        source: fetched.source,
        slice_spec: SliceSpec::ohlcv(
            settings.interval.spec(),
            &settings.window_spec,
            &settings.chain,
        ),
        slice_dir: settings.slice_dir(),
        alerts_file,
        coverage_file,
        slice_files: fetched.slice_files,
        coverage: CoverageSummary {
            min_required_pre: settings.min_required_pre,
            target_total: settings.target_total,
            kept_events: kept,
            dropped_events: rows.len() as u64 - kept,
            strict: settings.strict,
        },
        stats: fetched.stats,
    })
    .to_sealed_json();
    let run_dir = publish_sealed(staging, &manifest, || {
        crate::failpoint::hit("export.before_publish");
        cancel.check()
    })?;
    Ok(Published {
        run_dir,
        manifest,
        kept_events: kept,
        alerts: rows.len() as u64,
    })
}

/// Every alert's coverage row, in input order. Alerts whose windows lie wholly outside what the source can hold
/// were never fetched: zero candles.
fn coverage_rows(
    index: &AlertIndex,
    policy: &CoveragePolicy,
    counted: Vec<(usize, WindowCoverage)>,
) -> Vec<CoverageRow> {
    let mut per_alert: Vec<Option<WindowCoverage>> = vec![None; index.alerts.len()];
    for (i, cov) in counted {
        per_alert[i] = Some(cov);
    }
    let empty = MintCandles::default();
    index
        .alerts
        .iter()
        .zip(&index.windows)
        .zip(per_alert)
        .map(|((alert, window), cov)| {
            let cov = cov.unwrap_or_else(|| WindowCoverage::count(&empty, window));
            CoverageRow::new(alert, window, cov, policy)
        })
        .collect()
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).map_err(|e| LakeError::io("cannot create directory", dir, &e))
}

fn written(rel_path: &str, rows: usize, digest: FileDigest) -> WrittenFile {
    WrittenFile {
        rel_path: rel_path.to_owned(),
        rows: rows as u64,
        bytes: digest.bytes,
        sha256: digest.sha256,
    }
}

/// `inputs/alerts.parquet`: the Parquet input byte for byte, or the CSV input converted deterministically.
fn store_alerts(dir: &Path, settings: &RunSettings, alerts: &[Alert]) -> Result<WrittenFile> {
    create_dir(&dir.join("inputs"))?;
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
    Ok(written(ALERTS_PATH, alerts.len(), digest))
}
