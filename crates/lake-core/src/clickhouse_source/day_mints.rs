//! Discovering which mints have candles in a time range: the first step of a corpus day, so that candles are
//! then fetched per bucket through the table's primary key instead of scanning the day once per bucket.

use crate::error::Result;

use super::connection::Connection;
use super::row_binary::{decode_marked_strings, ROW_MARKER};

/// Most mints named in one discovery query's filter; keeps the SQL far below `max_query_size`.
const FILTER_CHUNK: usize = 2000;

/// Sorted distinct mints with candles of `chain`/`interval_s` in `[start_s, end_s)`, optionally only those in
/// `filter` (sorted).
pub async fn mints_in_range(
    conn: &Connection,
    chain: &str,
    interval_s: u32,
    start_s: u32,
    end_s: u32,
    filter: Option<&[String]>,
) -> Result<Vec<String>> {
    let chunks: Vec<Option<&[String]>> = match filter {
        None => vec![None],
        Some(list) => list.chunks(FILTER_CHUNK).map(Some).collect(),
    };
    let mut mints = Vec::new();
    for chunk in chunks {
        let in_list = chunk.map_or(String::new(), |c| {
            format!(" AND token_address IN ({})", vec!["?"; c.len()].join(", "))
        });
        let sql = format!(
            "SELECT DISTINCT toUInt8({ROW_MARKER}), toString(token_address) AS mint FROM {} \
             WHERE chain = ? AND interval_seconds = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?){in_list} \
             ORDER BY mint",
            conn.quoted_table()
        );
        let mut query = conn
            .client()
            .query(&sql)
            .bind(chain)
            .bind(interval_s)
            .bind(start_s)
            .bind(end_s);
        for mint in chunk.unwrap_or_default() {
            query = query.bind(mint.as_str());
        }
        let body = conn.fetch_all_bytes(query, "RowBinary").await?;
        mints.extend(decode_marked_strings(&body).map_err(|e| conn.decode_error(e))?);
    }
    mints.sort();
    mints.dedup();
    Ok(mints)
}
