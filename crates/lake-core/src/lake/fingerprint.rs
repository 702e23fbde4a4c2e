//! A corpus day's source fingerprint (docs/lake-format.md, "Source fingerprint"): what ClickHouse held for the
//! day when it was read, summarised per mint bucket, so that a later check can tell whether the source changed.
//!
//! Per bucket: the candles the day holds (distinct times per mint, summed), the largest version (`ingested_at`)
//! of any of its rows, and an order-free hash over (mint, candles, largest version) of each mint. All three are
//! unchanged by ClickHouse's background merges, which only drop superseded versions: a merge never makes a day
//! look stale. A late candle changes the count; a re-ingested candle changes the largest version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lake::day_manifest::DayManifest;
use sha2::{Digest, Sha256};

use crate::spec::bucket_range::BucketRange;
use crate::spec::mint_bucket::compute_mint_bucket;

/// `method` of the fingerprints this version writes.
pub const METHOD: &str = "distinct-keys+max-version/v1";

/// One mint's summary of the source for a day: its candles and the largest version of its rows (as the server
/// prints it). Stored as `[candles, max_version]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintPrint(pub u64, pub String);

/// One bucket's summary of the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketPrint {
    /// Candles: distinct (mint, time) keys of the bucket's mints.
    pub candles: u64,
    /// The largest version of any row, as the server prints it; empty when the table has no version column.
    pub max_version: String,
    /// Order-free hash (XOR of `cityHash64(mint, candles, max version)` per mint), 16 hex digits.
    pub hash: String,
    /// Each mint's summary, so that a refresh can tell which mints of a changed bucket changed. Absent in days
    /// sealed before per-bucket refresh (their changed buckets are fetched whole); not part of the digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mints: BTreeMap<String, MintPrint>,
}

impl BucketPrint {
    /// The summary of one mint: its print and its `cityHash64` as the server computed it.
    pub fn of_mint(mint: &str, print: MintPrint, hash: u64) -> Self {
        Self {
            candles: print.0,
            max_version: print.1.clone(),
            hash: format!("{hash:016x}"),
            mints: BTreeMap::from([(mint.to_owned(), print)]),
        }
    }

    /// Combines two partial summaries of one bucket (from queries over parts of a mint list).
    pub fn merge(&mut self, other: &BucketPrint) {
        self.candles += other.candles;
        if newer(&other.max_version, &self.max_version) {
            self.max_version.clone_from(&other.max_version);
        }
        let xor = u64::from_str_radix(&self.hash, 16).unwrap_or(0)
            ^ u64::from_str_radix(&other.hash, 16).unwrap_or(0);
        self.hash = format!("{xor:016x}");
        self.mints
            .extend(other.mints.iter().map(|(m, p)| (m.clone(), p.clone())));
    }

    /// The summary of a bucket holding `mints`; `hash` gives each mint's (the server's `cityHash64` of its
    /// mint, candles and version), so the result is what the fingerprint query would answer for them.
    pub fn of_mints(
        mints: &BTreeMap<String, MintPrint>,
        hash: impl Fn(&str, &MintPrint) -> u64,
    ) -> Self {
        let mut out = Self::empty();
        for (m, p) in mints {
            out.merge(&Self::of_mint(m, p.clone(), hash(m, p)));
        }
        out
    }

    /// A bucket without candles.
    pub fn empty() -> Self {
        Self {
            candles: 0,
            max_version: String::new(),
            hash: format!("{:016x}", 0),
            mints: BTreeMap::new(),
        }
    }

    /// True when both summarise the same source: candles, largest version and hash (the mints are detail).
    pub fn same_source(&self, other: &BucketPrint) -> bool {
        (self.candles, &self.max_version, &self.hash)
            == (other.candles, &other.max_version, &other.hash)
    }
}

/// True when version `a` is later than `b`: numerically for numbers (a `UInt64` version column), else as text
/// (`YYYY-MM-DD hh:mm:ss` sorts as time).
fn newer(a: &str, b: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        (a.len(), a) > (b.len(), b)
    } else {
        a > b
    }
}

/// Per-bucket summaries, keyed by the two-digit bucket; buckets without candles are absent.
pub type BucketPrints = BTreeMap<String, BucketPrint>;

/// `source_fingerprint` of a day manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFingerprint {
    /// How it was computed; a fingerprint made another way is never compared, only redone.
    pub method: String,
    /// The column whose largest value is recorded, or null when the table has none.
    pub version_column: Option<String>,
    /// SHA-256 over the buckets' entries: the one value a run made from the corpus records per day.
    pub digest: String,
    /// The summaries of the buckets the manifest covers.
    pub buckets: BucketPrints,
    /// The table's data parts that could hold the day's rows, listed before they were read, so that a later
    /// check asks only for the rows of parts made since. Absent where the table's merges can change the rows
    /// read, and in days sealed before it; not part of the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<SourceParts>,
}

/// `source_fingerprint.parts` (docs/lake-format.md, "Refresh"): ClickHouse's active data parts when a day was
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceParts {
    /// The largest block number (inserted or mutated) of any active part of the table then.
    pub max_block: i64,
    /// The names of the active parts whose time range meets the day's, sorted.
    pub names: Vec<String>,
}

impl SourceFingerprint {
    /// The fingerprint of `buckets`.
    pub fn new(version_column: Option<String>, buckets: BucketPrints) -> Self {
        let mut h = Sha256::new();
        for (b, p) in &buckets {
            h.update(format!(
                "{b}\t{}\t{}\t{}\n",
                p.candles, p.max_version, p.hash
            ));
        }
        Self {
            method: METHOD.to_owned(),
            version_column,
            digest: hex::encode(h.finalize()),
            buckets,
            parts: None,
        }
    }

    /// The same fingerprint with the data parts listed before its rows were read.
    pub fn with_parts(self, parts: Option<SourceParts>) -> Self {
        Self { parts, ..self }
    }

    /// Only the buckets of `range`.
    pub fn restricted(&self, range: BucketRange) -> Self {
        let buckets = self
            .buckets
            .iter()
            .filter(|(b, _)| u8::from_str_radix(b, 16).is_ok_and(|b| range.contains(b)))
            .map(|(b, p)| (b.clone(), p.clone()))
            .collect();
        Self::new(self.version_column.clone(), buckets).with_parts(self.parts.clone())
    }

    /// This fingerprint with the prints of `mints` replaced by those `now` holds (a mint absent there has no
    /// candles any more), each changed bucket summarised again from its mints with `hash` (see
    /// [`BucketPrint::of_mints`]). `None` when a bucket to change has no per-mint prints.
    pub fn with_mints(
        &self,
        mints: &[String],
        now: &BucketPrints,
        hash: impl Fn(&str, &MintPrint) -> u64,
    ) -> Option<Self> {
        let mut buckets = self.buckets.clone();
        let mut touched = std::collections::BTreeSet::new();
        for m in mints {
            let key = compute_mint_bucket(m);
            let bucket = buckets
                .entry(key.clone())
                .or_insert_with(BucketPrint::empty);
            if bucket.candles > 0 && bucket.mints.is_empty() {
                return None;
            }
            bucket.mints.remove(m);
            if let Some(p) = now.get(&key).and_then(|b| b.mints.get(m)) {
                bucket.mints.insert(m.clone(), p.clone());
            }
            touched.insert(key);
        }
        for key in touched {
            let mints = std::mem::take(&mut buckets.get_mut(&key)?.mints);
            if mints.is_empty() {
                buckets.remove(&key);
            } else {
                buckets.insert(key, BucketPrint::of_mints(&mints, &hash));
            }
        }
        Some(Self::new(self.version_column.clone(), buckets).with_parts(self.parts.clone()))
    }

    /// One fingerprint from those of disjoint bucket ranges (the shards of a day).
    pub fn union<'a>(parts: impl IntoIterator<Item = &'a SourceFingerprint>) -> Option<Self> {
        let mut version_column = None;
        let mut buckets = BucketPrints::new();
        for p in parts {
            if p.method != METHOD {
                return None;
            }
            version_column.clone_from(&p.version_column);
            buckets.extend(p.buckets.iter().map(|(b, v)| (b.clone(), v.clone())));
        }
        Some(Self::new(version_column, buckets))
    }

    /// What changed from `self` (what was read) to `now` (what the server holds), or `None` when nothing did.
    pub fn changes(&self, now: &SourceFingerprint) -> Option<String> {
        if self.method != now.method {
            return Some(format!(
                "fingerprint method {} is not {}",
                self.method, now.method
            ));
        }
        if self.digest == now.digest {
            return None;
        }
        let empty = BucketPrint::empty();
        let keys: std::collections::BTreeSet<&String> =
            self.buckets.keys().chain(now.buckets.keys()).collect();
        let mut changed = Vec::new();
        let (mut before, mut after, mut got_newer) = (0u64, 0u64, false);
        for b in keys {
            let (old, new) = (
                self.buckets.get(b).unwrap_or(&empty),
                now.buckets.get(b).unwrap_or(&empty),
            );
            if old.same_source(new) {
                continue;
            }
            changed.push(b.as_str());
            before += old.candles;
            after += new.candles;
            got_newer |= newer(&new.max_version, &old.max_version);
        }
        let mut what = Vec::new();
        if before != after {
            what.push(format!("{before} → {after} candles"));
        }
        if got_newer {
            what.push("newer versions".to_owned());
        }
        if what.is_empty() {
            what.push("different rows per mint".to_owned());
        }
        let list = if changed.len() > 8 {
            format!("{} buckets", changed.len())
        } else {
            format!(
                "bucket{} {}",
                if changed.len() == 1 { "" } else { "s" },
                changed.join(", ")
            )
        };
        Some(format!("{list}: {}", what.join(", ")))
    }
}

/// About how many candles a fingerprint query over the sealed day `manifest` counts: its fingerprint's, over
/// every bucket when the selection is a shard without a mint filter (such a query reads every mint of the day).
pub fn query_size(manifest: &DayManifest) -> Option<u64> {
    let print = manifest.source_fingerprint.as_ref()?;
    let candles: u64 = print.buckets.values().map(|p| p.candles).sum();
    let range = manifest.selection.buckets;
    let share = u64::from(range.hi - range.lo) + 1;
    Some(match manifest.selection.mint_filter {
        Some(_) => candles,
        None => candles.saturating_mul(256).div_ceil(share),
    })
}

/// A sealed day against its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// The source holds what the day was made from.
    Fresh,
    /// The source changed since: what changed.
    Stale(String),
    /// The day was sealed without a fingerprint (by an exporter before fingerprints), so no check can tell.
    Unfingerprinted,
}

/// Compares a sealed manifest with the server's fingerprint of the same day and selection.
pub fn freshness(manifest: &DayManifest, now: Option<&SourceFingerprint>) -> Freshness {
    match (&manifest.source_fingerprint, now) {
        (None, _) => Freshness::Unfingerprinted,
        (Some(then), Some(now)) => match then.changes(now) {
            None => Freshness::Fresh,
            Some(what) => Freshness::Stale(what),
        },
        (Some(_), None) => Freshness::Stale("the server was not asked".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(candles: u64, version: &str, hash: u64) -> BucketPrint {
        BucketPrint {
            candles,
            max_version: version.into(),
            hash: format!("{hash:016x}"),
            mints: BTreeMap::new(),
        }
    }

    fn fp(entries: &[(&str, BucketPrint)]) -> SourceFingerprint {
        SourceFingerprint::new(
            Some("ingested_at".into()),
            entries
                .iter()
                .map(|(b, p)| ((*b).to_owned(), p.clone()))
                .collect(),
        )
    }

    #[test]
    fn the_same_source_is_unchanged_and_any_change_is_named() {
        let a = fp(&[
            ("00", print(10, "2024-01-01 00:00:00", 1)),
            ("3f", print(5, "2024-01-01 00:00:00", 2)),
        ]);
        assert_eq!(a.changes(&a.clone()), None);
        let late = fp(&[
            ("00", print(12, "2024-01-02 00:00:00", 9)),
            ("3f", print(5, "2024-01-01 00:00:00", 2)),
        ]);
        assert_eq!(
            a.changes(&late).unwrap(),
            "bucket 00: 10 → 12 candles, newer versions"
        );
        let corrected = fp(&[
            ("00", print(10, "2024-01-01 00:00:00", 1)),
            ("3f", print(5, "2024-02-01 00:00:00", 3)),
        ]);
        assert_eq!(a.changes(&corrected).unwrap(), "bucket 3f: newer versions");
        let gone = fp(&[("00", print(10, "2024-01-01 00:00:00", 1))]);
        assert_eq!(a.changes(&gone).unwrap(), "bucket 3f: 5 → 0 candles");
        let moved = fp(&[
            ("00", print(10, "2024-01-01 00:00:00", 7)),
            ("3f", print(5, "2024-01-01 00:00:00", 2)),
        ]);
        assert_eq!(
            a.changes(&moved).unwrap(),
            "bucket 00: different rows per mint"
        );
    }

    #[test]
    fn mints_patched_in_give_the_fingerprint_of_the_new_mints() {
        // Stands in for the server's cityHash64: any function of (mint, candles, version).
        let hash = |m: &str, p: &MintPrint| {
            format!("{m}/{}/{}", p.0, p.1)
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
                    (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
                })
        };
        let of = |mints: &[(&str, u64, &str)]| {
            let mut buckets = BucketPrints::new();
            for &(m, n, v) in mints {
                let p = MintPrint(n, v.into());
                let one = BucketPrint::of_mint(m, p.clone(), hash(m, &p));
                buckets
                    .entry(compute_mint_bucket(m))
                    .and_modify(|b| b.merge(&one))
                    .or_insert(one);
            }
            SourceFingerprint::new(Some("ingested_at".into()), buckets)
        };
        let then = of(&[("a", 10, "v1"), ("b", 10, "v1"), ("c", 10, "v1")]);
        let now = of(&[("a", 12, "v2"), ("c", 10, "v1"), ("d", 3, "v2")]);
        let asked: Vec<String> = ["a", "b", "d"].iter().map(|m| (*m).to_owned()).collect();
        let patched = then.with_mints(&asked, &now.buckets, hash).unwrap();
        assert_eq!(patched, now);
        assert_eq!(then.with_mints(&[], &now.buckets, hash).unwrap(), then);
        let mut unprinted = then.clone();
        for b in unprinted.buckets.values_mut() {
            b.mints.clear();
        }
        assert!(unprinted.with_mints(&asked, &now.buckets, hash).is_none());
    }

    #[test]
    fn partial_summaries_merge_and_shards_unite_to_the_whole() {
        let mut x = print(3, "2024-01-01 00:00:00", 0b1010);
        x.merge(&print(4, "2024-03-01 00:00:00", 0b0110));
        assert_eq!(x, print(7, "2024-03-01 00:00:00", 0b1100));
        let mut n = print(1, "9", 0);
        n.merge(&print(1, "10", 0));
        assert_eq!(n.max_version, "10", "numeric versions compare as numbers");
        let whole = fp(&[
            ("00", print(1, "v", 1)),
            ("80", print(2, "v", 2)),
            ("ff", print(3, "v", 3)),
        ]);
        let low = whole.restricted(BucketRange::parse("00-7f").unwrap());
        let high = whole.restricted(BucketRange::parse("80-ff").unwrap());
        assert_eq!(low.buckets.len(), 1);
        assert_eq!(SourceFingerprint::union([&low, &high]).unwrap(), whole);
        let mut other = high.clone();
        other.method = "another/v0".into();
        assert!(SourceFingerprint::union([&low, &other]).is_none());
        assert!(whole.changes(&other).unwrap().contains("method"));
    }
}
