//! A corpus day's source fingerprint made from the rows an export read (docs/lake-format.md, "Source
//! fingerprint"), so that no fingerprint query runs beside the read and no write can fall between the two.
//!
//! The numbers are the fingerprint query's, computed on the client: per (day, mint) the candles (rows under
//! `FINAL`, or distinct times for engines without it), the largest version as `toString` prints it, and
//! ClickHouse's `cityHash64` of the three ([`super::city_hash`]). The versions come with the rows as epoch
//! seconds; the few distinct largest ones are printed in the version's time zone, here for UTC, by the server
//! for any other zone (its time-zone rules, not ours).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::fingerprint::{BucketPrint, BucketPrints, MintPrint, SourceFingerprint};
use crate::source::fetched_mint::FetchedMint;
use crate::spec::bucket_range::BucketRange;
use crate::spec::mint_bucket::compute_mint_bucket;

use super::city_hash::city_hash64_string_u64_string;
use super::fetch::CandleSource;
use super::fingerprint::Counting;
use super::sql::sql_string;
use super::table_schema::TableSchema;

/// Versions the server prints per query (a literal array of them stays far below `max_query_size`).
const VERSIONS_PER_QUERY: usize = 10_000;

/// Time zones in which `toString` of a `DateTime` is its UTC time.
const UTC_NAMES: [&str; 10] = [
    "UTC",
    "Etc/UTC",
    "UCT",
    "Etc/UCT",
    "GMT",
    "Etc/GMT",
    "Universal",
    "Etc/Universal",
    "Zulu",
    "Etc/Zulu",
];

/// One mint's rows of one day, as the fingerprint counts them.
struct Entry {
    day: u32,
    mint: String,
    candles: u64,
    max_version: u32,
}

/// The per-(day, mint) summaries of the rows an export read, collected as its mints pass by.
pub struct RowPrints {
    counting: Counting,
    entries: Vec<Entry>,
}

impl RowPrints {
    /// A collector for rows of a table of `schema`, read with their versions
    /// ([`CandleSource::with_row_versions`]).
    pub fn new(schema: &TableSchema) -> Self {
        Self {
            // New days' fingerprints are asked for under `FINAL` wherever the engine has it.
            counting: if schema.supports_final() {
                Counting::Final
            } else {
                Counting::Distinct
            },
            entries: Vec::new(),
        }
    }

    /// Counts one finished mint.
    pub fn note(&mut self, m: &FetchedMint) {
        for d in &m.day_rows {
            let candles = match self.counting {
                Counting::Final => d.rows,
                // Without `FINAL` the query counts distinct times: the candles kept of the day.
                Counting::Distinct | Counting::DistinctCapped => {
                    let lo = i64::from(d.day) * 86_400_000;
                    let ts = &m.candles.ts_ms;
                    (ts.partition_point(|&t| t < lo + 86_400_000) - ts.partition_point(|&t| t < lo))
                        as u64
                }
            };
            self.entries.push(Entry {
                day: d.day,
                mint: m.candles.mint.clone(),
                candles,
                max_version: d.max_version,
            });
        }
    }

    /// The fingerprint of each of `days` (days without rows get an empty one), restricted to `buckets`.
    pub async fn fingerprints(
        self,
        source: &CandleSource,
        days: &[NaiveDate],
        buckets: BucketRange,
    ) -> Result<BTreeMap<NaiveDate, SourceFingerprint>> {
        let printed = match &source.schema.version_column {
            Some(_) => {
                let versions: BTreeSet<u32> = self.entries.iter().map(|e| e.max_version).collect();
                version_strings(source, versions).await?
            }
            None => HashMap::new(),
        };
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        let mut by_day: BTreeMap<NaiveDate, BucketPrints> = BTreeMap::new();
        for e in self.entries {
            let version = printed.get(&e.max_version).cloned().unwrap_or_default();
            let hash =
                city_hash64_string_u64_string(e.mint.as_bytes(), e.candles, version.as_bytes());
            let print = BucketPrint::of_mint(&e.mint, MintPrint(e.candles, version), hash);
            let Some(day) = epoch.checked_add_days(chrono::Days::new(u64::from(e.day))) else {
                continue;
            };
            by_day
                .entry(day)
                .or_default()
                .entry(compute_mint_bucket(&e.mint))
                .and_modify(|p| p.merge(&print))
                .or_insert(print);
        }
        Ok(days
            .iter()
            .map(|&day| {
                let whole = SourceFingerprint::new(
                    source.schema.version_column.clone(),
                    by_day.remove(&day).unwrap_or_default(),
                );
                (day, whole.restricted(buckets))
            })
            .collect())
    }
}

/// Each version (epoch seconds) as `toString` of the version column prints it.
async fn version_strings(
    source: &CandleSource,
    versions: BTreeSet<u32>,
) -> Result<HashMap<u32, String>> {
    let own = source.schema.version_time_zone();
    let zone = own.unwrap_or(&source.time_zone);
    if UTC_NAMES.contains(&zone) {
        return Ok(versions.into_iter().map(|v| (v, utc_text(v))).collect());
    }
    let list: Vec<u32> = versions.into_iter().collect();
    let mut out = HashMap::with_capacity(list.len());
    for chunk in list.chunks(VERSIONS_PER_QUERY) {
        let values: Vec<String> = chunk.iter().map(u32::to_string).collect();
        let zone_arg = own.map_or(String::new(), |z| format!(", {}", sql_string(z)));
        let sql = format!(
            "SELECT q, toString(toDateTime(q{zone_arg})) FROM (SELECT arrayJoin([{}]) AS q)",
            values.join(", ")
        );
        let text = source
            .conn
            .query_text(source.conn.client().query(&sql))
            .await?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let parsed = line
                .split_once('\t')
                .and_then(|(v, s)| Some((v.parse::<u32>().ok()?, s.to_owned())));
            let Some((v, s)) = parsed else {
                return Err(LakeError::new(
                    ErrorCode::ClickhouseQuery,
                    format!(
                        "ClickHouse at {} printed versions as {line:?}; check the server log, then retry",
                        source.conn.endpoint()
                    ),
                ));
            };
            out.insert(v, s);
        }
    }
    if out.len() != list.len() {
        return Err(LakeError::new(
            ErrorCode::ClickhouseQuery,
            format!(
                "ClickHouse at {} printed {} of {} versions; check the server log, then retry",
                source.conn.endpoint(),
                out.len(),
                list.len()
            ),
        ));
    }
    Ok(out)
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, as `toString` of a `DateTime` prints it.
fn utc_text(epoch_s: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(epoch_s), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_versions_print_as_the_server_prints_them() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00");
        assert_eq!(utc_text(1_700_000_500), "2023-11-14 22:21:40");
        assert_eq!(utc_text(u32::MAX), "2106-02-07 06:28:15");
    }
}
