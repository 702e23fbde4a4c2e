//! Asking ClickHouse for the source fingerprints of a run of corpus days (see `lake::fingerprint`).
//!
//! One aggregate query per run of days, reading only the key columns and the version column: per (day, mint)
//! the candles (rows under `FINAL`, the exported rows), the largest version and their `cityHash64`; the client
//! sums them per bucket (SHA-1 once per mint and day, not per row) and keeps each mint's print for a refresh. The server keeps
//! one small state per (day, mint), whatever the rows: `uniqExact` would be about three times faster but holds
//! every key in memory (180 MiB per 10M rows measured), which a month of a large table would take past the
//! server's per-query limit. Tables without `FINAL` count distinct times instead, a week per query. Measured cost:
//! BENCHMARKS.md, "Corpus freshness".

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::fingerprint::{BucketPrint, BucketPrints, MintPrint, SourceFingerprint};
use crate::spec::bucket_range::BucketRange;
use crate::spec::mint_bucket::compute_mint_bucket;

use super::connection::Connection;
use super::fetch::CandleSource;
use super::sql::{mint_filter_clauses, sql_string};
use super::table_schema::TableSchema;

/// How a fingerprint query counts a day's candles per mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Rows under `FINAL`: one small state per (day, mint) on the server, whatever the rows.
    Final,
    /// Distinct times without `FINAL`, every key held on the server: the only way for engines without `FINAL`.
    Distinct,
    /// Distinct times without `FINAL` where they equal the rows under it
    /// ([`TableSchema::final_is_distinct_keys`]): the same numbers for about a third of the server's time
    /// (BENCHMARKS.md, "Corpus refresh"), under a memory cap; a query the cap (or a read-only profile) refuses
    /// is asked again under `FINAL`.
    DistinctCapped,
}

/// Per-query memory the capped distinct count may use: keys cost the server about 14 bytes each (141 MB for
/// 10M rows of one day, measured on 18.16).
const DISTINCT_MEMORY_CAP: u64 = 1 << 30;
/// Keys a query may be planned to count without `FINAL`, from its days' sealed sizes: well under the cap.
const DISTINCT_KEYS_PER_QUERY: u64 = 20_000_000;

/// The bucket summaries of every day in `[start_s, end_s)` that has candles of `chain`/`interval_s`, only of the
/// mints in `filter` when one is given. Days without candles are absent.
pub async fn day_prints(
    conn: &Connection,
    schema: &TableSchema,
    chain: &str,
    interval_s: u32,
    (start_s, end_s): (u32, u32),
    filter: Option<&[String]>,
    counting: Counting,
) -> Result<BTreeMap<NaiveDate, BucketPrints>> {
    let version = schema
        .version_column
        .as_deref()
        .map_or("''".to_owned(), |v| format!("toString(max(`{v}`))"));
    let (final_, candles) = match counting {
        Counting::Final => (" FINAL", "count()"),
        Counting::Distinct | Counting::DistinctCapped => ("", "uniqExact(timestamp)"),
    };
    let mut days: BTreeMap<NaiveDate, BucketPrints> = BTreeMap::new();
    for clause in mint_filter_clauses(filter) {
        let mut filters = vec![
            format!("chain = {}", sql_string(chain)),
            format!("interval_seconds = {interval_s}"),
            format!("timestamp >= toDateTime({start_s})"),
            format!("timestamp < toDateTime({end_s})"),
        ];
        filters.extend(schema.not_null_filter());
        filters.extend(clause);
        let sql = format!(
            "SELECT q_day, hex(q_mint), q_n, q_v, lower(hex(cityHash64(q_mint, q_n, q_v))) \
             FROM (SELECT intDiv(toUInt32(timestamp), 86400) AS q_day, {mint} AS q_mint, \
             {candles} AS q_n, {version} AS q_v FROM {table}{final_} WHERE {filters} GROUP BY q_day, q_mint)",
            mint = schema.mint_expr(),
            table = conn.quoted_table(),
            filters = filters.join(" AND "),
        );
        let mut query = conn.client().query(&sql);
        if counting == Counting::DistinctCapped {
            query = query.with_setting("max_memory_usage", DISTINCT_MEMORY_CAP.to_string());
        }
        let text = conn.query_text(query).await?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (day, mint, print) = parse_line(line).ok_or_else(|| {
                LakeError::new(
                    ErrorCode::ClickhouseQuery,
                    format!(
                        "ClickHouse at {} answered the fingerprint query with {line:?}, not day, mint, \
                         candles, version and hash; check the server log, then retry",
                        conn.endpoint()
                    ),
                )
            })?;
            days.entry(day)
                .or_default()
                .entry(compute_mint_bucket(&mint))
                .and_modify(|p| p.merge(&print))
                .or_insert(print);
        }
    }
    Ok(days)
}

/// Most days one fingerprint query covers: its answer is at most 256 lines per day; without `FINAL` the server
/// holds every key of the query's days.
const MAX_DAYS_PER_QUERY: usize = 31;
const MAX_DAYS_PER_QUERY_WITHOUT_FINAL: usize = 7;

/// Candles each day's query is expected to count (the day's sealed size, for every bucket the query reads), where
/// known.
pub type DaySizes = BTreeMap<NaiveDate, u64>;

/// What the server holds now for each of `days`, restricted to `buckets` and the mints of `filter` (sorted).
/// Consecutive days share a query; a query whose days' sizes are known and fit [`DISTINCT_KEYS_PER_QUERY`] counts
/// without `FINAL` where that gives the same numbers.
pub async fn current_fingerprints(
    source: &CandleSource,
    days: &[NaiveDate],
    buckets: BucketRange,
    filter: Option<&[String]>,
    sizes: &DaySizes,
) -> Result<BTreeMap<NaiveDate, SourceFingerprint>> {
    let mut out = BTreeMap::new();
    let capped = source.schema.supports_final() && source.schema.final_is_distinct_keys();
    for (range, counting) in plan_queries(days, sizes, source.schema.supports_final(), capped) {
        let (i, end) = (range.start, range.end);
        let (Some(start_s), Some(end_s)) = (
            day_start_s(days[i]),
            day_start_s(days[end - 1]).map(|s| s + 86_400),
        ) else {
            continue;
        };
        let ask = |counting| {
            day_prints(
                &source.conn,
                &source.schema,
                &source.chain,
                source.interval_s,
                (start_s, end_s),
                filter,
                counting,
            )
        };
        let mut prints = match ask(counting).await {
            // The cap (a day grown far past its sealed size) or a read-only profile refused the setting.
            Err(e)
                if counting == Counting::DistinctCapped
                    && e.code() == ErrorCode::ClickhouseQuery =>
            {
                ask(Counting::Final).await?
            }
            other => other?,
        };
        for &day in &days[i..end] {
            let buckets_of_day = prints.remove(&day).unwrap_or_default();
            let whole =
                SourceFingerprint::new(source.schema.version_column.clone(), buckets_of_day);
            out.insert(day, whole.restricted(buckets));
        }
    }
    Ok(out)
}

/// The queries for `days` (sorted): runs of consecutive days, at most [`MAX_DAYS_PER_QUERY`] (a week without
/// `FINAL`), each with how it counts. A run is counted without `FINAL` (where `capped` says that gives the same
/// numbers) only if the known sizes of all its days fit [`DISTINCT_KEYS_PER_QUERY`]: splitting it into shorter
/// queries would make each read again the granules that straddle its ends (a granule of a long-lived mint spans
/// days), more than the cheaper count saves.
fn plan_queries(
    days: &[NaiveDate],
    sizes: &DaySizes,
    supports_final: bool,
    capped: bool,
) -> Vec<(std::ops::Range<usize>, Counting)> {
    let max_days = if supports_final {
        MAX_DAYS_PER_QUERY
    } else {
        MAX_DAYS_PER_QUERY_WITHOUT_FINAL
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut end = i + 1;
        while end < days.len()
            && end - i < max_days
            && days[end].signed_duration_since(days[end - 1]).num_days() == 1
        {
            end += 1;
        }
        let fits = days[i..end]
            .iter()
            .try_fold(0u64, |keys, d| {
                sizes
                    .get(d)
                    .map(|&n| keys.saturating_add(n))
                    .filter(|&k| k <= DISTINCT_KEYS_PER_QUERY)
            })
            .is_some();
        let counting = if !supports_final {
            Counting::Distinct
        } else if capped && fits {
            Counting::DistinctCapped
        } else {
            Counting::Final
        };
        out.push((i..end, counting));
        i = end;
    }
    out
}

fn day_start_s(day: NaiveDate) -> Option<u32> {
    let s = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    u32::try_from(s)
        .ok()
        .filter(|s| s.checked_add(86_400).is_some())
}

/// `day\tmint in hex\tcandles\tversion\thash` (hex without leading zeros, as `hex()` of a UInt64 prints it):
/// the day, the mint and its one-mint bucket summary.
fn parse_line(line: &str) -> Option<(NaiveDate, String, BucketPrint)> {
    let f: Vec<&str> = line.split('\t').collect();
    let [day, mint, candles, version, hash] = f.as_slice() else {
        return None;
    };
    let day = NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_days(chrono::Days::new(day.parse().ok()?))?;
    let hash = u64::from_str_radix(hash, 16).ok()?;
    // Hex keeps any byte of a mint out of TabSeparated's escaping.
    let mint = String::from_utf8_lossy(&hex::decode(mint).ok()?).into_owned();
    let print = MintPrint(candles.parse().ok()?, unescape(version));
    Some((day, mint.clone(), BucketPrint::of_mint(&mint, print, hash)))
}

/// TabSeparated escapes `\`, tab and newline in strings; a version printed by `toString` has none but `\\`.
fn unescape(s: &str) -> String {
    s.replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_run_of_known_small_days_is_counted_without_final() {
        let d = |n: u64| {
            NaiveDate::from_ymd_opt(2025, 1, 1)
                .unwrap()
                .checked_add_days(chrono::Days::new(n))
                .unwrap()
        };
        let days: Vec<NaiveDate> = (0..40).chain([50, 51]).map(d).collect();
        let small: DaySizes = days.iter().map(|&day| (day, 100_000)).collect();
        let plan = plan_queries(&days, &small, true, true);
        let shape: Vec<(usize, usize, Counting)> =
            plan.iter().map(|(r, c)| (r.start, r.end, *c)).collect();
        assert_eq!(
            shape,
            vec![
                (0, 31, Counting::DistinctCapped),
                (31, 40, Counting::DistinctCapped),
                (40, 42, Counting::DistinctCapped),
            ],
            "runs break at 31 days and at a gap"
        );
        // A run too large for one distinct query is not split into short ones: it is counted under FINAL.
        let large: DaySizes = days.iter().map(|&day| (day, 5_000_000)).collect();
        assert_eq!(
            plan_queries(&days, &large, true, true)[0].1,
            Counting::Final
        );
        let mut one_unknown = small.clone();
        one_unknown.remove(&d(3));
        assert_eq!(
            plan_queries(&days, &one_unknown, true, true)[0].1,
            Counting::Final
        );
        assert_eq!(
            plan_queries(&days, &small, true, false)[0].1,
            Counting::Final
        );
        let plain = plan_queries(&days, &DaySizes::new(), false, false);
        assert_eq!((plain[0].0.clone(), plain[0].1), (0..7, Counting::Distinct));
    }

    #[test]
    fn answer_lines_parse_and_reject_garbage() {
        let (day, mint, print) = parse_line("18628\t6D09\t1440\t2023-11-14 22:13:20\tabc").unwrap();
        assert_eq!(day, NaiveDate::from_ymd_opt(2021, 1, 1).unwrap());
        assert_eq!(mint, "m\t");
        assert_eq!(print.candles, 1440);
        assert_eq!(print.max_version, "2023-11-14 22:13:20");
        assert_eq!(print.hash, "0000000000000abc");
        assert_eq!(
            print.mints["m\t"],
            MintPrint(1440, "2023-11-14 22:13:20".into())
        );
        assert!(parse_line("18628\t6D\t1440\tv").is_none());
        assert!(parse_line("x\t6D\t1\tv\t0").is_none());
        assert!(parse_line("1\t6D\t1\tv\tzz").is_none());
        assert!(parse_line("1\tZZ\t1\tv\t0").is_none());
    }
}
