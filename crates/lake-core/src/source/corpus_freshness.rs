//! `require_fresh`: a run that reads the corpus proves first that every day it reads still matches its source.

use chrono::NaiveDate;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::fingerprint::{freshness, query_size, Freshness};
use crate::lake::layout::day_label;
use crate::source::clickhouse::fingerprint::{current_fingerprints, DaySizes};
use crate::source::clickhouse::{CandleSource, ClickHouseConfig};
use crate::source::corpus::CorpusSource;
use crate::spec::bucket_range::BucketRange;
use crate::task::cancel::CancelFlag;

/// Fails with `CORPUS_STALE`, naming the days and the command that refreshes them, when a day `corpus` reads has
/// a source that changed since it was sealed, or has no fingerprint to tell.
pub async fn require_fresh(
    corpus: &CorpusSource,
    server: &ClickHouseConfig,
    chain: &str,
    interval_s: u32,
    interval_spec: &str,
) -> Result<()> {
    let (source, _) =
        CandleSource::connect(server, chain, interval_s, None, &CancelFlag::new()).await?;
    let days: Vec<NaiveDate> = corpus.day_manifests().map(|(d, _)| d).collect();
    let sizes: DaySizes = corpus
        .day_manifests()
        .filter_map(|(d, m)| Some((d, query_size(m)?)))
        .collect();
    let now = current_fingerprints(&source, &days, BucketRange::ALL, None, &sizes).await?;
    let mut stale = Vec::new();
    for (day, manifest) in corpus.day_manifests() {
        match freshness(manifest, now.get(&day)) {
            Freshness::Fresh => {}
            Freshness::Stale(what) => stale.push((day, what)),
            Freshness::Unfingerprinted => {
                stale.push((day, "sealed without a fingerprint".to_owned()))
            }
        }
    }
    let (Some((first, _)), Some((last, _))) = (stale.first(), stale.last()) else {
        return Ok(());
    };
    let listed: Vec<String> = stale
        .iter()
        .take(10)
        .map(|(d, what)| format!("{} ({what})", day_label(*d)))
        .collect();
    let more = if stale.len() > 10 {
        format!(" and {} more", stale.len() - 10)
    } else {
        String::new()
    };
    Err(LakeError::new(
        ErrorCode::CorpusStale,
        format!(
            "{} corpus day{} the run needs changed in ClickHouse since sealed: {}{more}. Refresh them with \
             `quantbot lake export-corpus --interval {interval_spec} --date-from {} --date-to {}` (stale days are \
             redone, fresh ones skipped), or read the run from ClickHouse",
            stale.len(),
            if stale.len() == 1 { "" } else { "s" },
            listed.join(", "),
            day_label(*first),
            day_label(last.succ_opt().unwrap_or(*last)),
        ),
    ))
}
