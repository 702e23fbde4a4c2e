//! The SQL that fetches candles for a set of mints and time ranges: every value bound (escaped by the client),
//! identifiers validated and quoted, and only syntax that ClickHouse 18.16 and current releases both accept.
//!
//! The time filter is a set of (mint, time block) pairs tested with one hash lookup per row:
//! `(token_address, intDiv(toUInt32(timestamp), B)) IN ((…), …)`. A chain of per-window `OR` terms costs the
//! server one comparison per window per row (measured: 15 s for 1M rows and 5,000 windows); the set costs one.
//! Blocks round windows outwards, so the answer may hold a few rows outside them, which the decoder drops.

use crate::fetch_plan::MintRanges;

use super::connection::Connection;
use super::row_binary::ROW_MARKER;
use super::table_schema::TableSchema;

/// SQL length per query when the server's default `max_query_size` (256 KiB) applies.
pub const DEFAULT_SQL_BUDGET: usize = 200 * 1024;
/// SQL length per query when the user may raise `max_query_size`: one query per stream in practice, so the table
/// is read once per stream instead of once per 200 KiB of mints.
pub const LARGE_SQL_BUDGET: usize = 48 << 20;

/// Block lengths tried, in seconds: from a minute to about a year, each at most twice the one before, so a block
/// is never more than a window long and a window's rows are fetched at most three times over.
const BLOCK_LADDER: [u32; 21] = [
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    4 * 3600,
    8 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    4 * 86_400,
    8 * 86_400,
    16 * 86_400,
    32 * 86_400,
    64 * 86_400,
    128 * 86_400,
    256 * 86_400,
    512 * 86_400,
];

/// `[start, end)` ms as whole DateTime seconds, clamped to DateTime's range; `None` when nothing is left.
fn seconds_range(start_ms: i64, end_ms: i64) -> Option<(u32, u32)> {
    let clamp = |ms: i64| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
    let lo = clamp(start_ms).clamp(0, i64::from(u32::MAX));
    let hi = clamp(end_ms).clamp(0, i64::from(u32::MAX));
    (lo < hi).then_some((lo as u32, hi as u32))
}

/// The block length for a set of windows: about half the median window, so each window needs two or three blocks
/// (short SQL) and rounding adds at most about one window of rows.
pub fn block_seconds(mints: &[MintRanges], interval_s: u32) -> u32 {
    let mut spans: Vec<i64> = mints
        .iter()
        .flat_map(|m| m.ranges.iter().map(|&(s, e)| (e - s) / 1000))
        .collect();
    if spans.is_empty() {
        return BLOCK_LADDER[0].max(interval_s);
    }
    let mid = spans.len() / 2;
    let median = *spans.select_nth_unstable(mid).1;
    let want = (median / 2).max(i64::from(interval_s));
    BLOCK_LADDER
        .iter()
        .copied()
        .find(|&b| i64::from(b) >= want)
        .unwrap_or(BLOCK_LADDER[BLOCK_LADDER.len() - 1])
}

/// The blocks a mint's ranges touch, sorted and unique.
pub fn blocks_of(m: &MintRanges, block_s: u32) -> Vec<u32> {
    let mut blocks = Vec::new();
    for &(s, e) in &m.ranges {
        if let Some((lo, hi)) = seconds_range(s, e) {
            blocks.extend(lo / block_s..=(hi - 1) / block_s);
        }
    }
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// Splits the mints into runs whose SQL stays small; each run is one query, in request order.
pub fn query_chunks(mints: &[MintRanges], block_s: u32, budget: usize) -> Vec<&[MintRanges]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, m) in mints.iter().enumerate() {
        // Quotes, escapes, separators and a block number of up to ten digits per pair.
        let cost = (2 * m.mint.len() + 20) * (1 + blocks_of(m, block_s).len()) + 16;
        if i > start && size + cost > budget {
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

/// Builds the query for one chunk of mints; rows come as RowBinary, ordered by (bucket, mint, ts), each led by
/// the marker byte. The bucket (first byte of SHA-1) leads the order so that one answer can cover many buckets
/// and each bucket is complete as soon as the stream moves past it. Without `FINAL`, duplicates are ordered so
/// that the newest version (then the largest values) comes first and wins.
pub fn candle_query(
    conn: &Connection,
    schema: &TableSchema,
    chain: &str,
    interval_s: u32,
    mints: &[MintRanges],
    block_s: u32,
) -> clickhouse::query::Query {
    let mut pairs: Vec<(&str, u32)> = Vec::new();
    let mut names: Vec<&str> = Vec::with_capacity(mints.len());
    for m in mints {
        let blocks = blocks_of(m, block_s);
        if !blocks.is_empty() {
            names.push(&m.mint);
            pairs.extend(blocks.into_iter().map(|b| (m.mint.as_str(), b)));
        }
    }
    if pairs.is_empty() {
        // Nothing representable as DateTime: a query that returns no rows keeps the caller's path uniform.
        names.push("");
        pairs.push(("", u32::MAX));
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
         WHERE chain = ? AND interval_seconds = ? AND token_address IN ({names}) \
         AND (token_address, intDiv(toUInt32(timestamp), {block_s})) IN ({pairs}) ORDER BY {order}",
        table = conn.quoted_table(),
        final_ = if schema.supports_final() { " FINAL" } else { "" },
        names = vec!["?"; names.len()].join(", "),
        pairs = vec!["(?, ?)"; pairs.len()].join(", "),
    );
    let mut query = conn.client().query(&sql).bind(chain).bind(interval_s);
    for name in names {
        query = query.bind(name);
    }
    for (mint, block) in pairs {
        query = query.bind(mint).bind(block);
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
    fn blocks_cover_the_ranges() {
        let m = MintRanges::new("m", vec![(0, 3_600_000), (7_200_000, 7_260_000)]);
        assert_eq!(blocks_of(&m, 3600), vec![0, 2]);
        assert_eq!(
            blocks_of(&m, 60),
            (0..60).chain(120..121).collect::<Vec<_>>()
        );
        // A window of 31 minutes gets blocks of half an hour; one of 5001 minutes gets blocks of two days.
        assert_eq!(
            block_seconds(&[MintRanges::new("m", vec![(0, 31 * 60_000)])], 60),
            1800
        );
        assert_eq!(
            block_seconds(&[MintRanges::new("m", vec![(0, 5001 * 60_000)])], 60),
            2 * 86_400
        );
    }

    #[test]
    fn chunks_keep_order_and_bound_size() {
        let mints: Vec<MintRanges> = (0..5000)
            .map(|i| MintRanges::new(format!("{i:044}"), vec![(0, 60_000), (120_000, 180_000)]))
            .collect();
        let chunks = query_chunks(&mints, 60, DEFAULT_SQL_BUDGET);
        assert!(chunks.len() > 1);
        let rejoined: Vec<&MintRanges> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(rejoined.len(), mints.len());
        assert!(rejoined.iter().zip(&mints).all(|(a, b)| a.mint == b.mint));
        assert!(query_chunks(&[], 60, DEFAULT_SQL_BUDGET).is_empty());
        assert_eq!(query_chunks(&mints, 60, LARGE_SQL_BUDGET).len(), 1);
    }
}
