//! `configFacts()`: every default and limit of the export configs, as the core defines them. The Zod schemas
//! and the CLI are built from this, so JavaScript never restates a number.

use lake_core::{Choice, Whole, FACTS};
use napi_derive::napi;

/// A whole-number field: its default and the range it must lie in.
#[napi(object)]
pub struct LakeWholeRange {
    /// Used when the field is absent.
    pub default: f64,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

impl From<Whole> for LakeWholeRange {
    fn from(w: Whole) -> Self {
        Self {
            default: w.default as f64,
            min: w.min as f64,
            max: w.max as f64,
        }
    }
}

/// A string field with a fixed set of values.
#[napi(object)]
pub struct LakeChoice {
    /// Used when the field is absent.
    pub default: String,
    /// Every accepted value.
    pub values: Vec<String>,
}

impl From<Choice> for LakeChoice {
    fn from(c: Choice) -> Self {
        Self {
            default: c.default.to_owned(),
            values: c.values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }
}

/// Every default and limit of the run-slice and corpus configs.
#[napi(object)]
pub struct LakeConfigFacts {
    /// Default `chain`.
    pub chain: String,
    /// `compression`.
    pub compression: LakeChoice,
    /// `source` of a run.
    pub source: LakeChoice,
    /// `target_file_mb`.
    #[napi(js_name = "target_file_mb")]
    pub target_file_mb: LakeWholeRange,
    /// `min_required_pre`.
    #[napi(js_name = "min_required_pre")]
    pub min_required_pre: LakeWholeRange,
    /// `target_total`.
    #[napi(js_name = "target_total")]
    pub target_total: LakeWholeRange,
    /// `concurrency`.
    pub concurrency: LakeWholeRange,
    /// `clickhouse.connect_timeout`, seconds.
    #[napi(js_name = "connect_timeout")]
    pub connect_timeout: LakeWholeRange,
    /// `clickhouse.send_receive_timeout`, seconds.
    #[napi(js_name = "send_receive_timeout")]
    pub send_receive_timeout: LakeWholeRange,
    /// `clickhouse.retries`: retries of one request after a transient failure.
    pub retries: LakeWholeRange,
    /// `clickhouse.retry_max_wait`, seconds one request may spend waiting between its retries.
    #[napi(js_name = "retry_max_wait")]
    pub retry_max_wait: LakeWholeRange,
    /// Largest `pre` or `post` of a window spec.
    #[napi(js_name = "max_window_candles")]
    pub max_window_candles: f64,
    /// Largest interval, seconds.
    #[napi(js_name = "max_interval_seconds")]
    pub max_interval_seconds: f64,
    /// Most days one corpus export covers.
    #[napi(js_name = "max_corpus_days")]
    pub max_corpus_days: f64,
    /// Most mints in a corpus `mint_filter`.
    #[napi(js_name = "max_mint_filter")]
    pub max_mint_filter: f64,
    /// Longest mint, bytes (alerts and `mint_filter`).
    #[napi(js_name = "max_mint_bytes")]
    pub max_mint_bytes: f64,
    /// Pattern every run id matches (a JavaScript-compatible regular expression).
    #[napi(js_name = "run_id_pattern")]
    pub run_id_pattern: String,
    /// Pattern of `clickhouse.database` and `clickhouse.table`.
    #[napi(js_name = "identifier_pattern")]
    pub identifier_pattern: String,
}

/// Every default and limit of the export configs, as the exporter applies them.
#[napi]
pub fn config_facts() -> LakeConfigFacts {
    LakeConfigFacts {
        chain: FACTS.chain.to_owned(),
        compression: FACTS.compression.into(),
        source: FACTS.source.into(),
        target_file_mb: FACTS.target_file_mb.into(),
        min_required_pre: FACTS.min_required_pre.into(),
        target_total: FACTS.target_total.into(),
        concurrency: FACTS.concurrency.into(),
        connect_timeout: FACTS.connect_timeout.into(),
        send_receive_timeout: FACTS.send_receive_timeout.into(),
        retries: FACTS.retries.into(),
        retry_max_wait: FACTS.retry_max_wait.into(),
        max_window_candles: f64::from(FACTS.max_window_candles),
        max_interval_seconds: FACTS.max_interval_seconds as f64,
        max_corpus_days: FACTS.max_corpus_days as f64,
        max_mint_filter: FACTS.max_mint_filter as f64,
        max_mint_bytes: FACTS.max_mint_bytes as f64,
        run_id_pattern: FACTS.run_id_pattern.to_owned(),
        identifier_pattern: FACTS.identifier_pattern.to_owned(),
    }
}
