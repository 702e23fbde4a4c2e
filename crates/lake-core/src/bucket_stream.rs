//! Driving an export's fetches: a few concurrent streams over contiguous bucket ranges, each bucket handed to
//! the caller's consumer as soon as it is complete, while the stream goes on fetching the next.

use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::cancel::CancelFlag;
use crate::clickhouse_source::fetch::consumer_gone;
use crate::clickhouse_source::{CandleSource, FetchedBucket};
use crate::corpus_source::CorpusSource;
use crate::error::{LakeError, Result};
use crate::fetch_plan::BucketRequest;
use crate::worker::blocking;
use std::sync::Mutex;

/// Where candles come from.
pub enum BucketFeed {
    /// A ClickHouse server.
    ClickHouse(Box<CandleSource>),
    /// The lake's own sealed corpus.
    Corpus(Arc<CorpusSource>),
}

impl BucketFeed {
    async fn fetch_group(
        &self,
        group: Vec<BucketRequest>,
        tx: mpsc::Sender<FetchedBucket>,
        cancel: &CancelFlag,
    ) -> Result<()> {
        match self {
            Self::ClickHouse(source) => source.fetch_group(&group, &tx, cancel).await,
            Self::Corpus(source) => {
                for request in group {
                    let (source, cancel) = (source.clone(), cancel.clone());
                    let bucket = blocking(move || source.fetch_bucket(&request, &cancel)).await?;
                    tx.send(bucket).await.map_err(|_| consumer_gone())?;
                }
                Ok(())
            }
        }
    }
}

/// Splits the plan (sorted by bucket) into at most `streams` contiguous groups holding similar numbers of mints.
pub fn group_plan(plan: Vec<BucketRequest>, streams: usize) -> Vec<Vec<BucketRequest>> {
    let total: usize = plan.iter().map(|b| b.mints.len()).sum();
    let per_group = total.div_ceil(streams.max(1)).max(1);
    let mut groups: Vec<Vec<BucketRequest>> = Vec::new();
    let mut size = 0;
    for request in plan {
        if groups.is_empty() || size >= per_group {
            groups.push(Vec::new());
            size = 0;
        }
        size += request.mints.len();
        groups.last_mut().expect("a group exists").push(request);
    }
    groups
}

/// Receives one stream's candles, bucket by bucket: `begin`, then the bucket's mints in order over one or more
/// `add` calls, then `end`. Runs on a blocking thread, so it may encode and write directly.
pub trait BucketSink: Send + 'static {
    /// What a finished bucket yields.
    type Output: Send + 'static;
    /// A new bucket starts.
    fn begin(&mut self, bucket: u8) -> Result<()>;
    /// The next finished mints of the current bucket.
    fn add(&mut self, piece: FetchedBucket) -> Result<()>;
    /// The current bucket is complete.
    fn end(&mut self) -> Result<Self::Output>;
}

/// Hands every piece of one stream to a sink, turning bucket changes into `begin`/`end`.
fn drain_into<S: BucketSink>(
    mut sink: S,
    mut rx: mpsc::Receiver<FetchedBucket>,
) -> Result<Vec<S::Output>> {
    let mut outputs = Vec::new();
    let mut current: Option<u8> = None;
    while let Some(piece) = rx.blocking_recv() {
        if current != Some(piece.bucket) {
            if current.is_some() {
                outputs.push(sink.end()?);
            }
            sink.begin(piece.bucket)?;
            current = Some(piece.bucket);
        }
        sink.add(piece)?;
    }
    if current.is_some() {
        outputs.push(sink.end()?);
    }
    Ok(outputs)
}

/// Fetches every bucket of the plan through `streams` concurrent streams; each stream's mints go, as soon as they
/// are complete, to a sink of its own (from `make_sink`) on a blocking thread, so memory holds a few mints per
/// stream rather than whole buckets. Results come back in bucket order. The first failure cancels the rest and is
/// the one reported.
pub async fn for_each_bucket<S, F>(
    feed: Arc<BucketFeed>,
    plan: Vec<BucketRequest>,
    streams: usize,
    cancel: &CancelFlag,
    make_sink: F,
) -> Result<Vec<S::Output>>
where
    S: BucketSink,
    F: Fn() -> S + Clone + Send + 'static,
{
    let groups = group_plan(plan, streams);
    // The first failure is the cause; everything after it is a consequence (cancelled streams, a channel whose
    // other end went away), so the first one recorded is the one reported.
    let first_failure: Arc<Mutex<Option<LakeError>>> = Arc::default();
    let fail = {
        let (first_failure, cancel) = (first_failure.clone(), cancel.clone());
        move |err: LakeError| -> LakeError {
            if let Ok(mut slot) = first_failure.lock() {
                slot.get_or_insert_with(|| err.clone());
            }
            cancel.cancel();
            err
        }
    };
    let outcome: Result<Vec<Vec<S::Output>>> = stream::iter(groups)
        .map(|group| {
            let (feed, make_sink, cancel, fail) = (
                feed.clone(),
                make_sink.clone(),
                cancel.clone(),
                fail.clone(),
            );
            async move {
                let (tx, rx) = mpsc::channel::<FetchedBucket>(PIECES_IN_FLIGHT);
                let producer = async { feed.fetch_group(group, tx, &cancel).await.map_err(&fail) };
                let consumer = async {
                    blocking(move || drain_into(make_sink(), rx))
                        .await
                        .map_err(&fail)
                };
                let (produced, consumed) = tokio::join!(producer, consumer);
                produced?;
                consumed
            }
        })
        .buffered(streams.max(1))
        .try_collect()
        .await;
    match outcome {
        Ok(per_group) => Ok(per_group.into_iter().flatten().collect()),
        Err(err) => Err(first_failure
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or(err)),
    }
}

/// Pieces (finished mints) queued between a stream and its sink.
const PIECES_IN_FLIGHT: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_plan::MintRanges;

    #[test]
    fn groups_are_contiguous_and_balanced() {
        let plan: Vec<BucketRequest> = (0..10u8)
            .map(|b| BucketRequest {
                bucket: b,
                mints: vec![MintRanges::new(format!("m{b}"), vec![(0, 1)]); (b % 3 + 1) as usize],
            })
            .collect();
        let groups = group_plan(plan.clone(), 4);
        assert!(groups.len() <= 4);
        let flat: Vec<u8> = groups.iter().flatten().map(|b| b.bucket).collect();
        assert_eq!(flat, (0..10).collect::<Vec<_>>());
        assert_eq!(group_plan(plan.clone(), 1).len(), 1);
        assert_eq!(group_plan(plan, 100).len(), 10);
        assert!(group_plan(Vec::new(), 4).is_empty());
    }
}
