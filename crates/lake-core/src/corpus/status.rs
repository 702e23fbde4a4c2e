//! `corpus-status`: where each day of a corpus range stands, without writing anything: missing, fresh, stale,
//! damaged, or unknown (the server could not be asked, or the day carries no fingerprint). Never fresh without
//! the server's word.

use std::path::PathBuf;

use super::config::CorpusSettings;
use super::existing::{fingerprinted, previous_days, Previous};
use crate::error::Result;
use crate::lake::fingerprint::{freshness, Freshness};
use crate::lake::layout::day_label;
use crate::lake::verify::ReuseCheck;
use crate::source::clickhouse::fingerprint::current_fingerprints;
use crate::source::clickhouse::CandleSource;
use crate::task::cancel::CancelFlag;

/// Where a day stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusDayState {
    /// No sealed manifest for this selection.
    Missing,
    /// Sealed, intact, and the source holds what it was made from.
    Fresh,
    /// Sealed, but the source changed since (or the day was made with another selection).
    Stale,
    /// A file or the manifest does not verify.
    Damaged,
    /// Sealed and intact, but the server could not be asked, or the day has no fingerprint.
    Unknown,
}

impl CorpusDayState {
    /// `missing`, `fresh`, `stale`, `damaged` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Damaged => "damaged",
            Self::Unknown => "unknown",
        }
    }
}

/// One day's standing.
#[derive(Debug, Clone)]
pub struct CorpusDayStatus {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Where it stands.
    pub state: CorpusDayState,
    /// What changed, what is damaged, or why it is unknown; empty for missing and fresh days.
    pub detail: String,
    /// The day directory.
    pub dir: PathBuf,
}

/// The standing of every day of a range.
#[derive(Debug, Clone)]
pub struct CorpusStatusReport {
    /// `<lake>/corpus/ohlcv/interval=<i>`.
    pub corpus_dir: PathBuf,
    /// Every day, in order.
    pub days: Vec<CorpusDayStatus>,
}

/// Checks every day of `settings` against the disk and the server; writes nothing.
pub async fn corpus_status(settings: CorpusSettings) -> Result<CorpusStatusReport> {
    let corpus_dir = settings.shown_corpus();
    let found = previous_days(&settings, ReuseCheck::Full).await?;
    let (to_check, sizes) = fingerprinted(&found);
    // A server that cannot be asked makes the sealed days unknown, never fresh; the disk's answers still stand.
    let now = if to_check.is_empty() {
        Ok(Default::default())
    } else {
        match CandleSource::connect(
            &settings.clickhouse,
            &settings.chain,
            settings.interval.seconds(),
            None,
            &CancelFlag::new(),
        )
        .await
        {
            Ok((source, _)) => {
                current_fingerprints(
                    &source,
                    &to_check,
                    settings.buckets,
                    settings.mint_filter.as_deref(),
                    &sizes,
                )
                .await
            }
            Err(e) => Err(e),
        }
    };
    let days = found
        .into_iter()
        .map(|(day, prev)| {
            let (state, detail) = match prev {
                Previous::Missing => (CorpusDayState::Missing, String::new()),
                Previous::Damaged(what) => (CorpusDayState::Damaged, what),
                Previous::OtherSelection => (
                    CorpusDayState::Stale,
                    "sealed with another chain, bucket range or mint filter".to_owned(),
                ),
                Previous::Sealed(m) => match &now {
                    Err(e) if m.source_fingerprint.is_some() => (
                        CorpusDayState::Unknown,
                        format!(
                            "ClickHouse could not be asked: {}: {}",
                            e.code().as_str(),
                            e.message()
                        ),
                    ),
                    _ => match freshness(&m, now.as_ref().ok().and_then(|n| n.get(&day))) {
                        Freshness::Fresh => (CorpusDayState::Fresh, String::new()),
                        Freshness::Stale(what) => (CorpusDayState::Stale, what),
                        Freshness::Unfingerprinted => (
                            CorpusDayState::Unknown,
                            "sealed without a source fingerprint (by an older exporter); \
                             export-corpus with overwrite refreshes it"
                                .to_owned(),
                        ),
                    },
                },
            };
            CorpusDayStatus {
                date: day_label(day),
                state,
                detail,
                dir: settings.shown_day(day),
            }
        })
        .collect();
    Ok(CorpusStatusReport { corpus_dir, days })
}
