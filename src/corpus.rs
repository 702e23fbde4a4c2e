//! `exportCorpus`: every candle of an interval over a date range, one sealed, atomically published day at a time.

use lake_core::{CorpusConfig, CorpusExportResult};
use napi::bindgen_prelude::{Object, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::hooks::hooks_from_options;
use crate::js_error::run_async;

/// The corpus export config (docs/lake-format.md, "Corpus config"), snake_case on the wire. Defaults and ranges
/// of absent fields: `configFacts()`.
// Only its TypeScript declaration is used: the core reads the config with serde, so defaults and checks live
// in one place.
#[napi(object, object_from_js = false)]
pub struct LakeCorpusExportConfig {
    /// The lake lives in `<data_root>/lake`: a directory, or `s3://bucket/prefix` (see `object_store`).
    #[napi(js_name = "data_root")]
    pub data_root: String,
    /// Candle interval spec, e.g. `1m`.
    pub interval: String,
    /// First UTC day, `YYYY-MM-DD`.
    #[napi(js_name = "date_from")]
    pub date_from: String,
    /// Day after the last one, `YYYY-MM-DD` (exclusive).
    #[napi(js_name = "date_to")]
    pub date_to: String,
    /// ClickHouse `chain` filter.
    pub chain: Option<String>,
    /// Parquet codec of the data files.
    #[napi(ts_type = "'zstd' | 'snappy' | 'none'")]
    pub compression: Option<String>,
    /// Part files roll before passing this many MiB.
    #[napi(js_name = "target_file_mb")]
    pub target_file_mb: Option<u32>,
    /// Only these mints (all when absent).
    #[napi(js_name = "mint_filter")]
    pub mint_filter: Option<Vec<String>>,
    /// Only these buckets, e.g. `00-3f`: one machine's shard of a multi-machine export (all when absent).
    pub buckets: Option<String>,
    /// `K/N`: the K-th (from 0) of N near-equal bucket ranges, instead of `buckets`.
    pub shard: Option<String>,
    /// `N`: one of N shards, which one read from `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job) or
    /// `AWS_BATCH_JOB_ARRAY_INDEX` (AWS Batch array job); instead of `buckets` and `shard`.
    pub shards: Option<u32>,
    /// Re-export days that are already sealed and intact.
    pub overwrite: Option<bool>,
    /// ClickHouse queries in flight at once. More lets a server with cores to spare answer
    /// faster; each waits (paused) until the export reads it.
    pub concurrency: Option<u32>,
    /// The candle server.
    pub clickhouse: crate::clickhouse::ClickhouseConnection,
    /// Region, endpoint and credentials of an `s3://` data root, else the AWS environment's.
    #[napi(js_name = "object_store")]
    pub object_store: Option<crate::object_store::LakeObjectStore>,
}

/// One day of a corpus export.
#[napi(object)]
pub struct LakeCorpusDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `exported`, `skipped` (sealed, intact, source unchanged) or `redone`.
    pub status: String,
    /// Why: `new`, `fresh`, `unfingerprinted` (skipped: sealed before fingerprints, freshness unknown), `stale`,
    /// `damaged`, `other_selection` or `overwrite`.
    #[napi(
        ts_type = "'new' | 'fresh' | 'unfingerprinted' | 'stale' | 'damaged' | 'other_selection' | 'overwrite'"
    )]
    pub reason: String,
    /// For `stale`: what changed in the source; for `damaged`: the first problem found. Empty otherwise.
    pub detail: String,
    /// The day directory.
    pub dir: String,
    /// Rows written now.
    pub rows: f64,
    /// Files written now.
    pub files: f64,
    /// Bytes written now.
    pub bytes: f64,
    /// True once the day has its `manifest.json` (a shard may wait for the others).
    pub sealed: bool,
    /// Set when a stale day was refreshed in part: only its changed buckets rebuilt, only its changed mints
    /// fetched (docs/lake-format.md, "Refresh"). Absent when the day was exported whole.
    pub refreshed: Option<LakeCorpusRefresh>,
}

/// What a partial refresh of a stale corpus day did.
#[napi(object)]
pub struct LakeCorpusRefresh {
    /// Buckets rebuilt (their source changed).
    pub buckets: u32,
    /// Mints fetched again (changed or new); the rebuilt buckets' other mints were copied from the day.
    pub mints: f64,
    /// Files of unchanged buckets kept as they were (not rewritten, not uploaded).
    #[napi(js_name = "files_kept")]
    pub files_kept: u32,
}

/// What a corpus export reports.
#[napi(object)]
pub struct LakeCorpusExportResult {
    /// `<lake>/corpus/ohlcv/interval=<i>`.
    #[napi(js_name = "corpus_dir")]
    pub corpus_dir: String,
    /// Every day, in order.
    pub days: Vec<LakeCorpusDay>,
    /// Rows read from ClickHouse.
    #[napi(js_name = "rows_fetched")]
    pub rows_fetched: f64,
    /// Duplicate (mint, ts) rows dropped.
    #[napi(js_name = "duplicates_dropped")]
    pub duplicates_dropped: f64,
    /// ClickHouse requests made again after a transient failure (docs/lake-format.md, "Retries").
    pub retries: f64,
    /// Wall time in milliseconds.
    #[napi(js_name = "duration_ms")]
    pub duration_ms: f64,
}

impl From<CorpusExportResult> for LakeCorpusExportResult {
    fn from(r: CorpusExportResult) -> Self {
        Self {
            corpus_dir: r.corpus_dir.to_string_lossy().into_owned(),
            days: r
                .days
                .into_iter()
                .map(|d| LakeCorpusDay {
                    date: d.date,
                    status: d.status.as_str().to_owned(),
                    reason: d.reason.as_str().to_owned(),
                    detail: d.reason.detail().to_owned(),
                    dir: d.dir.to_string_lossy().into_owned(),
                    rows: d.written.rows as f64,
                    files: d.written.files as f64,
                    bytes: d.written.bytes as f64,
                    sealed: d.sealed,
                    refreshed: d.refreshed.map(|r| LakeCorpusRefresh {
                        buckets: r.buckets,
                        mints: r.mints as f64,
                        files_kept: r.files_kept,
                    }),
                })
                .collect(),
            rows_fetched: r.stats.rows_fetched as f64,
            duplicates_dropped: r.stats.duplicates_dropped as f64,
            retries: r.stats.retries as f64,
            duration_ms: r.duration_ms as f64,
        }
    }
}

/// Exports the corpus of an interval for each UTC day in `[date_from, date_to)`: a re-run skips sealed days that
/// verify and whose source is unchanged, and redoes those that are damaged or stale; a failure on one day keeps the days before it. Rejects with a coded error.
#[napi(
    ts_args_type = "config: LakeCorpusExportConfig, options?: { onProgress?: (event: LakeProgressEvent) => void; signal?: AbortSignal }",
    ts_return_type = "Promise<LakeCorpusExportResult>"
)]
pub fn export_corpus<'env>(
    env: &'env Env,
    config: serde_json::Value,
    options: Option<Object>,
) -> napi::Result<PromiseRaw<'env, LakeCorpusExportResult>> {
    let hooks = hooks_from_options(env, options)?;
    run_async(
        env,
        async move {
            let settings = CorpusConfig::from_json(config)?.validate()?;
            lake_core::export_corpus(settings, hooks).await
        },
        |r| Ok(r.into()),
    )
}
