//! The feed: which source an export reads (a ClickHouse server or the lake's own corpus) and what it asks for.
//! Every source hands out [`FetchedMint`]s, one at a time, in mint order.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::{LakeError, Result};
use crate::source::clickhouse::read_order::ReadOrder;
use crate::source::clickhouse::CandleSource;
use crate::source::corpus::CorpusSource;
use crate::source::fetched_mint::{consumer_gone, FetchedMint};
use crate::spec::fetch_plan::{group_by_bucket, MintRanges};
use crate::task::blocking::blocking;
use crate::task::cancel::CancelFlag;

/// Where candles come from.
pub enum CandleFeed {
    /// A ClickHouse server.
    ClickHouse(Box<CandleSource>),
    /// The lake's own sealed corpus.
    Corpus(Arc<CorpusSource>),
}

/// What to fetch.
#[derive(Debug, Clone)]
pub enum FetchRequest {
    /// These mints (sorted, unique), each within its ranges; every one is handed to the sink, even if empty.
    Mints(Vec<MintRanges>),
    /// Every mint with candles in `[start_ms, end_ms)`.
    Range(i64, i64),
}

impl CandleFeed {
    /// Sends the requested mints, in order, to `tx`.
    pub(crate) async fn fetch(
        &self,
        request: &FetchRequest,
        order: &ReadOrder,
        depth: usize,
        cancel: &CancelFlag,
        tx: &mpsc::Sender<FetchedMint>,
    ) -> Result<()> {
        match (self, request) {
            (Self::ClickHouse(source), FetchRequest::Mints(plan)) => {
                source.fetch_mints(plan, order, depth, cancel, tx).await
            }
            (Self::ClickHouse(source), FetchRequest::Range(start, end)) => {
                source
                    .fetch_range((*start, *end), order, depth, cancel, tx)
                    .await
            }
            (Self::Corpus(corpus), FetchRequest::Mints(plan)) => {
                for request in group_by_bucket(plan) {
                    let (corpus, cancel) = (corpus.clone(), cancel.clone());
                    let mints = blocking(move || corpus.fetch_bucket(&request, &cancel)).await?;
                    for m in mints {
                        tx.send(m).await.map_err(|_| consumer_gone())?;
                    }
                }
                Ok(())
            }
            (Self::Corpus(_), FetchRequest::Range(..)) => Err(LakeError::internal(
                "the corpus is read by mint, never by time range",
            )),
        }
    }

    /// The order to read in first: the cheapest this source promises.
    pub(crate) fn first_order(&self) -> ReadOrder {
        match self {
            Self::ClickHouse(source) => source.order.clone(),
            Self::Corpus(_) => ReadOrder::Key,
        }
    }

    /// ClickHouse requests this feed has made again so far (0 for the corpus, which is read from disk).
    pub(crate) fn retries(&self) -> u64 {
        match self {
            Self::ClickHouse(source) => source.conn.retrier().count(),
            Self::Corpus(_) => 0,
        }
    }

    /// The order to fall back to when a trusted order broke (`None`: the source cannot sort).
    pub(crate) fn sorted_order(&self) -> Option<ReadOrder> {
        match self {
            Self::ClickHouse(source) => Some(source.schema.sorted_order()),
            Self::Corpus(_) => None,
        }
    }
}
