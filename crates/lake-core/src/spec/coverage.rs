//! Per-alert coverage (docs/lake-format.md, "Coverage"): how many candles each window really has, its status, and the strict-mode filter.

use crate::spec::alert::Alert;
use crate::spec::candles::MintCandles;
use crate::spec::window::{WindowSlice, WindowSpec};

/// How complete an alert's window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageStatus {
    /// Enough candles before the anchor and in total (the last slot may be missing).
    Complete,
    /// Some candles, but not enough.
    Partial,
    /// No candles at all.
    Insufficient,
}

impl CoverageStatus {
    /// The `status` column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Insufficient => "insufficient",
        }
    }
}

/// What decides `status` and, in strict mode, `kept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoveragePolicy {
    /// The window spec.
    pub window: WindowSpec,
    /// Drop alerts that miss the thresholds below.
    pub strict: bool,
    /// Strict mode: candles needed before the anchor.
    pub min_required_pre: u32,
    /// Strict mode: candles needed in total.
    pub target_total: u32,
}

/// The candle counts of one alert's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCoverage {
    /// Candles before the anchor.
    pub pre: u32,
    /// Candles at or after the anchor.
    pub post: u32,
    /// First candle time in the window.
    pub first_ts_ms: Option<i64>,
    /// Last candle time in the window.
    pub last_ts_ms: Option<i64>,
}

impl WindowCoverage {
    /// Counts the candles of `candles` inside `window`.
    pub fn count(candles: &MintCandles, window: &WindowSlice) -> Self {
        let range = candles.range(window.start_ms, window.end_ms);
        let ts = &candles.ts_ms[range];
        let pre = ts.partition_point(|&t| t < window.anchor_ms);
        Self {
            pre: pre as u32,
            post: (ts.len() - pre) as u32,
            first_ts_ms: ts.first().copied(),
            last_ts_ms: ts.last().copied(),
        }
    }

    /// `pre + post`.
    pub fn total(&self) -> u32 {
        self.pre + self.post
    }

    /// Status by the parity rule: complete when `pre >= pre_candles` and `total >= pre_candles + post_candles`.
    pub fn status(&self, window: WindowSpec) -> CoverageStatus {
        if self.total() == 0 {
            CoverageStatus::Insufficient
        } else if self.pre >= window.pre
            && u64::from(self.total()) >= u64::from(window.pre) + u64::from(window.post)
        {
            CoverageStatus::Complete
        } else {
            CoverageStatus::Partial
        }
    }

    /// Whether the alert stays in the run: always outside strict mode.
    pub fn kept(&self, policy: &CoveragePolicy) -> bool {
        !policy.strict
            || (self.pre >= policy.min_required_pre && self.total() >= policy.target_total)
    }
}

/// One row of `outputs/coverage.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRow {
    /// The alert's id.
    pub alert_id: String,
    /// The token.
    pub mint: String,
    /// Alert time floored to the interval.
    pub anchor_ts_ms: i64,
    /// Counts and bounds.
    pub coverage: WindowCoverage,
    /// Status by the parity rule.
    pub status: CoverageStatus,
    /// False when strict mode dropped the alert.
    pub kept: bool,
}

impl CoverageRow {
    /// The row of one alert.
    pub fn new(
        alert: &Alert,
        window: &WindowSlice,
        coverage: WindowCoverage,
        policy: &CoveragePolicy,
    ) -> Self {
        Self {
            alert_id: alert.id.clone(),
            mint: alert.mint.clone(),
            anchor_ts_ms: window.anchor_ms,
            coverage,
            status: coverage.status(policy.window),
            kept: coverage.kept(policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::window::compute_window_slice;

    const ANCHOR: i64 = 1_609_459_200_000;

    fn candles(from_min: i64, to_min_inclusive: i64) -> MintCandles {
        let mut c = MintCandles::new("m");
        for m in from_min..=to_min_inclusive {
            c.push(ANCHOR + m * 60_000, [1.0, 2.0, 0.5, 1.5, 10.0]);
        }
        c
    }

    fn policy(pre: u32, post: u32) -> CoveragePolicy {
        CoveragePolicy {
            window: WindowSpec { pre, post },
            strict: false,
            min_required_pre: 52,
            target_total: 5000,
        }
    }

    #[test]
    fn spec_vector_partial() {
        // 100 candles before the anchor and 200 from it; pre52_post4948 keeps 52 of the 100 before.
        let c = candles(-100, 199);
        let w = compute_window_slice(ANCHOR, 60, 52, 4948).unwrap();
        let cov = WindowCoverage::count(&c, &w);
        assert_eq!((cov.pre, cov.post, cov.total()), (52, 200, 252));
        assert_eq!(cov.status(policy(52, 4948).window), CoverageStatus::Partial);
    }

    #[test]
    fn spec_vectors_complete() {
        let w = compute_window_slice(ANCHOR, 60, 10, 20).unwrap();
        let cov = WindowCoverage::count(&candles(-10, 20), &w);
        assert_eq!((cov.pre, cov.post, cov.total()), (10, 21, 31));
        assert_eq!(
            cov.status(WindowSpec { pre: 10, post: 20 }),
            CoverageStatus::Complete
        );
        let cov = WindowCoverage::count(&candles(-10, 19), &w);
        assert_eq!((cov.pre, cov.post, cov.total()), (10, 20, 30));
        assert_eq!(
            cov.status(WindowSpec { pre: 10, post: 20 }),
            CoverageStatus::Complete
        );
        assert_eq!(cov.first_ts_ms, Some(ANCHOR - 600_000));
        assert_eq!(cov.last_ts_ms, Some(ANCHOR + 19 * 60_000));
    }

    #[test]
    fn insufficient_and_edge_cases() {
        let w = compute_window_slice(ANCHOR, 60, 10, 20).unwrap();
        let cov = WindowCoverage::count(&MintCandles::new("m"), &w);
        assert_eq!(
            cov.status(WindowSpec { pre: 10, post: 20 }),
            CoverageStatus::Insufficient
        );
        assert_eq!((cov.first_ts_ms, cov.last_ts_ms), (None, None));
        // Candles only outside the window do not count; the end is exclusive.
        let cov = WindowCoverage::count(&candles(21, 30), &w);
        assert_eq!(cov.total(), 0);
        // Nine before the anchor is partial even with a full post side.
        let cov = WindowCoverage::count(&candles(-9, 20), &w);
        assert_eq!(
            cov.status(WindowSpec { pre: 10, post: 20 }),
            CoverageStatus::Partial
        );
    }

    #[test]
    fn strict_mode_keeps_by_thresholds() {
        let w = compute_window_slice(ANCHOR, 60, 10, 20).unwrap();
        let cov = WindowCoverage::count(&candles(-10, 19), &w);
        let mut p = policy(10, 20);
        assert!(cov.kept(&p), "not strict keeps everything");
        p.strict = true;
        p.min_required_pre = 10;
        p.target_total = 30;
        assert!(cov.kept(&p));
        p.target_total = 31;
        assert!(!cov.kept(&p));
        p.target_total = 30;
        p.min_required_pre = 11;
        assert!(!cov.kept(&p));
    }
}
