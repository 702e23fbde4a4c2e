//! The SQL that fetches candles for a set of mints and time ranges: every value bound (escaped by the client),
//! identifiers validated and quoted, and only syntax that ClickHouse 18.16 and current releases both accept.

use crate::fetch_plan::MintRanges;

use super::connection::Connection;
use super::row_binary::ROW_MARKER;
use super::table_schema::TableSchema;

/// Rough SQL length per query, far under the server's default `max_query_size` (256 KiB).
const MAX_SQL_BYTES: usize = 96 * 1024;

/// `[start, end)` ms as whole DateTime seconds, clamped to DateTime's range; `None` when nothing is left.
fn seconds_range(start_ms: i64, end_ms: i64) -> Option<(u32, u32)> {
    let clamp = |ms: i64| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    let lo = clamp(start_ms).clamp(0, i64::from(u32::MAX));
    let hi = clamp(end_ms).clamp(0, i64::from(u32::MAX));
    (lo < hi).then_some((lo as u32, hi as u32))
}

/// Splits the mints into runs whose SQL stays small; each run is one query, in mint order.
pub fn query_chunks(mints: &[MintRanges]) -> Vec<&[MintRanges]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, m) in mints.iter().enumerate() {
        let cost = 2 * m.mint.len() + 80 + 90 * m.ranges.len();
        if i > start && size + cost > MAX_SQL_BYTES {
            chunks.push(&mints[start..i]);
            start = i;
            size = 0;
        }
        size += cost;
    }
    if start < mints.len() {
        chunks.push(&mints[start..]);
    }
    chunks
}

/// A value bound to a `?` placeholder, in placeholder order.
enum Value<'a> {
    Text(&'a str),
    Number(u32),
}

/// Builds the query for one chunk of mints; rows come as RowBinary, ordered by (bucket, mint, ts), each led by
/// the marker byte. The bucket (first byte of SHA-1) leads the order so that one answer can cover many buckets
/// and each bucket is complete as soon as the stream moves past it. Without `FINAL`, duplicates are ordered so that the newest version (then the largest values)
/// comes first and wins.
pub fn candle_query(
    conn: &Connection,
    schema: &TableSchema,
    chain: &str,
    interval_s: u32,
    mints: &[MintRanges],
) -> clickhouse::query::Query {
    let mut in_list: Vec<Value> = Vec::with_capacity(mints.len());
    let mut filter: Vec<Value> = Vec::new();
    let mut terms = Vec::with_capacity(mints.len());
    for m in mints {
        let ranges: Vec<(u32, u32)> = m
            .ranges
            .iter()
            .filter_map(|&(s, e)| seconds_range(s, e))
            .collect();
        if ranges.is_empty() {
            continue;
        }
        in_list.push(Value::Text(&m.mint));
        filter.push(Value::Text(&m.mint));
        for (lo, hi) in &ranges {
            filter.push(Value::Number(*lo));
            filter.push(Value::Number(*hi));
        }
        let range_sql =
            vec!["(timestamp >= toDateTime(?) AND timestamp < toDateTime(?))"; ranges.len()]
                .join(" OR ");
        terms.push(format!("(token_address = ? AND ({range_sql}))"));
    }
    if terms.is_empty() {
        // Nothing representable as DateTime: a query that returns no rows keeps the caller's path uniform.
        in_list.push(Value::Text(""));
        terms.push("0".to_owned());
    }
    let mut order = String::from("substring(SHA1(token_address), 1, 1), token_address, timestamp");
    if !schema.supports_final() {
        if let Some(version) = &schema.version_column {
            order.push_str(&format!(", `{version}` DESC"));
        }
        order.push_str(", open DESC, high DESC, low DESC, close DESC, volume DESC");
    }
    let sql = format!(
        "SELECT toUInt8({ROW_MARKER}), toString(token_address), toUInt32(timestamp), toFloat64(open), \
         toFloat64(high), toFloat64(low), toFloat64(close), toFloat64(volume) FROM {table}{final_} \
         WHERE chain = ? AND interval_seconds = ? AND token_address IN ({placeholders}) AND ({terms}) \
         ORDER BY {order}",
        table = conn.quoted_table(),
        final_ = if schema.supports_final() { " FINAL" } else { "" },
        placeholders = vec!["?"; in_list.len()].join(", "),
        terms = terms.join(" OR "),
    );
    let mut query = conn.client().query(&sql).bind(chain).bind(interval_s);
    for value in in_list.into_iter().chain(filter) {
        query = match value {
            Value::Text(s) => query.bind(s),
            Value::Number(n) => query.bind(n),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_ranges_round_inward_and_clamp() {
        assert_eq!(seconds_range(60_000, 120_000), Some((60, 120)));
        assert_eq!(seconds_range(60_001, 120_001), Some((61, 121)));
        assert_eq!(seconds_range(-120_000, 60_000), Some((0, 60)));
        assert_eq!(seconds_range(-120_000, -60_000), None);
        assert_eq!(seconds_range(i64::MAX / 2, i64::MAX / 2 + 10), None);
    }

    #[test]
    fn chunks_keep_order_and_bound_size() {
        let mints: Vec<MintRanges> = (0..5000)
            .map(|i| MintRanges::new(format!("{i:044}"), vec![(0, 60_000), (120_000, 180_000)]))
            .collect();
        let chunks = query_chunks(&mints);
        assert!(chunks.len() > 1);
        let rejoined: Vec<&MintRanges> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(rejoined.len(), mints.len());
        assert!(rejoined.iter().zip(&mints).all(|(a, b)| a.mint == b.mint));
        assert!(query_chunks(&[]).is_empty());
    }
}
