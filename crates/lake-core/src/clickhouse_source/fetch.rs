//! Fetching one bucket's candles: query chunks in mint order, streamed through the RowBinary decoder.

use crate::cancel::CancelFlag;
use crate::candles::MintCandles;
use crate::error::{ErrorCode, LakeError, Result};
use crate::fetch_plan::BucketRequest;

use super::candle_query::{candle_query, query_chunks};
use super::connection::Connection;
use super::row_binary::{CandleDecoder, DecodeError};
use super::table_schema::TableSchema;

/// The candles of one bucket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchedBucket {
    /// One series per requested mint, in mint order (possibly empty).
    pub mints: Vec<MintCandles>,
    /// Rows the server sent.
    pub rows_fetched: u64,
    /// Rows dropped as duplicates of a (mint, ts) already received.
    pub duplicates_dropped: u64,
}

/// Where a fetch reads from: the connection, the table's shape and the export's filters.
#[derive(Debug, Clone)]
pub struct CandleSource {
    /// The server.
    pub conn: Connection,
    /// The table's engine and version column.
    pub schema: TableSchema,
    /// `chain` filter.
    pub chain: String,
    /// `interval_seconds` filter.
    pub interval_s: u32,
}

impl CandleSource {
    /// Fetches every requested range of one bucket. Cancellation is checked between pieces of the answer.
    pub async fn fetch_bucket(
        &self,
        request: &BucketRequest,
        cancel: &CancelFlag,
    ) -> Result<FetchedBucket> {
        let mut out = FetchedBucket::default();
        for chunk in query_chunks(&request.mints) {
            cancel.check()?;
            let query = candle_query(
                &self.conn,
                &self.schema,
                &self.chain,
                self.interval_s,
                chunk,
            );
            let mut cursor = query
                .fetch_bytes("RowBinary")
                .map_err(|e| self.conn.map_client_error(&e))?;
            let mut decoder = CandleDecoder::new(chunk);
            let mut first = true;
            loop {
                cancel.check()?;
                let limit = if first {
                    self.conn.connect_timeout()
                } else {
                    self.conn.receive_timeout()
                };
                let next = tokio::time::timeout(limit, cursor.next())
                    .await
                    .map_err(|_| {
                        self.conn.timeout_error(
                            if first {
                                "the first request"
                            } else {
                                "while streaming"
                            },
                            limit,
                        )
                    })?;
                first = false;
                match next.map_err(|e| self.conn.map_client_error(&e))? {
                    Some(bytes) => decoder.feed(&bytes).map_err(|e| self.decode_error(e))?,
                    None => break,
                }
            }
            let decoded = decoder.finish().map_err(|e| self.decode_error(e))?;
            out.rows_fetched += decoded.rows_fetched;
            out.duplicates_dropped += decoded.duplicates_dropped;
            out.mints.extend(decoded.mints);
        }
        Ok(out)
    }

    fn decode_error(&self, err: DecodeError) -> LakeError {
        match err {
            DecodeError::Exception(text) => self.conn.exception(text.trim_start_matches(['\r', '\n'])),
            DecodeError::Garbled(what) => LakeError::new(
                ErrorCode::ClickhouseQuery,
                format!(
                    "ClickHouse at {} sent an answer that is not the candles asked for: {what}; nothing was written. \
                     Check the server log, then retry",
                    self.conn.endpoint()
                ),
            ),
        }
    }
}
