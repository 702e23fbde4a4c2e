//! `exportRunSlices`: the run-slice export, async on napi's tokio runtime, with progress and AbortSignal.

use std::sync::Arc;

use lake_core::cancel::CancelFlag;
use lake_core::export_run::{self, ExportHooks, RunExportResult};
use lake_core::progress::ProgressEvent;
use lake_core::run_config::RunSliceConfig;
use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_async;

/// The run-slice export config (SPEC §3), snake_case on the wire. Numbers must be whole; the addon rejects
/// anything else with `INVALID_CONFIG` rather than letting it be rounded.
#[napi(object, object_from_js = false)]
pub struct LakeRunSliceExportConfig {
    /// The lake lives in `<data_root>/lake`.
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
    /// ClickHouse `chain` filter; default `solana`.
    pub chain: Option<String>,
    /// `zstd` (default), `snappy` or `none`.
    #[napi(ts_type = "'zstd' | 'snappy' | 'none'")]
    pub compression: Option<String>,
    /// Part files roll before passing this many MiB; default 512.
    #[napi(js_name = "target_file_mb")]
    pub target_file_mb: Option<u32>,
    /// Drop alerts below the thresholds; default false.
    #[napi(js_name = "strict_coverage")]
    pub strict_coverage: Option<bool>,
    /// Strict threshold before the anchor; default 52.
    #[napi(js_name = "min_required_pre")]
    pub min_required_pre: Option<u32>,
    /// Strict threshold in total; default 5000.
    #[napi(js_name = "target_total")]
    pub target_total: Option<u32>,
    /// The candle server; required unless `source` is `corpus`.
    pub clickhouse: Option<crate::server_probe::ClickhouseConnection>,
    /// `clickhouse` (default) or `corpus`: read candles from the lake's own sealed corpus of this interval.
    #[napi(ts_type = "'clickhouse' | 'corpus'")]
    pub source: Option<String>,
    /// Replace an existing run with the same id (atomically); default false.
    pub overwrite: Option<bool>,
    /// ClickHouse queries in flight at once (1–64); default 2. More lets a server with cores to spare answer
    /// faster; each waits (paused) until the export reads it.
    pub concurrency: Option<u32>,
}

/// One progress event; counters never decrease.
#[napi(object)]
pub struct LakeProgressEvent {
    /// `loading_alerts`, `exporting`, `finishing`, `sealing` or `done`.
    pub phase: String,
    /// Mints whose candles are written.
    #[napi(js_name = "mints_done")]
    pub mints_done: f64,
    /// Mints planned; 0 while unknown (a corpus day learns its mints as it reads them).
    #[napi(js_name = "mints_total")]
    pub mints_total: f64,
    /// Candle rows written so far.
    pub rows: f64,
    /// Bytes of finished data files.
    pub bytes: f64,
}

impl From<ProgressEvent> for LakeProgressEvent {
    fn from(e: ProgressEvent) -> Self {
        Self {
            phase: e.phase.as_str().to_owned(),
            mints_done: e.mints_done as f64,
            mints_total: e.mints_total as f64,
            rows: e.rows as f64,
            bytes: e.bytes as f64,
        }
    }
}

/// What a finished export reports: the original fields plus fetch counters and duration.
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
            total_rows: r.total_rows as f64,
            total_files: r.total_files as f64,
            total_bytes: r.total_bytes as f64,
            rows_fetched: r.stats.rows_fetched as f64,
            duplicates_dropped: r.stats.duplicates_dropped as f64,
            alerts: r.alerts as f64,
            kept_events: r.kept_events as f64,
            dropped_events: r.dropped_events as f64,
            duration_ms: r.duration_ms as f64,
        }
    }
}

/// Builds the export hooks from `{ onProgress?, signal? }`: progress through a threadsafe function, and an
/// `abort` listener on the signal that flips the cancel flag.
pub fn hooks_from_options(env: &Env, options: Option<Object>) -> napi::Result<ExportHooks> {
    let mut hooks = ExportHooks::default();
    let Some(options) = options else {
        return Ok(hooks);
    };
    if let Some(callback) =
        options.get_named_property::<Option<Function<LakeProgressEvent, ()>>>("onProgress")?
    {
        let tsfn = callback
            .build_threadsafe_function::<LakeProgressEvent>()
            .callee_handled::<false>()
            .build()?;
        hooks.progress = Some(Arc::new(move |event: ProgressEvent| {
            tsfn.call(event.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }));
    }
    if let Some(signal) = options.get_named_property::<Option<Object>>("signal")? {
        attach_abort_signal(env, &signal, &hooks.cancel)?;
    }
    Ok(hooks)
}

/// `EventTarget.prototype.addEventListener(type, listener)`.
type AddEventListener<'a> = Function<'a, FnArgs<(String, Function<'a, (), ()>)>, ()>;

fn attach_abort_signal(env: &Env, signal: &Object, cancel: &CancelFlag) -> napi::Result<()> {
    if signal
        .get_named_property::<Option<bool>>("aborted")?
        .unwrap_or(false)
    {
        cancel.cancel();
        return Ok(());
    }
    let flag = cancel.clone();
    let on_abort = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
        flag.cancel();
        Ok(())
    })?;
    let add: AddEventListener = signal.get_named_property("addEventListener")?;
    add.apply(signal, FnArgs::from(("abort".to_owned(), on_abort)))?;
    Ok(())
}

/// Exports run slices (SPEC §1–§8): fetches each alert's window of candles, writes the bucketed slices,
/// coverage and a sealed manifest, and publishes the run atomically. Rejects with a coded error
/// (`INVALID_CONFIG`, `INVALID_ALERTS`, `CLICKHOUSE_*`, `IO`, `RUN_EXISTS`, `RUN_LOCKED`, `CANCELLED`, `INTERNAL`).
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
            export_run::export_run_slices(settings, hooks).await
        },
        |r| Ok(r.into()),
    )
}
