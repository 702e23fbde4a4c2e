//! Fetching candles from ClickHouse: queries over consecutive mints in key order, a few in flight, every mint
//! handed on (in mint order) as soon as its rows are complete.
//!
//! ```text
//!   plan (mints, sorted) ──split_passes──▶ pass 0: chunk, chunk, …  ──┐
//!                                          pass 1: chunk, …         ──┼─ merge per mint ─▶ consumer
//!                                          …                         ──┘
//! ```
//! A pass is a sequence of queries (chunks) over consecutive mints; up to `depth` of them are open at once and
//! their answers are read in order (one ahead of its turn waits on its channel, so the server pauses). Passes
//! exist for mints whose windows lie far apart: each part of such a mint is read by its own pass, and the merge
//! joins the parts in time order. The server never sorts or hashes for us, and no query needs memory
//! proportional to the export.
//!
//! A query that fails part-way for a transient reason (`retry`) is asked again for what it has not handed on:
//! mints arrive whole and in key order, so the first mint not yet handed on is where the new query starts, and
//! no candle reaches the consumer twice.

use futures_util::future::try_join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::error::{LakeError, Result};
use crate::lake::manifest::SourceSnapshot;
use crate::source::fetched_mint::{consumer_gone, FetchedMint};
use crate::spec::fetch_plan::{split_passes, MintRanges};
use crate::task::cancel::CancelFlag;

use super::connection::Connection;
use super::day_mints::mints_in_range;
use super::native::{CandleDecoder, Expected};
use super::read_order::ReadOrder;
use super::sql::{mints_query, query_chunks, range_query, seconds_range, CandleQuery};
use super::table_schema::TableSchema;
use crate::task::retry::RetryObserver;

/// A boxed fetch step.
type BoxedFetch<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// Finished mints queued between a query and whoever reads it next (a mint can hold megabytes).
const MINTS_IN_FLIGHT: usize = 2;

/// Where a fetch reads from: the connection, the table's shape, the export's filters and the server's order.
#[derive(Debug, Clone)]
pub struct CandleSource {
    /// The server.
    pub conn: Connection,
    /// The table's engine, key and columns.
    pub schema: TableSchema,
    /// `chain` filter.
    pub chain: String,
    /// `interval_seconds` filter.
    pub interval_s: u32,
    /// The cheapest way this server gives rows in key order.
    pub order: ReadOrder,
    /// The server's time zone (`timezone()`), in which it prints a plain `DateTime`.
    pub time_zone: String,
    /// Read each row's version with it (the expression), so that a day's fingerprint comes from its rows.
    pub row_versions: Option<String>,
}

/// Debug builds only: `QUANTBOT_LAKE_TEST_READ_ORDER=key` trusts the server's order even where it is not
/// promised, so that tests can prove what happens when a trusted order breaks.
fn order_override(order: ReadOrder) -> ReadOrder {
    if cfg!(debug_assertions)
        && std::env::var("QUANTBOT_LAKE_TEST_READ_ORDER").as_deref() == Ok("key")
    {
        return ReadOrder::Key;
    }
    order
}

impl CandleSource {
    /// Connects, reads the server's clock (the snapshot's `as_of`) and version, and checks the table. Every
    /// retry of this source's requests is reported to `retries_to`; `cancel` ends the waits between attempts.
    pub async fn connect(
        config: &super::ClickHouseConfig,
        chain: &str,
        interval_s: u32,
        retries_to: Option<RetryObserver>,
        cancel: &CancelFlag,
    ) -> Result<(Self, SourceSnapshot)> {
        let conn = Connection::new(config.clone())?.for_export(retries_to, cancel.clone());
        let info = conn.server_info().await?;
        let schema = super::load_table_schema(&conn).await?;
        let snapshot = SourceSnapshot::ClickHouse {
            cluster: conn
                .endpoint()
                .split_once("://")
                .map_or(conn.endpoint(), |(_, rest)| rest)
                .to_owned(),
            database: config.database.clone(),
            table: config.table.clone(),
            as_of: crate::lake::manifest::iso_seconds(info.now_epoch_s),
        };
        let order = order_override(schema.read_order(info.major()));
        Ok((
            Self {
                conn,
                schema,
                chain: chain.to_owned(),
                interval_s,
                order,
                time_zone: info.timezone.clone(),
                row_versions: None,
            },
            snapshot,
        ))
    }

    /// This source, reading each row's version with its candles ([`FetchedMint::day_rows`]) where the table's
    /// version column allows it; `None` where it does not (the server then computes fingerprints).
    pub fn with_row_versions(&self) -> Option<Self> {
        let expr = self.schema.row_version_expr()?;
        Some(Self {
            row_versions: Some(expr),
            ..self.clone()
        })
    }

    fn query(&self) -> CandleQuery<'_> {
        CandleQuery {
            conn: &self.conn,
            schema: &self.schema,
            chain: &self.chain,
            interval_s: self.interval_s,
            versions: self.row_versions.as_deref(),
        }
    }

    /// Fetches the plan's mints (sorted), sending one [`FetchedMint`] per mint, in order, to `tx`.
    pub async fn fetch_mints(
        &self,
        plan: &[MintRanges],
        order: &ReadOrder,
        depth: usize,
        cancel: &CancelFlag,
        tx: &mpsc::Sender<FetchedMint>,
    ) -> Result<()> {
        let passes = split_passes(plan);
        if passes.passes.len() <= 1 {
            let pass = passes.passes.first().map_or(&[][..], Vec::as_slice);
            return self.run_pass(pass, order, depth, cancel, tx).await;
        }
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in &passes.passes {
            let (ptx, prx) = mpsc::channel(MINTS_IN_FLIGHT);
            senders.push(ptx);
            receivers.push(prx);
        }
        let producers = try_join_all(passes.passes.iter().zip(senders).map(
            |(pass, ptx)| -> BoxedFetch<'_> {
                Box::pin(async move { self.run_pass(pass, order, depth, cancel, &ptx).await })
            },
        ));
        let merge = async {
            for (m, &parts) in plan.iter().zip(&passes.parts_per_mint) {
                let mut whole: Option<FetchedMint> = None;
                for rx in receivers.iter_mut().take(parts) {
                    let part = rx.recv().await.ok_or_else(consumer_gone)?;
                    if part.candles.mint != m.mint {
                        return Err(LakeError::internal(format!(
                            "a pass answered for {:?} where {:?} was due",
                            part.candles.mint, m.mint
                        )));
                    }
                    whole = Some(match whole {
                        None => part,
                        Some(mut w) => {
                            w.append(part);
                            w
                        }
                    });
                }
                if let Some(w) = whole {
                    tx.send(w).await.map_err(|_| consumer_gone())?;
                }
            }
            Ok::<(), LakeError>(())
        };
        tokio::try_join!(producers, merge)?;
        Ok(())
    }

    /// Fetches every mint with candles in `[start_ms, end_ms)` (a corpus day), in mint order.
    pub async fn fetch_range(
        &self,
        (start_ms, end_ms): (i64, i64),
        order: &ReadOrder,
        depth: usize,
        cancel: &CancelFlag,
        tx: &mpsc::Sender<FetchedMint>,
    ) -> Result<()> {
        let Some(seconds) = seconds_range(start_ms, end_ms) else {
            return Ok(());
        };
        if order.sorts() {
            // A server that sorts must get small queries: learn the day's mints first, then ask for them in
            // bounded chunks.
            let mints = mints_in_range(
                &self.conn,
                &self.schema,
                &self.chain,
                self.interval_s,
                seconds,
                None,
                None,
            )
            .await?;
            let plan: Vec<MintRanges> = mints
                .into_iter()
                .map(|m| MintRanges::new(m, vec![(start_ms, end_ms)]))
                .collect();
            return self.run_pass(&plan, order, depth, cancel, tx).await;
        }
        self.run_query(
            Request::Range {
                ms: (start_ms, end_ms),
                seconds,
            },
            order,
            cancel,
            tx,
        )
        .await
    }

    /// One pass: its chunks' queries, `depth` at a time, their mints forwarded in order.
    async fn run_pass(
        &self,
        mints: &[MintRanges],
        order: &ReadOrder,
        depth: usize,
        cancel: &CancelFlag,
        out: &mpsc::Sender<FetchedMint>,
    ) -> Result<()> {
        let mut jobs = Vec::new();
        let mut receivers = Vec::new();
        for range in query_chunks(mints, self.interval_s) {
            let (ctx, crx) = mpsc::channel(MINTS_IN_FLIGHT);
            jobs.push((&mints[range], ctx));
            receivers.push(crx);
        }
        // Futures built eagerly and boxed as `Send`: a stream of closures borrowing `self` trips the compiler's
        // higher-ranked `Send` check once the whole export is spawned.
        let queries: Vec<BoxedFetch<'_>> = jobs
            .into_iter()
            .map(|(chunk, ctx)| -> BoxedFetch<'_> {
                Box::pin(async move {
                    self.run_query(Request::Mints(chunk), order, cancel, &ctx)
                        .await
                })
            })
            .collect();
        let producer = stream::iter(queries)
            .buffered(depth.max(1))
            .try_for_each(|()| async { Ok(()) });
        let forward = async {
            for mut rx in receivers {
                while let Some(m) = rx.recv().await {
                    out.send(m).await.map_err(|_| consumer_gone())?;
                }
            }
            Ok::<(), LakeError>(())
        };
        tokio::try_join!(producer, forward)?;
        Ok(())
    }

    /// Runs one request's query and streams its decoded mints to `tx`; after a transient failure, asks again
    /// for the mints not yet handed on, within the connection's retry budget.
    async fn run_query(
        &self,
        request: Request<'_>,
        order: &ReadOrder,
        cancel: &CancelFlag,
        tx: &mpsc::Sender<FetchedMint>,
    ) -> Result<()> {
        let mut attempts = self.conn.retrier().request();
        // What has been handed on: a count of the requested mints, or the last mint of a range.
        let mut done = 0usize;
        let mut after: Option<String> = None;
        loop {
            let (sql, expected) = match request {
                Request::Mints(mints) => {
                    let rest = &mints[done..];
                    match mints_query(&self.query(), rest, order) {
                        Some(sql) => (sql, Expected::Mints(rest)),
                        // No range of these mints fits DateTime: they have no candles.
                        None => {
                            for m in rest {
                                tx.send(FetchedMint::empty(&m.mint))
                                    .await
                                    .map_err(|_| consumer_gone())?;
                            }
                            return Ok(());
                        }
                    }
                }
                Request::Range { ms, seconds } => (
                    range_query(&self.query(), seconds, after.as_deref(), order),
                    Expected::Range(ms.0, ms.1),
                ),
            };
            let handed_before = done;
            let answer = self
                .stream_query(&sql, expected, order, cancel, tx, |m| {
                    done += 1;
                    if matches!(request, Request::Range { .. }) {
                        after = Some(m.candles.mint.clone());
                    }
                })
                .await;
            match answer {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if done > handed_before {
                        attempts.progressed();
                    }
                    attempts.after(e, cancel).await?;
                }
            }
        }
    }

    /// Streams one query's decoded mints to `tx`, telling `handed_on` of each.
    async fn stream_query(
        &self,
        sql: &str,
        expected: Expected<'_>,
        order: &ReadOrder,
        cancel: &CancelFlag,
        tx: &mpsc::Sender<FetchedMint>,
        mut handed_on: impl FnMut(&FetchedMint),
    ) -> Result<()> {
        let mut decoder = CandleDecoder::new(expected, order.trusted());
        if self.row_versions.is_some() {
            decoder = decoder.with_versions();
        }
        let mut cursor = self
            .conn
            .cursor(self.conn.client().query_raw(sql), "Native")?;
        let mut first = true;
        while let Some(piece) = self.conn.next_piece(&mut cursor, first, cancel).await? {
            first = false;
            decoder
                .feed(&piece)
                .map_err(|e| self.conn.decode_error(e))?;
            let ready: Vec<FetchedMint> = decoder.take_ready().collect();
            for m in ready {
                handed_on(&m);
                tx.send(m).await.map_err(|_| consumer_gone())?;
            }
        }
        decoder.finish().map_err(|e| self.conn.decode_error(e))?;
        let ready: Vec<FetchedMint> = decoder.take_ready().collect();
        for m in ready {
            handed_on(&m);
            tx.send(m).await.map_err(|_| consumer_gone())?;
        }
        Ok(())
    }
}

/// What one fetch query asks for.
#[derive(Clone, Copy)]
enum Request<'a> {
    /// Consecutive mints of a pass (sorted), each within its ranges.
    Mints(&'a [MintRanges]),
    /// Every mint with candles in a time range (a corpus batch): in milliseconds, and in the seconds SQL uses.
    Range { ms: (i64, i64), seconds: (u32, u32) },
}
