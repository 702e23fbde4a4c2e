//! Publishing sealed days behind the export. In an object store a day's publish is its upload and commit; it
//! runs while the next days are fetched and written instead of before, one day at a time and in day order (each
//! day's manifest last, as always). Up to a batch of sealed days waits on local disk for its upload, so the
//! upload of one batch overlaps the read of the next. On disk a publish is a rename and runs in place.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{LakeError, Result};
use crate::pipeline::progress::Progress;

/// Set to `serial` to upload each day before the next is exported (the benchmark's comparison).
const UPLOAD_MODE_VARIABLE: &str = "QUANTBOT_LAKE_UPLOAD";

/// One day's publish: says whether the day now has its `manifest.json`.
type Job = Box<dyn FnOnce() -> Result<bool> + Send + 'static>;

/// What the publishes came to.
#[derive(Default)]
struct Done {
    sealed: BTreeMap<NaiveDate, bool>,
    failed: Option<LakeError>,
}

/// The days being published and those done.
pub(crate) struct Publisher {
    progress: Progress,
    done: Arc<Mutex<Done>>,
    queue: Mutex<Option<mpsc::Sender<(NaiveDate, Job)>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Publisher {
    /// Publishes behind the export, with up to `waiting` sealed days queued, for a lake in an object store
    /// (unless `QUANTBOT_LAKE_UPLOAD=serial`); in place for one on disk.
    pub fn new(remote: bool, waiting: usize, progress: Progress) -> Self {
        let serial = std::env::var(UPLOAD_MODE_VARIABLE).is_ok_and(|v| v == "serial");
        let done = Arc::new(Mutex::new(Done::default()));
        let (queue, worker) = if remote && !serial {
            let (tx, rx) = mpsc::channel(waiting.max(1));
            let worker = tokio::spawn(publish_in_order(rx, done.clone(), progress.clone()));
            (Some(tx), Some(worker))
        } else {
            (None, None)
        };
        Self {
            progress,
            done,
            queue: Mutex::new(queue),
            worker: Mutex::new(worker),
        }
    }

    /// Publishes `day` with `publish` on the blocking pool after the days before it; returns once it is queued
    /// (waiting while the queue is full) or, in place, done. An earlier day's failed publish fails this call.
    pub async fn publish(
        &self,
        day: NaiveDate,
        publish: impl FnOnce() -> Result<bool> + Send + 'static,
    ) -> Result<()> {
        self.failure()?;
        let queue = self.queue.lock().ok().and_then(|q| q.clone());
        let Some(queue) = queue else {
            let sealed = run(Box::new(publish)).await?;
            record(&self.done, day, sealed, &self.progress);
            return Ok(());
        };
        if queue.send((day, Box::new(publish))).await.is_err() {
            // The worker stopped at a failure: it is the one to report.
            self.failure()?;
        }
        Ok(())
    }

    /// Waits for every queued day to be published: the first failure is the export's. The days before it stay
    /// published; those after it are dropped unpublished (their staging removed).
    pub async fn finish(&self) -> Result<()> {
        drop(self.queue.lock().ok().and_then(|mut q| q.take()));
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            worker
                .await
                .map_err(|e| LakeError::internal(format!("the upload task failed: {e}")))?;
        }
        self.failure()
    }

    /// Whether `day`, published by this export and [`Publisher::finish`]ed, has its `manifest.json`.
    pub fn sealed(&self, day: NaiveDate) -> bool {
        self.done
            .lock()
            .is_ok_and(|done| done.sealed.get(&day).copied().unwrap_or(false))
    }

    fn failure(&self) -> Result<()> {
        match self.done.lock().ok().and_then(|d| d.failed.clone()) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

async fn run(job: Job) -> Result<bool> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| LakeError::internal(format!("a worker thread failed: {e}")))?
}

fn record(done: &Mutex<Done>, day: NaiveDate, sealed: bool, progress: &Progress) {
    if let Ok(mut done) = done.lock() {
        done.sealed.insert(day, sealed);
    }
    progress.day_done();
}

/// The worker: publishes the queued days one by one; after a failure, drops the rest unpublished.
async fn publish_in_order(
    mut queue: mpsc::Receiver<(NaiveDate, Job)>,
    done: Arc<Mutex<Done>>,
    progress: Progress,
) {
    while let Some((day, job)) = queue.recv().await {
        match run(job).await {
            Ok(sealed) => record(&done, day, sealed, &progress),
            Err(err) => {
                if let Ok(mut done) = done.lock() {
                    done.failed = Some(err);
                }
                queue.close();
                while queue.recv().await.is_some() {}
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::time::Duration;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, d).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn days_are_published_one_at_a_time_in_order_behind_the_export() {
        let publisher = Publisher::new(true, 7, Progress::new(None));
        let log = Arc::new(Mutex::new(Vec::new()));
        for d in 1..=3 {
            let log = log.clone();
            let started = std::time::Instant::now();
            publisher
                .publish(day(d), move || {
                    log.lock().unwrap().push(format!("start {d}"));
                    std::thread::sleep(Duration::from_millis(200));
                    log.lock().unwrap().push(format!("end {d}"));
                    Ok(d != 2)
                })
                .await
                .unwrap();
            // The call returns at once: the upload runs behind it.
            assert!(started.elapsed() < Duration::from_millis(150), "day {d}");
        }
        publisher.finish().await.unwrap();
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
        );
        assert_eq!(
            (1..=3)
                .map(|d| publisher.sealed(day(d)))
                .collect::<Vec<_>>(),
            [true, false, true]
        );
    }

    #[tokio::test]
    async fn a_failed_publish_is_the_exports_failure_and_a_disk_lake_publishes_in_place() {
        let publisher = Publisher::new(true, 7, Progress::new(None));
        let published = Arc::new(Mutex::new(Vec::new()));
        for d in 1..=3 {
            let published = published.clone();
            let queued = publisher
                .publish(day(d), move || {
                    std::thread::sleep(Duration::from_millis(50));
                    if d == 2 {
                        return Err(LakeError::new(ErrorCode::ObjectStore, "upload failed"));
                    }
                    published.lock().unwrap().push(d);
                    Ok(true)
                })
                .await;
            assert!(queued.is_ok(), "queued before the failure is known");
        }
        let err = publisher.finish().await.unwrap_err();
        assert_eq!(err.message(), "upload failed");
        assert_eq!(
            *published.lock().unwrap(),
            [1],
            "the day after the failure is dropped"
        );
        let err = publisher.publish(day(4), || Ok(true)).await.unwrap_err();
        assert_eq!(err.message(), "upload failed");

        let in_place = Publisher::new(false, 7, Progress::new(None));
        let err = in_place
            .publish(day(1), || Err(LakeError::new(ErrorCode::Io, "disk full")))
            .await
            .unwrap_err();
        assert_eq!(err.message(), "disk full");
    }
}
