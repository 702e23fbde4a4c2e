//! The current fingerprints of sealed corpus days, asked for through the data parts made since they were read
//! (docs/lake-format.md, "Refresh"): a day whose parts hold nothing new is unchanged without reading a row of
//! it; otherwise only the rows of the new parts are scanned for the mints they touch, and only those mints'
//! prints asked for, patched into the sealed fingerprint. The result is what the fingerprint query over the whole
//! day answers (the tests compare the two). Days the parts cannot tell about are left to that query.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::error::Result;
use crate::lake::fingerprint::{MintPrint, SourceFingerprint};
use crate::spec::bucket_range::BucketRange;
use crate::spec::mint_bucket::mint_bucket_index;

use super::city_hash::city_hash64_string_u64_string;
use super::day_mints::mints_in_range;
use super::fetch::CandleSource;
use super::fingerprint::{day_prints, Counting};
use super::table_parts::{list_parts, PartsChange, TableParts};

/// What the parts told.
pub struct PartsSurvey {
    /// The current fingerprint of each day the parts could tell about, with the parts listed for it.
    pub prints: BTreeMap<NaiveDate, SourceFingerprint>,
    /// The listing, taken before any row was read, for the fingerprints asked for otherwise.
    pub listing: Option<TableParts>,
    /// Days whose new parts touch most of their mints (an indexer catching up), with what was found: asking
    /// the server whether they changed would cost more than it saves, so they are exported whole.
    pub whole: BTreeMap<NaiveDate, String>,
    /// Where the export fingerprints the rows it reads: days whose new parts hold rows of these mints (sorted,
    /// in the selection), with their sealed fingerprint (and the parts listed now). Fetching those mints tells
    /// their prints too, so they are not asked for first.
    pub refetch: BTreeMap<NaiveDate, (Vec<String>, SourceFingerprint)>,
}

impl PartsSurvey {
    /// What the parts told without a scan of new rows.
    fn unscanned(
        prints: BTreeMap<NaiveDate, SourceFingerprint>,
        listing: Option<TableParts>,
    ) -> Self {
        Self {
            prints,
            listing,
            whole: BTreeMap::new(),
            refetch: BTreeMap::new(),
        }
    }
}

/// A mint's hash in a bucket's summary: what the server's `cityHash64(mint, candles, max version)` gives.
pub fn mint_hash(mint: &str, print: &MintPrint) -> u64 {
    city_hash64_string_u64_string(mint.as_bytes(), print.0, print.1.as_bytes())
}

/// The current fingerprints of the sealed days `sealed` (each with its day's `[start_s, end_s)` and sealed
/// fingerprint) where their recorded parts tell, for the selection of `buckets` and the mints of `filter`.
/// With `rows_print` (the export fingerprints the rows it reads) a changed day's mints are left to be fetched
/// ([`PartsSurvey::refetch`]) instead of asked for.
pub async fn prints_by_parts(
    source: &CandleSource,
    sealed: &[(NaiveDate, (u32, u32), &SourceFingerprint)],
    buckets: BucketRange,
    filter: Option<&[String]>,
    rows_print: bool,
) -> Result<PartsSurvey> {
    let mut prints = BTreeMap::new();
    let Some(listing) = list_parts(source).await? else {
        return Ok(PartsSurvey::unscanned(prints, None));
    };
    let mut to_scan = Vec::new();
    for &(day, range, then) in sealed {
        let Some(parts) = &then.parts else { continue };
        match listing.change(parts, range) {
            PartsChange::Same => {
                prints.insert(day, then.clone().with_parts(listing.for_day(range)));
            }
            PartsChange::New(names) => to_scan.push((day, range, then, names)),
            PartsChange::Unknown => {}
        }
    }
    if to_scan.is_empty() {
        return Ok(PartsSurvey::unscanned(prints, Some(listing)));
    }
    let mut touched = Vec::with_capacity(to_scan.len());
    for (day, range, then, names) in &to_scan {
        let mints = mints_in_range(
            &source.conn,
            &source.schema,
            &source.chain,
            source.interval_s,
            *range,
            filter,
            Some(names),
        )
        .await?;
        touched.push((*day, *range, *then, mints));
    }
    // A part merged away before its scan was not read by it: those days are left to the whole query.
    let scanned: Vec<String> = to_scan.iter().flat_map(|t| t.3.iter().cloned()).collect();
    match list_parts(source).await? {
        Some(after) if after.all_active(&scanned) => {}
        _ => return Ok(PartsSurvey::unscanned(prints, Some(listing))),
    }
    let counting = if source.schema.supports_final() {
        Counting::Final
    } else {
        Counting::Distinct
    };
    let (mut whole, mut refetch) = (BTreeMap::new(), BTreeMap::new());
    for (day, range, then, mints) in touched {
        let mints: Vec<String> = mints
            .into_iter()
            .filter(|m| buckets.contains(mint_bucket_index(m)))
            .collect();
        let sealed_mints: usize = then.buckets.values().map(|b| b.mints.len()).sum();
        if mints.len() * 2 > sealed_mints {
            // An indexer catching up: the day's fingerprint query would cost a quarter of an export or more and
            // almost surely answer that most of the day changed, which is exported whole anyway.
            whole.insert(
                day,
                format!("new rows for {} of its {sealed_mints} mints", mints.len()),
            );
            continue;
        }
        let now = if mints.is_empty() {
            Some(then.clone())
        } else if rows_print {
            refetch.insert(
                day,
                (mints, then.clone().with_parts(listing.for_day(range))),
            );
            continue;
        } else {
            let asked = day_prints(
                &source.conn,
                &source.schema,
                &source.chain,
                source.interval_s,
                range,
                Some(&mints),
                counting,
            )
            .await?;
            let of_day = asked.get(&day).cloned().unwrap_or_default();
            then.with_mints(&mints, &of_day, mint_hash)
        };
        if let Some(now) = now {
            prints.insert(day, now.with_parts(listing.for_day(range)));
        }
    }
    Ok(PartsSurvey {
        prints,
        listing: Some(listing),
        whole,
        refetch,
    })
}
