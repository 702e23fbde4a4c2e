//! What to fetch: per mint, the merged time ranges of its windows; and how one fetch splits into passes.

use std::collections::BTreeMap;

use crate::spec::mint_bucket::mint_bucket_index;

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
        self.range_of(ts_ms).is_some()
    }

    /// The range that holds `ts_ms`, if any.
    pub fn range_of(&self, ts_ms: i64) -> Option<TimeRange> {
        let i = self.ranges.partition_point(|&(_, e)| e <= ts_ms);
        self.ranges.get(i).copied().filter(|&(s, _)| s <= ts_ms)
    }
}

/// Consecutive ranges of a mint are read as one when the gap between them is at most this fraction of the two
/// ranges' length: the rows between them (fetched and dropped) then stay within 5% of the rows kept.
const GAP_DIVISOR: i64 = 20;
/// Most passes a fetch is split into: a mint's ranges are read in at most this many separate parts.
pub const MAX_PASSES: usize = 8;

/// Per mint (sorted, with candles to read), the merged ranges of its windows.
pub fn plan_mints(per_mint: BTreeMap<String, Vec<TimeRange>>) -> Vec<MintRanges> {
    per_mint
        .into_iter()
        .map(|(mint, ranges)| MintRanges::new(mint, ranges))
        .filter(|m| !m.ranges.is_empty())
        .collect()
}

/// The parts of a mint's ranges that are read together, in time order: ranges close to each other are
/// merged (see [`GAP_DIVISOR`]); if more than [`MAX_PASSES`] parts remain, the closest ones are merged.
pub fn read_parts(m: &MintRanges) -> Vec<MintRanges> {
    let mut parts: Vec<Vec<TimeRange>> = Vec::new();
    for &r in &m.ranges {
        match parts.last_mut() {
            Some(part) => {
                let (start, end) = (part[0].0, part[part.len() - 1].1);
                if (r.0 - end) * GAP_DIVISOR <= (end - start) + (r.1 - r.0) {
                    part.push(r);
                } else {
                    parts.push(vec![r]);
                }
            }
            None => parts.push(vec![r]),
        }
    }
    while parts.len() > MAX_PASSES {
        let gap = |i: usize| parts[i + 1][0].0 - parts[i][parts[i].len() - 1].1;
        let closest = (0..parts.len() - 1)
            .min_by_key(|&i| (gap(i), i))
            .expect("two parts at least");
        let next = parts.remove(closest + 1);
        parts[closest].extend(next);
    }
    parts
        .into_iter()
        .map(|ranges| MintRanges {
            mint: m.mint.clone(),
            ranges,
        })
        .collect()
}

/// A fetch split into passes: pass `j` reads the `j`-th part of every mint that has one, so no query names a
/// mint twice and each query's mints stay in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passes {
    /// Per pass, its mints' parts, sorted by mint.
    pub passes: Vec<Vec<MintRanges>>,
    /// For each mint of the plan (in order), how many passes read it.
    pub parts_per_mint: Vec<usize>,
}

/// Splits a plan (sorted by mint) into passes.
pub fn split_passes(plan: &[MintRanges]) -> Passes {
    let mut passes: Vec<Vec<MintRanges>> = Vec::new();
    let mut parts_per_mint = Vec::with_capacity(plan.len());
    for m in plan {
        let parts = read_parts(m);
        parts_per_mint.push(parts.len());
        for (j, part) in parts.into_iter().enumerate() {
            if passes.len() <= j {
                passes.push(Vec::new());
            }
            passes[j].push(part);
        }
    }
    Passes {
        passes,
        parts_per_mint,
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

/// Groups a plan's mints by bucket; buckets and mints come out sorted.
pub fn group_by_bucket(plan: &[MintRanges]) -> Vec<BucketRequest> {
    let mut buckets: BTreeMap<u8, Vec<MintRanges>> = BTreeMap::new();
    for m in plan {
        buckets
            .entry(mint_bucket_index(&m.mint))
            .or_default()
            .push(m.clone());
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
        let plan = plan_mints(per_mint);
        assert_eq!(plan.len(), 2, "abc has only an empty range and is left out");
        let buckets: Vec<u8> = group_by_bucket(&plan).iter().map(|b| b.bucket).collect();
        assert_eq!(buckets, vec![0x4d, 0x86]);
    }

    #[test]
    fn close_ranges_are_read_together_far_ones_apart() {
        let hour = 3_600_000;
        // Two windows of 10 h, 30 min apart (2.5% of 20 h): one part. A third one a month later: its own part.
        let m = MintRanges::new(
            "m",
            vec![
                (0, 10 * hour),
                (10 * hour + hour / 2, 20 * hour),
                (720 * hour, 730 * hour),
            ],
        );
        let parts = read_parts(&m);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].ranges.len(), 2);
        assert_eq!(parts[1].ranges, vec![(720 * hour, 730 * hour)]);
        // Many far-apart windows end up in at most MAX_PASSES parts, closest merged first, none lost.
        let many = MintRanges::new(
            "m",
            (0..20)
                .map(|i| (i * i * 100 * hour, i * i * 100 * hour + hour))
                .collect(),
        );
        let parts = read_parts(&many);
        assert_eq!(parts.len(), MAX_PASSES);
        let rejoined: Vec<TimeRange> = parts.iter().flat_map(|p| p.ranges.clone()).collect();
        assert_eq!(rejoined, many.ranges);
        assert_eq!(
            parts[0].ranges.len(),
            13,
            "the closest (earliest) windows merge first"
        );
    }

    #[test]
    fn passes_hold_each_mint_once_in_key_order() {
        let day = 86_400_000;
        let plan = vec![
            MintRanges::new("a", vec![(0, day), (100 * day, 101 * day)]),
            MintRanges::new("b", vec![(0, day)]),
            MintRanges::new(
                "c",
                vec![(0, day), (50 * day, 51 * day), (100 * day, 101 * day)],
            ),
        ];
        let p = split_passes(&plan);
        assert_eq!(p.parts_per_mint, vec![2, 1, 3]);
        let names = |j: usize| {
            p.passes[j]
                .iter()
                .map(|m| m.mint.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (names(0), names(1), names(2)),
            (vec!["a", "b", "c"], vec!["a", "c"], vec!["c"])
        );
        assert_eq!(p.passes[1][1].ranges, vec![(50 * day, 51 * day)]);
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
