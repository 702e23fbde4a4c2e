//! `corpusStatus`: where each day of a corpus range stands against the disk and the server, writing nothing.

use lake_core::{CorpusConfig, CorpusStatusReport};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_async;

/// One day's standing.
#[napi(object)]
pub struct LakeCorpusDayStatus {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `missing`, `fresh` (sealed, intact, source unchanged), `stale` (the source changed, or another selection
    /// made it), `damaged` (does not verify) or `unknown` (the server could not be asked, or no fingerprint).
    #[napi(ts_type = "'missing' | 'fresh' | 'stale' | 'damaged' | 'unknown'")]
    pub state: String,
    /// What changed, what is damaged, or why unknown; empty for missing and fresh days.
    pub detail: String,
    /// The day directory.
    pub dir: String,
}

/// What `corpusStatus` reports.
#[napi(object)]
pub struct LakeCorpusStatus {
    /// `<lake>/corpus/ohlcv/interval=<i>`.
    #[napi(js_name = "corpus_dir")]
    pub corpus_dir: String,
    /// Every day of the range, in order.
    pub days: Vec<LakeCorpusDayStatus>,
}

impl From<CorpusStatusReport> for LakeCorpusStatus {
    fn from(r: CorpusStatusReport) -> Self {
        Self {
            corpus_dir: r.corpus_dir.to_string_lossy().into_owned(),
            days: r
                .days
                .into_iter()
                .map(|d| LakeCorpusDayStatus {
                    date: d.date,
                    state: d.state.as_str().to_owned(),
                    detail: d.detail,
                    dir: d.dir.to_string_lossy().into_owned(),
                })
                .collect(),
        }
    }
}

/// Checks each UTC day in `[date_from, date_to)` of a corpus config: its files against its manifest, and its
/// source fingerprint against what ClickHouse holds now. Writes nothing; an unreachable server makes sealed days
/// `unknown`, never `fresh`. Rejects with a coded error only for a bad config or an unreadable disk.
#[napi(
    ts_args_type = "config: LakeCorpusExportConfig",
    ts_return_type = "Promise<LakeCorpusStatus>"
)]
pub fn corpus_status<'env>(
    env: &'env Env,
    config: serde_json::Value,
) -> napi::Result<PromiseRaw<'env, LakeCorpusStatus>> {
    run_async(
        env,
        async move {
            let settings = CorpusConfig::from_json(config)?.validate()?;
            lake_core::corpus_status(settings).await
        },
        |r| Ok(r.into()),
    )
}
