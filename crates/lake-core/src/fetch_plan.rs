//! What to fetch: per mint, the merged time ranges of its windows, grouped by bucket.

use std::collections::BTreeMap;

use crate::mint_bucket::mint_bucket_index;

/// A half-open time range `[start_ms, end_ms)`.
pub type TimeRange = (i64, i64);

/// One mint and the sorted, disjoint, merged ranges to read for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRanges {
    /// The token address.
    pub mint: String,
    /// Sorted, disjoint, non-touching ranges.
    pub ranges: Vec<TimeRange>,
}

impl MintRanges {
    /// Merges overlapping or touching ranges, so a candle two windows share is fetched once.
    pub fn new(mint: impl Into<String>, mut ranges: Vec<TimeRange>) -> Self {
        ranges.retain(|(s, e)| s < e);
        ranges.sort_unstable();
        let mut merged: Vec<TimeRange> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Self {
            mint: mint.into(),
            ranges: merged,
        }
    }

    /// True when `ts_ms` lies in one of the ranges.
    pub fn contains(&self, ts_ms: i64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= ts_ms);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= ts_ms)
    }
}

/// The mints of one bucket, sorted by mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRequest {
    /// Bucket index 0..=255.
    pub bucket: u8,
    /// Sorted by mint, unique.
    pub mints: Vec<MintRanges>,
}

/// Groups per-mint ranges by bucket; buckets and mints come out sorted.
pub fn plan_buckets(per_mint: BTreeMap<String, Vec<TimeRange>>) -> Vec<BucketRequest> {
    let mut buckets: BTreeMap<u8, Vec<MintRanges>> = BTreeMap::new();
    for (mint, ranges) in per_mint {
        let bucket = mint_bucket_index(&mint);
        let mr = MintRanges::new(mint, ranges);
        if !mr.ranges.is_empty() {
            buckets.entry(bucket).or_default().push(mr);
        }
    }
    buckets
        .into_iter()
        .map(|(bucket, mints)| BucketRequest { bucket, mints })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_overlapping_and_touching_ranges() {
        let m = MintRanges::new(
            "m",
            vec![(10, 20), (0, 5), (15, 30), (30, 40), (50, 60), (7, 7)],
        );
        assert_eq!(m.ranges, vec![(0, 5), (10, 40), (50, 60)]);
        assert!(m.contains(0) && m.contains(39) && m.contains(50));
        assert!(!m.contains(5) && !m.contains(40) && !m.contains(60) && !m.contains(-1));
    }

    #[test]
    fn groups_by_bucket_in_order() {
        let mut per_mint = BTreeMap::new();
        per_mint.insert("mint1".to_owned(), vec![(0, 10)]);
        per_mint.insert("a".to_owned(), vec![(0, 10)]);
        per_mint.insert("abc".to_owned(), vec![(5, 5)]);
        let plan = plan_buckets(per_mint);
        let buckets: Vec<u8> = plan.iter().map(|b| b.bucket).collect();
        assert_eq!(
            buckets,
            vec![0x4d, 0x86],
            "abc has only an empty range and is left out"
        );
    }

    proptest! {
        #[test]
        fn merged_ranges_cover_exactly_the_union(ranges in proptest::collection::vec((0i64..200, 0i64..50), 0..20), probe in 0i64..260) {
            let ranges: Vec<TimeRange> = ranges.into_iter().map(|(s, len)| (s, s + len)).collect();
            let m = MintRanges::new("m", ranges.clone());
            let in_union = ranges.iter().any(|&(s, e)| s <= probe && probe < e);
            prop_assert_eq!(m.contains(probe), in_union);
            for w in m.ranges.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
        }
    }
}
