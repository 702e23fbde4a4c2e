//! The run manifest (docs/lake-format.md, "Run manifest"): the original exporter's fields in its order, plus
//! `chain`, the file list, fetch counters and the seal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lake::layout::ALERTS_PATH;
use crate::lake::manifest::{
    sealed_json, sorted_files, Exporter, FetchStats, OutputTotals, Seal, SourceSnapshot,
    WrittenFile, LAKE_VERSION,
};

/// How anchors are computed, as the manifest states it.
const ANCHOR_RULE: &str = "floor_to_interval(ts, interval)";
/// The dataset every slice holds.
const DATASET: &str = "ohlcv";

/// `inputs.alerts`: the run's stored copy of its alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlerts {
    /// `inputs/alerts.parquet`.
    pub path: String,
    /// SHA-256 of the stored file.
    pub sha256: String,
    /// Alerts in it.
    pub rows: u64,
}

/// `inputs`: what the run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInputs {
    /// The alerts.
    pub alerts: StoredAlerts,
    /// Where the candles came from.
    pub source_snapshot: SourceSnapshot,
}

/// `slice_spec`: what each slice is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceSpec {
    /// `ohlcv`.
    pub dataset: String,
    /// Interval spec, verbatim.
    pub interval: String,
    /// Window spec, verbatim.
    pub window: String,
    /// How the anchor is computed.
    pub anchor_rule: String,
    /// Chain filter.
    pub chain: String,
}

impl SliceSpec {
    /// The OHLCV slice spec of an interval, window and chain.
    pub fn ohlcv(interval: &str, window: &str, chain: &str) -> Self {
        Self {
            dataset: DATASET.to_owned(),
            interval: interval.to_owned(),
            window: window.to_owned(),
            anchor_rule: ANCHOR_RULE.to_owned(),
            chain: chain.to_owned(),
        }
    }
}

/// `coverage`: the strict-coverage settings and what they kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageSummary {
    /// Strict threshold before the anchor.
    pub min_required_pre: u32,
    /// Strict threshold in total.
    pub target_total: u32,
    /// Alerts kept.
    pub kept_events: u64,
    /// Alerts dropped by strict mode.
    pub dropped_events: u64,
    /// Strict mode was on.
    pub strict: bool,
}

/// A run's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    /// `v1`.
    pub lake_version: String,
    /// Run id.
    pub run_id: String,
    /// Wall clock of the export, ISO-8601 UTC (the only unsealed field).
    pub created_at: String,
    /// Who wrote it.
    pub exporter: Exporter,
    /// What the run read.
    pub inputs: RunInputs,
    /// What each slice is.
    pub slice_spec: SliceSpec,
    /// Per output directory (the run's one slice directory): buckets, files, rows.
    pub outputs: BTreeMap<String, OutputTotals>,
    /// Strict-mode outcome.
    pub coverage: CoverageSummary,
    /// Every data file, sorted by path.
    pub files: Vec<WrittenFile>,
    /// Fetch counters.
    pub stats: FetchStats,
    /// Absent until sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

/// What a finished run wrote, from which its manifest is made.
#[derive(Debug, Clone)]
pub struct RunContents {
    /// Run id.
    pub run_id: String,
    /// Wall clock of the export.
    pub created_at: String,
    /// Where the candles came from.
    pub source: SourceSnapshot,
    /// What each slice is.
    pub slice_spec: SliceSpec,
    /// `slices/ohlcv/interval=<i>/window=<w>`.
    pub slice_dir: String,
    /// The stored alerts file.
    pub alerts_file: WrittenFile,
    /// The coverage table.
    pub coverage_file: WrittenFile,
    /// Every part file of the slices.
    pub slice_files: Vec<WrittenFile>,
    /// Strict-mode outcome.
    pub coverage: CoverageSummary,
    /// Fetch counters.
    pub stats: FetchStats,
}

impl RunManifest {
    /// The unsealed manifest of what a run wrote.
    pub fn new(c: RunContents) -> Self {
        let outputs = BTreeMap::from([(c.slice_dir, OutputTotals::of(&c.slice_files))]);
        let alerts = StoredAlerts {
            path: ALERTS_PATH.to_owned(),
            sha256: c.alerts_file.sha256.clone(),
            rows: c.alerts_file.rows,
        };
        let mut files = vec![c.alerts_file, c.coverage_file];
        files.extend(c.slice_files);
        Self {
            lake_version: LAKE_VERSION.to_owned(),
            run_id: c.run_id,
            created_at: c.created_at,
            exporter: Exporter::current(),
            inputs: RunInputs {
                alerts,
                source_snapshot: c.source,
            },
            slice_spec: c.slice_spec,
            outputs,
            coverage: c.coverage,
            files: sorted_files(files),
            stats: c.stats,
            seal: None,
        }
    }

    /// The sealed manifest as JSON, as `manifest.json` holds it.
    pub fn to_sealed_json(&self) -> Value {
        sealed_json(self)
    }
}
