//! `exportRunSlices`: the run-slice export, async on napi's tokio runtime, with progress and AbortSignal.

use lake_core::{RunExportResult, RunSliceConfig};
use napi::bindgen_prelude::{Object, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::hooks::hooks_from_options;
use crate::js_error::run_async;

/// The run-slice export config (docs/lake-format.md, "Run config"), snake_case on the wire. Numbers must be
/// whole; the addon rejects anything else with `INVALID_CONFIG` rather than letting it be rounded. Defaults and
/// ranges of absent fields: `configFacts()`.
// Only its TypeScript declaration is used: the core reads the config with serde, so defaults and checks live
// in one place.
#[napi(object, object_from_js = false)]
pub struct LakeRunSliceExportConfig {
    /// The lake lives in `<data_root>/lake`: a directory, or `s3://bucket/prefix` (see `object_store`).
    #[napi(js_name = "data_root")]
    pub data_root: String,
    /// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
    #[napi(js_name = "run_id")]
    pub run_id: String,
    /// `<N>s|m|h|d` or bare seconds; used verbatim in directory names.
    pub interval: String,
    /// `pre<N>_post<M>`.
    pub window: String,
    /// `.parquet` or `.csv` alerts file.
    #[napi(js_name = "alerts_path")]
    pub alerts_path: String,
    /// ClickHouse `chain` filter.
    pub chain: Option<String>,
    /// Parquet codec of the data files.
    #[napi(ts_type = "'zstd' | 'snappy' | 'none'")]
    pub compression: Option<String>,
    /// Part files roll before passing this many MiB.
    #[napi(js_name = "target_file_mb")]
    pub target_file_mb: Option<u32>,
    /// Drop alerts below the thresholds.
    #[napi(js_name = "strict_coverage")]
    pub strict_coverage: Option<bool>,
    /// Strict mode: candles needed before the anchor.
    #[napi(js_name = "min_required_pre")]
    pub min_required_pre: Option<u32>,
    /// Strict mode: candles needed in total.
    #[napi(js_name = "target_total")]
    pub target_total: Option<u32>,
    /// The candle server; required unless `source` is `corpus`.
    pub clickhouse: Option<crate::clickhouse::ClickhouseConnection>,
    /// Region, endpoint and credentials of an `s3://` data root, else the AWS environment's.
    #[napi(js_name = "object_store")]
    pub object_store: Option<crate::object_store::LakeObjectStore>,
    /// Where candles come from: a ClickHouse server, or the lake's own sealed corpus of this interval.
    #[napi(ts_type = "'clickhouse' | 'corpus'")]
    pub source: Option<String>,
    /// With `source` `corpus`: refuse (`CORPUS_STALE`) days whose source changed since they were sealed, asking
    /// `clickhouse` for their fingerprints.
    #[napi(js_name = "require_fresh")]
    pub require_fresh: Option<bool>,
    /// Replace an existing run with the same id (atomically).
    pub overwrite: Option<bool>,
    /// ClickHouse queries in flight at once. More lets a server with cores to spare answer
    /// faster; each waits (paused) until the export reads it.
    pub concurrency: Option<u32>,
}

/// What a finished export reports: the original exporter's fields plus fetch counters and duration.
#[napi(object)]
pub struct LakeExportResult {
    /// The sealed manifest, as written to `manifest.json`.
    #[napi(ts_type = "Record<string, unknown>")]
    pub manifest: serde_json::Value,
    /// Absolute path of `manifest.json`.
    #[napi(js_name = "manifest_path")]
    pub manifest_path: String,
    /// Absolute path of `outputs/coverage.parquet`.
    #[napi(js_name = "coverage_path")]
    pub coverage_path: String,
    /// The published run directory.
    #[napi(js_name = "run_dir")]
    pub run_dir: String,
    /// Candle rows in the slice files.
    #[napi(js_name = "total_rows")]
    pub total_rows: f64,
    /// Slice files.
    #[napi(js_name = "total_files")]
    pub total_files: f64,
    /// Bytes of the slice files.
    #[napi(js_name = "total_bytes")]
    pub total_bytes: f64,
    /// Candle rows read from the source (fetch amplification = rows_fetched / total_rows).
    #[napi(js_name = "rows_fetched")]
    pub rows_fetched: f64,
    /// Duplicate (mint, ts) rows dropped.
    #[napi(js_name = "duplicates_dropped")]
    pub duplicates_dropped: f64,
    /// ClickHouse requests made again after a transient failure (docs/lake-format.md, "Retries").
    pub retries: f64,
    /// Alerts read.
    pub alerts: f64,
    /// Alerts kept.
    #[napi(js_name = "kept_events")]
    pub kept_events: f64,
    /// Alerts dropped by strict mode.
    #[napi(js_name = "dropped_events")]
    pub dropped_events: f64,
    /// Wall time in milliseconds.
    #[napi(js_name = "duration_ms")]
    pub duration_ms: f64,
}

impl From<RunExportResult> for LakeExportResult {
    fn from(r: RunExportResult) -> Self {
        Self {
            manifest: r.manifest,
            manifest_path: r.manifest_path.to_string_lossy().into_owned(),
            coverage_path: r.coverage_path.to_string_lossy().into_owned(),
            run_dir: r.run_dir.to_string_lossy().into_owned(),
            total_rows: r.slices.rows as f64,
            total_files: r.slices.files as f64,
            total_bytes: r.slices.bytes as f64,
            rows_fetched: r.stats.rows_fetched as f64,
            duplicates_dropped: r.stats.duplicates_dropped as f64,
            retries: r.stats.retries as f64,
            alerts: r.alerts as f64,
            kept_events: r.kept_events as f64,
            dropped_events: r.dropped_events as f64,
            duration_ms: r.duration_ms as f64,
        }
    }
}

/// Exports run slices: fetches each alert's window of candles, writes the bucketed slices,
/// coverage and a sealed manifest, and publishes the run atomically. Rejects with a coded error
/// (`INVALID_CONFIG`, `INVALID_ALERTS`, `CLICKHOUSE_*`, `IO`, `RUN_EXISTS`, `RUN_LOCKED`, `CORPUS_STALE`, `CANCELLED`, `INTERNAL`).
#[napi(
    ts_args_type = "config: LakeRunSliceExportConfig, options?: { onProgress?: (event: LakeProgressEvent) => void; signal?: AbortSignal }",
    ts_return_type = "Promise<LakeExportResult>"
)]
pub fn export_run_slices<'env>(
    env: &'env Env,
    config: serde_json::Value,
    options: Option<Object>,
) -> napi::Result<PromiseRaw<'env, LakeExportResult>> {
    let hooks = hooks_from_options(env, options)?;
    run_async(
        env,
        async move {
            let settings = RunSliceConfig::from_json(config)?.validate()?;
            lake_core::export_run_slices(settings, hooks).await
        },
        |r| Ok(r.into()),
    )
}
