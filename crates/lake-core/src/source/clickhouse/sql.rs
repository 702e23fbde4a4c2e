//! The SQL that fetches candles: queries over consecutive mints in key order, each small enough for the
//! server's default limits and cheap for it to answer.
//!
//! Each query names its mints in `token_address IN (…)` and bounds time by its mints' earliest start and latest
//! end, so the primary key prunes what the server reads. A mint's own range is enforced with one hash lookup
//! per row (`transform` on an array literal, one AST node however long) when the mints' ranges differ; the
//! exact windows are filtered on our side. No per-row hashing or sorting is asked for the client's sake: the
//! order is the table's key order, requested only where the server reads in that order anyway.
//!
//! Values are written into the SQL as escaped literals (the clickhouse crate's client-side binding scans the
//! whole template once per bound value, quadratic in the thousands of mints of a query).

use std::fmt::Write as _;
use std::ops::Range;

use crate::spec::fetch_plan::MintRanges;

use super::connection::Connection;
use super::native::{CANDLE_COLUMNS, VERSION_COLUMN};
use super::read_order::ReadOrder;
use super::table_schema::TableSchema;

/// SQL bytes per query: under the server's default `max_query_size` (256 KiB) with room for the fixed text.
pub const SQL_BUDGET: usize = 200 * 1024;
/// Literals in a query's `IN` list at most: far under the default `max_ast_elements` (50,000).
pub const MAX_IN_LIST: usize = 10_000;
/// Candle slots (rows at most) per query: bounds what a server that sorts must hold for one query.
pub const MAX_QUERY_SLOTS: u64 = 1_000_000;

/// Most mints named in one mint-list filter; keeps the SQL far below `max_query_size`.
const MINT_FILTER_CHUNK: usize = 2000;

/// `token_address IN (…)` for each chunk of `filter` (one query per chunk), or a single `None` (one query, every
/// mint) without a filter.
pub fn mint_filter_clauses(filter: Option<&[String]>) -> Vec<Option<String>> {
    match filter {
        None => vec![None],
        Some(list) => list
            .chunks(MINT_FILTER_CHUNK)
            .map(|c| {
                let names: Vec<String> = c.iter().map(|m| sql_string(m)).collect();
                Some(format!("token_address IN ({})", names.join(", ")))
            })
            .collect(),
    }
}

/// A single-quoted ClickHouse string literal: backslash, quote and control characters escaped.
pub fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `[start_ms, end_ms)` as whole DateTime seconds, clamped to DateTime's range; `None` when nothing is left.
pub fn seconds_range(start_ms: i64, end_ms: i64) -> Option<(u32, u32)> {
    let up = |ms: i64| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    let lo = up(start_ms).clamp(0, i64::from(u32::MAX));
    let hi = up(end_ms).clamp(0, i64::from(u32::MAX));
    (lo < hi).then_some((lo as u32, hi as u32))
}

/// The covering range of a mint's ranges, in DateTime seconds.
fn cover(m: &MintRanges) -> Option<(u32, u32)> {
    let (first, last) = (m.ranges.first()?, m.ranges.last()?);
    seconds_range(first.0, last.1)
}

/// Candle slots of a mint's covering range: an upper bound of its rows.
fn slots(m: &MintRanges, interval_s: u32) -> u64 {
    cover(m).map_or(0, |(lo, hi)| {
        u64::from(hi - lo).div_ceil(u64::from(interval_s.max(1)))
    })
}

/// SQL bytes a mint adds to a query (its literal twice, a packed range, separators).
fn sql_cost(m: &MintRanges) -> usize {
    2 * sql_string(&m.mint).len() + 24
}

/// Splits mints (sorted, one entry per mint) into consecutive runs, one query each, within every limit.
pub fn query_chunks(mints: &[MintRanges], interval_s: u32) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes, mut rows) = (0, 0usize, 0u64);
    for (i, m) in mints.iter().enumerate() {
        let (b, r) = (sql_cost(m), slots(m, interval_s));
        if i > start
            && (bytes + b > SQL_BUDGET || i - start >= MAX_IN_LIST || rows + r > MAX_QUERY_SLOTS)
        {
            chunks.push(start..i);
            (start, bytes, rows) = (i, 0, 0);
        }
        bytes += b;
        rows += r;
    }
    if start < mints.len() {
        chunks.push(start..mints.len());
    }
    chunks
}

/// What a candle query reads: the table, its filters, and each row's version when the rows are fingerprinted
/// (the expression of [`TableSchema::row_version_expr`]).
#[derive(Clone, Copy)]
pub struct CandleQuery<'a> {
    /// The server.
    pub conn: &'a Connection,
    /// The table's shape.
    pub schema: &'a TableSchema,
    /// `chain` filter.
    pub chain: &'a str,
    /// `interval_seconds` filter.
    pub interval_s: u32,
    /// The version expression, selected as [`VERSION_COLUMN`] after the candle columns.
    pub versions: Option<&'a str>,
}

/// `SELECT … FROM … [FINAL] WHERE chain = … AND interval_seconds = …`, the start of every candle query.
fn select_from(q: &CandleQuery<'_>) -> String {
    let CandleQuery {
        conn,
        schema,
        chain,
        interval_s,
        versions,
    } = *q;
    let mut list: Vec<String> = schema
        .select_exprs()
        .iter()
        .zip(CANDLE_COLUMNS)
        .map(|(e, (name, _))| format!("{e} AS {name}"))
        .collect();
    if let Some(v) = versions {
        list.push(format!("{v} AS {}", VERSION_COLUMN.0));
    }
    format!(
        "SELECT {} FROM {}{} WHERE chain = {} AND interval_seconds = {interval_s}",
        list.join(", "),
        conn.quoted_table(),
        if schema.supports_final() {
            " FINAL"
        } else {
            ""
        },
        sql_string(chain)
    )
}

fn finish(mut sql: String, schema: &TableSchema, order: &ReadOrder) -> String {
    if let Some(filter) = schema.not_null_filter() {
        let _ = write!(sql, " AND {filter}");
    }
    if let Some(list) = order.order_by() {
        let _ = write!(sql, " ORDER BY {list}");
    }
    sql
}

/// The query for consecutive mints (sorted, unique); `None` when no range is representable as DateTime (the
/// mints then simply have no candles).
pub fn mints_query(q: &CandleQuery<'_>, mints: &[MintRanges], order: &ReadOrder) -> Option<String> {
    let schema = q.schema;
    let covered: Vec<(&MintRanges, (u32, u32))> =
        mints.iter().filter_map(|m| Some((m, cover(m)?))).collect();
    let lo = covered.iter().map(|(_, (s, _))| *s).min()?;
    let hi = covered.iter().map(|(_, (_, e))| *e).max()?;
    let names: Vec<String> = covered.iter().map(|(m, _)| sql_string(&m.mint)).collect();
    let mut sql = select_from(q);
    let _ = write!(
        sql,
        " AND token_address IN ({}) AND timestamp >= toDateTime({lo}) AND timestamp < toDateTime({hi})",
        names.join(", ")
    );
    if covered.iter().any(|(_, c)| *c != (lo, hi)) {
        // One lookup per row: the mint's covering range, packed as start << 32 | end.
        let packed: Vec<String> = covered
            .iter()
            .map(|(_, (s, e))| ((u64::from(*s) << 32) | u64::from(*e)).to_string())
            .collect();
        let _ = write!(
            sql,
            " AND toUInt32(timestamp) >= bitShiftRight((transform({}, [{}], [{}], toUInt64(0)) AS q_range), 32) \
             AND toUInt32(timestamp) < bitAnd(q_range, 4294967295)",
            schema.mint_expr(),
            names.join(", "),
            packed.join(", ")
        );
    }
    Some(finish(sql, schema, order))
}

/// The query for every mint of `[start_s, end_s)` (a corpus day), or of the mints after `after` in key order.
pub fn range_query(
    q: &CandleQuery<'_>,
    (start_s, end_s): (u32, u32),
    after: Option<&str>,
    order: &ReadOrder,
) -> String {
    let mut sql = select_from(q);
    let _ = write!(
        sql,
        " AND timestamp >= toDateTime({start_s}) AND timestamp < toDateTime({end_s})"
    );
    // A resumed read: every mint up to `after` arrived whole (answers come in key order).
    if let Some(mint) = after {
        let _ = write!(sql, " AND token_address > {}", sql_string(mint));
    }
    finish(sql, q.schema, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_everything_that_could_end_them() {
        assert_eq!(sql_string("plain"), "'plain'");
        assert_eq!(sql_string("a'b"), r"'a\'b'");
        assert_eq!(sql_string(r"a\'; DROP"), r"'a\\\'; DROP'");
        assert_eq!(sql_string("x\ny\t\0?"), r"'x\ny\t\0?'");
    }

    #[test]
    fn seconds_ranges_round_outward_and_clamp() {
        assert_eq!(seconds_range(60_000, 120_000), Some((60, 120)));
        assert_eq!(seconds_range(60_001, 120_001), Some((61, 121)));
        assert_eq!(seconds_range(-120_000, 60_000), Some((0, 60)));
        assert_eq!(seconds_range(-120_000, -60_000), None);
        assert_eq!(seconds_range(i64::MAX / 2, i64::MAX / 2 + 10), None);
    }

    #[test]
    fn chunks_keep_order_and_respect_every_limit() {
        let day = 86_400_000;
        let mints: Vec<MintRanges> = (0..20_000)
            .map(|i| MintRanges::new(format!("{i:044}"), vec![(0, day)]))
            .collect();
        let chunks = query_chunks(&mints, 60);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.first().unwrap().start, 0);
        assert_eq!(chunks.last().unwrap().end, mints.len());
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "contiguous, in order");
        }
        for c in &chunks {
            let m = &mints[c.clone()];
            assert!(m.iter().map(sql_cost).sum::<usize>() <= SQL_BUDGET);
            assert!(m.iter().map(|m| slots(m, 60)).sum::<u64>() <= MAX_QUERY_SLOTS);
            assert!(c.len() <= MAX_IN_LIST);
        }
        // One mint larger than every limit still gets a query of its own.
        let huge = [MintRanges::new("m", vec![(0, 1_000 * day)])];
        assert_eq!(query_chunks(&huge, 60), vec![0..1]);
        assert!(query_chunks(&[], 60).is_empty());
    }
}
