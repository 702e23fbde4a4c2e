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
}

impl FetchedMint {
    /// A mint without candles.
    pub fn empty(mint: &str) -> Self {
        Self {
            candles: MintCandles::new(mint),
            rows_fetched: 0,
            duplicates_dropped: 0,
        }
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
