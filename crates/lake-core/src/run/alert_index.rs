//! A run's alerts with their windows, indexed by mint: what the run asks the source for, and what its filter
//! looks up as each mint arrives.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::run::config::RunSettings;
use crate::spec::alert::Alert;
use crate::spec::fetch_plan::{plan_mints, MintRanges, TimeRange};
use crate::spec::window::{compute_window_slice, WindowSlice};

/// Alerts and their windows, shared read-only by the sink.
pub(crate) struct AlertIndex {
    /// The alerts, in input order.
    pub alerts: Vec<Alert>,
    /// `windows[i]` is the window of `alerts[i]`.
    pub windows: Vec<WindowSlice>,
    /// Indexes into `alerts` of each mint's alerts.
    pub by_mint: BTreeMap<String, Vec<usize>>,
}

impl AlertIndex {
    /// Computes every alert's window.
    pub fn build(alerts: Vec<Alert>, settings: &RunSettings) -> Result<Self> {
        let windows = alerts
            .iter()
            .map(|a| {
                compute_window_slice(
                    a.ts_ms,
                    settings.interval.seconds(),
                    settings.window.pre,
                    settings.window.post,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut by_mint: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, a) in alerts.iter().enumerate() {
            by_mint.entry(a.mint.clone()).or_default().push(i);
        }
        Ok(Self {
            alerts,
            windows,
            by_mint,
        })
    }

    /// Per mint, the merged time ranges of its windows.
    pub fn plan(&self) -> Vec<MintRanges> {
        let per_mint: BTreeMap<String, Vec<TimeRange>> = self
            .by_mint
            .iter()
            .map(|(mint, idxs)| {
                let ranges = idxs
                    .iter()
                    .map(|&i| (self.windows[i].start_ms, self.windows[i].end_ms))
                    .collect();
                (mint.clone(), ranges)
            })
            .collect();
        plan_mints(per_mint)
    }
}
