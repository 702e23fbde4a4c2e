//! Discovering which mints have candles in a time range: what a corpus shard (a bucket range) needs before it
//! can ask for its own mints, and what a day falls back to when its server must sort.

use crate::error::Result;

use super::connection::Connection;
use super::native::decode_strings;
use super::sql::{mint_filter_clauses, sql_string};
use super::table_schema::TableSchema;

/// Sorted distinct mints with candles of `chain`/`interval_s` in `[start_s, end_s)`, optionally only those in
/// `filter` (sorted), and only in the data parts `parts` when given (the server reads no other part).
pub async fn mints_in_range(
    conn: &Connection,
    schema: &TableSchema,
    chain: &str,
    interval_s: u32,
    (start_s, end_s): (u32, u32),
    filter: Option<&[String]>,
    parts: Option<&[String]>,
) -> Result<Vec<String>> {
    let in_parts = parts.map_or(String::new(), |p| {
        let names: Vec<String> = p.iter().map(|n| sql_string(n)).collect();
        format!(" AND _part IN ({})", names.join(", "))
    });
    let mut mints = Vec::new();
    for clause in mint_filter_clauses(filter) {
        let in_list = clause.map_or(String::new(), |c| format!(" AND {c}")) + &in_parts;
        let sql = format!(
            "SELECT DISTINCT {} AS q_mint FROM {} WHERE chain = {} AND interval_seconds = {interval_s} \
             AND timestamp >= toDateTime({start_s}) AND timestamp < toDateTime({end_s}){in_list} ORDER BY q_mint",
            schema.mint_expr(),
            conn.quoted_table(),
            sql_string(chain)
        );
        let body = conn
            .fetch_all_bytes(conn.client().query_raw(&sql), "Native")
            .await?;
        mints.extend(decode_strings(&body, "q_mint").map_err(|e| conn.decode_error(e))?);
    }
    mints.sort();
    mints.dedup();
    Ok(mints)
}
