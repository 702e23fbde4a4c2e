//! Fetching one bucket's candles: query chunks in mint order, streamed through the RowBinary decoder.

use crate::cancel::CancelFlag;
use crate::candles::MintCandles;
use crate::error::Result;
use crate::fetch_plan::BucketRequest;

use super::candle_query::{candle_query, query_chunks};
use super::connection::Connection;
use super::row_binary::CandleDecoder;
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
    /// Connects, reads the server's clock (the snapshot's `as_of`) and checks the table.
    pub async fn connect(
        config: &super::ClickHouseConfig,
        chain: &str,
        interval_s: u32,
    ) -> Result<(Self, crate::manifest::SourceSnapshot)> {
        let conn = Connection::new(config.clone())?;
        let info = conn.server_info().await?;
        let schema = super::load_table_schema(&conn).await?;
        let snapshot = crate::manifest::SourceSnapshot::ClickHouse {
            cluster: conn.endpoint().trim_start_matches("http://").to_owned(),
            database: config.database.clone(),
            table: config.table.clone(),
            as_of: crate::manifest::iso_seconds(info.now_epoch_s),
        };
        Ok((
            Self {
                conn,
                schema,
                chain: chain.to_owned(),
                interval_s,
            },
            snapshot,
        ))
    }

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
            let mut decoder = CandleDecoder::new(chunk);
            self.conn
                .stream(query, "RowBinary", cancel, |bytes| {
                    decoder.feed(bytes).map_err(|e| self.conn.decode_error(e))
                })
                .await?;
            let decoded = decoder.finish().map_err(|e| self.conn.decode_error(e))?;
            out.rows_fetched += decoded.rows_fetched;
            out.duplicates_dropped += decoded.duplicates_dropped;
            out.mints.extend(decoded.mints);
        }
        Ok(out)
    }
}
