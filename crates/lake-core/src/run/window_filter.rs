//! The run's mint filter: counts each alert's coverage as its mint arrives and keeps the candles of the windows
//! strict mode keeps.

use std::ops::Range;
use std::sync::Arc;

use crate::pipeline::part_sink::MintFilter;
use crate::run::alert_index::AlertIndex;
use crate::spec::candles::MintCandles;
use crate::spec::coverage::{CoveragePolicy, WindowCoverage};

/// Counts coverage and keeps the kept windows' candles.
pub(crate) struct WindowFilter {
    index: Arc<AlertIndex>,
    policy: CoveragePolicy,
    coverage: Vec<(usize, WindowCoverage)>,
}

impl WindowFilter {
    /// A filter over the run's alerts.
    pub fn new(index: Arc<AlertIndex>, policy: CoveragePolicy) -> Self {
        Self {
            index,
            policy,
            coverage: Vec::new(),
        }
    }
}

impl MintFilter for WindowFilter {
    /// The coverage of every alert whose mint arrived, by alert index.
    type Output = Vec<(usize, WindowCoverage)>;

    fn keep(&mut self, candles: MintCandles) -> Option<MintCandles> {
        let alert_idxs = self.index.by_mint.get(&candles.mint)?;
        let mut keep: Vec<Range<usize>> = Vec::new();
        for &i in alert_idxs {
            let window = &self.index.windows[i];
            let cov = WindowCoverage::count(&candles, window);
            if cov.kept(&self.policy) {
                keep.push(candles.range(window.start_ms, window.end_ms));
            }
            self.coverage.push((i, cov));
        }
        let keep = merge_index_ranges(keep);
        // Usually every fetched candle lies in a kept window (the fetch reads only the windows): no copy then.
        if keep.len() == 1 && keep[0] == (0..candles.len()) {
            Some(candles)
        } else {
            Some(candles.select(&keep))
        }
    }

    fn finish(self) -> Self::Output {
        self.coverage
    }
}

/// Sorted, non-empty, non-overlapping ranges covering the same indexes (touching ranges join).
fn merge_index_ranges(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_they_overlap_or_touch() {
        assert_eq!(merge_index_ranges(vec![]), Vec::<Range<usize>>::new());
        assert_eq!(
            merge_index_ranges(vec![5..9, 0..3, 3..4, 8..12, 20..20]),
            [0..4, 5..12]
        );
        let nested = merge_index_ranges(vec![2..6, 3..4]);
        assert_eq!((nested.len(), nested[0].clone()), (1, 2..6));
        assert_eq!(merge_index_ranges(vec![0..1, 2..3]), [0..1, 2..3]);
    }
}
