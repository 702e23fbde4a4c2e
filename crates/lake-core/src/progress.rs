//! Progress reporting: phases and counters, throttled to a few events per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Minimum time between two events of the same phase.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and checking the alerts.
    LoadingAlerts,
    /// Fetching candles and writing bucket files.
    Exporting,
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
    /// Buckets finished.
    pub buckets_done: u32,
    /// Buckets in the plan.
    pub buckets_total: u32,
    /// Candle rows written so far.
    pub rows: u64,
    /// Bytes of data files written so far.
    pub bytes: u64,
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
                    buckets_done: 0,
                    buckets_total: 0,
                    rows: 0,
                    bytes: 0,
                },
                last_sent: None,
            })),
            callback,
        }
    }

    /// Enters a phase; always reported.
    pub fn phase(&self, phase: Phase, buckets_total: Option<u32>) {
        self.update(true, |e| {
            e.phase = phase;
            if let Some(total) = buckets_total {
                e.buckets_total = total;
            }
        });
    }

    /// Adds a finished bucket's rows and bytes; reported when the last event is old enough.
    pub fn bucket_done(&self, rows: u64, bytes: u64) {
        self.update(false, |e| {
            e.buckets_done += 1;
            e.rows += rows;
            e.bytes += bytes;
        });
    }

    fn update(&self, force: bool, change: impl FnOnce(&mut ProgressEvent)) {
        let to_send = {
            let Ok(mut state) = self.inner.lock() else {
                return;
            };
            change(&mut state.event);
            let due = state.last_sent.is_none_or(|t| t.elapsed() >= MIN_INTERVAL);
            if force || due {
                state.last_sent = Some(Instant::now());
                Some(state.event)
            } else {
                None
            }
        };
        if let (Some(event), Some(cb)) = (to_send, &self.callback) {
            cb(event);
        }
    }
}
