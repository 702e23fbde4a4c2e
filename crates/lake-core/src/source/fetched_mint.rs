//! What every candle source hands out: one mint's candles, finished, and what reading them cost.

use crate::error::LakeError;
use crate::lake::manifest::FetchStats;
use crate::spec::candles::MintCandles;

/// A finished mint and what its rows cost.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMint {
    /// The mint's candles inside its requested ranges, sorted by time, no duplicate times.
    pub candles: MintCandles,
    /// Rows received for the mint (including those outside its ranges and duplicates).
    pub rows_fetched: u64,
    /// Rows dropped because their (mint, ts) came already.
    pub duplicates_dropped: u64,
    /// Per UTC day, the rows received inside the requested ranges and their largest version, in day order:
    /// what the day's source fingerprint is made of. Empty unless the query read versions
    /// ([`crate::source::clickhouse::CandleSource::with_row_versions`]).
    pub day_rows: Vec<DayRows>,
}

/// One mint's rows of one UTC day, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRows {
    /// Days since 1970-01-01.
    pub day: u32,
    /// Rows received, duplicates included (what `count()` under `FINAL` counts).
    pub rows: u64,
    /// The largest version (`ingested_at`, epoch seconds) of those rows.
    pub max_version: u32,
}

impl FetchedMint {
    /// A mint without candles.
    pub fn empty(mint: &str) -> Self {
        Self {
            candles: MintCandles::new(mint),
            rows_fetched: 0,
            duplicates_dropped: 0,
            day_rows: Vec::new(),
        }
    }

    /// Counts a row received at `ts_s` with `version` (rows come in time order).
    pub fn note_row(&mut self, ts_s: u32, version: u32) {
        let day = ts_s / 86_400;
        match self.day_rows.last_mut() {
            Some(d) if d.day == day => {
                d.rows += 1;
                d.max_version = d.max_version.max(version);
            }
            _ => self.day_rows.push(DayRows {
                day,
                rows: 1,
                max_version: version,
            }),
        }
    }

    /// Adds the rows of a later part of the same mint (its next ranges, read by another pass).
    pub fn append(&mut self, later: FetchedMint) {
        self.candles.append(later.candles);
        self.rows_fetched += later.rows_fetched;
        self.duplicates_dropped += later.duplicates_dropped;
        let mut days = later.day_rows.into_iter();
        if let (Some(last), Some(first)) = (self.day_rows.last_mut(), days.as_slice().first()) {
            if last.day == first.day {
                last.rows += first.rows;
                last.max_version = last.max_version.max(first.max_version);
                days.next();
            }
        }
        self.day_rows.extend(days);
    }

    /// What fetching it cost.
    pub fn stats(&self) -> FetchStats {
        FetchStats {
            rows_fetched: self.rows_fetched,
            duplicates_dropped: self.duplicates_dropped,
            retries: 0,
        }
    }
}

/// The error for a consumer that went away (it failed; its own error is the one to report).
pub fn consumer_gone() -> LakeError {
    LakeError::internal("the candle consumer stopped before the fetch finished")
}
