//! Driving an export's fetch: the feed hands finished mints, one at a time, to a sink running on a blocking
//! thread, which encodes and writes them as they come. Memory holds a few mints per query in flight, never the
//! export.
//!
//! A server trusted to send its key order without `ORDER BY` that breaks it makes the fetch start over, sorted,
//! into a fresh sink: the result never depends on an order the server did not promise.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::{LakeError, Result};
use crate::source::clickhouse::read_order::ReadOrder;
use crate::source::feed::{CandleFeed, FetchRequest};
use crate::source::fetched_mint::{consumer_gone, FetchedMint};
use crate::task::blocking::blocking;
use crate::task::cancel::CancelFlag;

/// Finished mints queued between the fetch and the sink (counted in mints; a mint can hold megabytes).
const MINTS_IN_FLIGHT: usize = 2;

/// Receives an export's mints on a blocking thread: mints of one bucket arrive in increasing order.
pub trait MintSink: Send + 'static {
    /// What the sink yields once every mint was added.
    type Output: Send + 'static;
    /// One finished mint.
    fn add(&mut self, mint: FetchedMint) -> Result<()>;
    /// Every mint was added.
    fn finish(self) -> Result<Self::Output>;
}

/// Fetches `request` into a sink from `make_sink`, `depth` queries in flight, and returns what the sink yields.
/// If the server breaks an order it was trusted with, the sink is dropped and the fetch starts over sorted,
/// into a new sink (`make_sink` must start from a clean slate each time).
pub async fn fetch_into<S: MintSink>(
    feed: Arc<CandleFeed>,
    request: Arc<FetchRequest>,
    depth: usize,
    cancel: &CancelFlag,
    mut make_sink: impl FnMut() -> Result<S>,
) -> Result<S::Output> {
    let mut order = feed.first_order();
    loop {
        let sink = make_sink()?;
        match fetch_once(&feed, &request, &order, depth, cancel, sink).await {
            Err(e) if e.is_unordered_answer() && order.trusted() => match feed.sorted_order() {
                Some(sorted) => order = sorted,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// States of a fetch, as its sink sees them.
const RUNNING: u8 = 0;
const COMPLETED: u8 = 1;
const FAILED: u8 = 2;

/// The error of a sink whose fetch failed (the fetch's own error is the one reported).
fn fetch_stopped() -> LakeError {
    LakeError::internal("the fetch stopped before its end")
}

async fn fetch_once<S: MintSink>(
    feed: &CandleFeed,
    request: &FetchRequest,
    order: &ReadOrder,
    depth: usize,
    cancel: &CancelFlag,
    mut sink: S,
) -> Result<S::Output> {
    let (tx, mut rx) = mpsc::channel::<FetchedMint>(MINTS_IN_FLIGHT);
    // Set before the channel closes: the sink can tell a completed fetch from a failed one, never finishes
    // (writes footers, seals) on a partial stream, and stops at once instead of working through queued mints.
    let outcome = Arc::new(AtomicU8::new(RUNNING));
    let producer = {
        let outcome = outcome.clone();
        async move {
            let fetched = feed.fetch(request, order, depth, cancel, &tx).await;
            let end = if fetched.is_ok() { COMPLETED } else { FAILED };
            outcome.store(end, Ordering::SeqCst);
            drop(tx);
            fetched
        }
    };
    let consumer = blocking(move || {
        while let Some(m) = rx.blocking_recv() {
            if outcome.load(Ordering::SeqCst) == FAILED {
                return Err(fetch_stopped());
            }
            sink.add(m)?;
        }
        if outcome.load(Ordering::SeqCst) == COMPLETED {
            sink.finish()
        } else {
            Err(fetch_stopped())
        }
    });
    let (fetched, consumed) = tokio::join!(producer, consumer);
    // The first cause wins: a failed fetch explains a sink that saw no end; a failed sink explains a fetch
    // whose channel closed.
    match (fetched, consumed) {
        (Ok(()), consumed) => consumed,
        (Err(e), Err(sink_error)) if e.message() == consumer_gone().message() => Err(sink_error),
        (Err(e), _) => Err(e),
    }
}
