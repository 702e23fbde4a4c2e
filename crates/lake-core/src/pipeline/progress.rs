//! Progress reporting: phases and counters, throttled to a few events per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::source::clickhouse::{RetryNotice, RetryObserver};

/// Minimum time between two events of the same phase.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and checking the alerts.
    LoadingAlerts,
    /// Fetching candles and writing bucket files.
    Exporting,
    /// Closing the bucket files.
    Finishing,
    /// Writing coverage and manifest, then publishing.
    Sealing,
    /// Published.
    Done,
}

impl Phase {
    /// The phase name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadingAlerts => "loading_alerts",
            Self::Exporting => "exporting",
            Self::Finishing => "finishing",
            Self::Sealing => "sealing",
            Self::Done => "done",
        }
    }
}

/// One progress event; counters never decrease during an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Current phase.
    pub phase: Phase,
    /// Mints whose candles are written.
    pub mints_done: u64,
    /// Mints in the plan; 0 when not known in advance (a corpus day lists its mints as it reads them).
    pub mints_total: u64,
    /// Candle rows written so far.
    pub rows: u64,
    /// Bytes of finished data files.
    pub bytes: u64,
    /// The corpus day being written (`None` in a run).
    pub day: Option<chrono::NaiveDate>,
    /// Corpus days sealed by this export so far.
    pub days_done: u64,
    /// Corpus days this export writes (skipped days not counted); 0 in a run.
    pub days_total: u64,
    /// Set on the one event that reports a retry of a request (docs/lake-format.md, "Retries").
    pub retry: Option<RetryNotice>,
}

impl ProgressEvent {
    /// The corpus day being written, `YYYY-MM-DD`.
    pub fn day_label(&self) -> Option<String> {
        self.day.map(crate::lake::layout::day_label)
    }
}

/// Receives progress events.
pub type ProgressCallback = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Collects counters from concurrent workers and forwards throttled events.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<State>>,
    callback: Option<ProgressCallback>,
}

struct State {
    event: ProgressEvent,
    last_sent: Option<Instant>,
}

impl Progress {
    /// A reporter that sends to `callback` (or nowhere).
    pub fn new(callback: Option<ProgressCallback>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                event: ProgressEvent {
                    phase: Phase::LoadingAlerts,
                    mints_done: 0,
                    mints_total: 0,
                    rows: 0,
                    bytes: 0,
                    day: None,
                    days_done: 0,
                    days_total: 0,
                    retry: None,
                },
                last_sent: None,
            })),
            callback,
        }
    }

    /// Enters a phase; always reported. `mints_total` adds to the mints planned (corpus days add up).
    pub fn phase(&self, phase: Phase, mints_total: Option<u64>) {
        self.update(true, |e| {
            e.phase = phase;
            if let Some(total) = mints_total {
                e.mints_total += total;
            }
        });
    }

    /// Adds a written mint and its rows; reported when the last event is old enough.
    pub fn mint_done(&self, rows: u64) {
        self.update(false, |e| {
            e.mints_done += 1;
            e.rows += rows;
        });
    }

    /// Sets how many corpus days this export writes; always reported.
    pub fn days_planned(&self, days: u64) {
        self.update(true, |e| e.days_total = days);
    }

    /// A corpus day starts being written; always reported.
    pub fn day_started(&self, day: chrono::NaiveDate) {
        self.update(true, |e| e.day = Some(day));
    }

    /// A corpus day is sealed.
    pub fn day_done(&self) {
        self.update(false, |e| e.days_done += 1);
    }

    /// A request to ClickHouse or the object store is about to be made again; always reported, once.
    pub fn retrying(&self, notice: RetryNotice) {
        self.update(true, |e| e.retry = Some(notice));
    }

    /// What the ClickHouse source and the object store call on every retry: [`Progress::retrying`].
    pub fn retry_observer(&self) -> RetryObserver {
        let progress = self.clone();
        Arc::new(move |notice| progress.retrying(notice))
    }

    /// Adds the bytes of finished files.
    pub fn files_done(&self, bytes: u64) {
        self.update(false, |e| e.bytes += bytes);
    }

    fn update(&self, force: bool, change: impl FnOnce(&mut ProgressEvent)) {
        let to_send = {
            let Ok(mut state) = self.inner.lock() else {
                return;
            };
            change(&mut state.event);
            let due = state.last_sent.is_none_or(|t| t.elapsed() >= MIN_INTERVAL);
            let event = (force || due).then(|| {
                state.last_sent = Some(Instant::now());
                state.event
            });
            // A retry is told once, on the event that reports it (always sent), and on no later one.
            state.event.retry = None;
            event
        };
        if let (Some(event), Some(cb)) = (to_send, &self.callback) {
            cb(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Transient;

    #[test]
    fn a_retry_is_told_on_one_event_and_no_later_one() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let progress = Progress::new(Some(Arc::new(move |e| log.lock().unwrap().push(e))));
        let notice = RetryNotice {
            server: "clickhouse",
            cause: Transient::ConnectionLost,
            retry: 1,
            retries: 5,
            wait: Duration::from_millis(500),
        };
        progress.retry_observer()(notice);
        progress.phase(Phase::Exporting, None);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter().map(|e| e.retry).collect::<Vec<_>>(),
            vec![Some(notice), None]
        );
    }
}
