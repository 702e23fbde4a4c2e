//! Refreshing a stale sealed day in part (docs/lake-format.md, "Refresh"): only the buckets whose source
//! changed are rebuilt, and in them only the mints whose source changed are fetched again.
//!
//! The day's fingerprint holds each mint's print (candles, largest version), the server's current one too, so the
//! changed mints of a changed bucket are known without reading its rows. A rebuilt bucket is written from the
//! day's own sealed files for its unchanged mints and the fetched rows for the changed ones, in mint order through
//! the same writers, so its files are byte for byte those of an export from scratch. The fetched rows are parked
//! per bucket in a spill file and each bucket is then written alone: memory holds one bucket's kept rows, never
//! the day. Unchanged buckets keep their files (hard links on disk, untouched objects in a store).
//!
//! When most of the day changed (the indexer catching up), one range query over the day costs the server less
//! than a list of mints, so the whole day is exported again instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{LakeError, Result};
use crate::lake::day_manifest::DayManifest;
use crate::lake::fingerprint::{BucketPrint, SourceFingerprint};
use crate::lake::layout::bucket_of_day_path;
use crate::lake::manifest::{FetchStats, WrittenFile};
use crate::pipeline::sink::MintSink;
use crate::source::corpus::read_mints;
use crate::source::fetched_mint::FetchedMint;
use crate::spec::fetch_plan::MintRanges;
use crate::spec::mint_bucket::mint_bucket_index;
use crate::task::cancel::CancelFlag;
use crate::writer::bucket_writer::PartSettings;
use crate::writer::page_spill::{PageStore, SpillFile};
use crate::writer::pool::WriterPool;

use super::batch::{decode_rows, encode_rows};

/// A day is refreshed in part only while the candles of its changed mints are at most this share of the day's.
const MAX_CHANGED_SHARE: f64 = 0.5;

/// One bucket to rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ChangedBucket {
    /// Mints whose rows are fetched again (changed or new, still in the source), sorted.
    pub fetch: Vec<String>,
    /// Mints whose rows are copied from the sealed files (unchanged), sorted.
    pub keep: Vec<String>,
    /// The sealed files of the bucket.
    pub old_files: Vec<WrittenFile>,
}

/// What a partial refresh of one day does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshPlan {
    /// The buckets to rebuild.
    pub changed: BTreeMap<u8, ChangedBucket>,
    /// The sealed files of the unchanged buckets, kept as they are.
    pub kept_files: Vec<WrittenFile>,
}

impl RefreshPlan {
    /// How a sealed day with manifest `sealed` becomes what the server holds now (`now`, for the same
    /// selection), or `None` when it is better exported whole: no fingerprint to compare, another method, or
    /// most of its candles changed.
    pub fn new(sealed: &DayManifest, now: &SourceFingerprint) -> Option<Self> {
        let then = sealed.source_fingerprint.as_ref()?;
        if then.method != now.method || then.version_column != now.version_column {
            return None;
        }
        let files_by_bucket = files_by_bucket(sealed, then)?;
        let keys: BTreeSet<&String> = then.buckets.keys().chain(now.buckets.keys()).collect();
        let (mut changed, mut fetched_candles) = (BTreeMap::new(), 0u64);
        for key in keys {
            let b = u8::from_str_radix(key, 16).ok()?;
            let (old, new) = (then.buckets.get(key), now.buckets.get(key));
            if let (Some(old), Some(new)) = (old, new) {
                if old.same_source(new) {
                    continue;
                }
            }
            let empty = BucketPrint::empty();
            let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
            // A bucket sealed before per-mint prints is fetched whole.
            let old_known = old.candles == 0 || !old.mints.is_empty();
            let mut bucket = ChangedBucket {
                old_files: files_by_bucket.get(&b).cloned().unwrap_or_default(),
                ..Default::default()
            };
            for (mint, print) in &new.mints {
                if old_known && old.mints.get(mint) == Some(print) {
                    bucket.keep.push(mint.clone());
                } else {
                    bucket.fetch.push(mint.clone());
                    fetched_candles += print.0;
                }
            }
            changed.insert(b, bucket);
        }
        let total: u64 = now.buckets.values().map(|p| p.candles).sum();
        Self::unless_most(sealed, changed, fetched_candles, total)
    }

    /// How a sealed day becomes what the server holds now when only `mints` (sorted, in the day's selection)
    /// may have changed, before their rows are read: each is fetched, the other mints of their buckets kept.
    /// `None` as for [`Self::new`], judging the share by the mints' sealed candles.
    pub fn for_mints(sealed: &DayManifest, mints: &[String]) -> Option<Self> {
        let then = sealed.source_fingerprint.as_ref()?;
        let files_by_bucket = files_by_bucket(sealed, then)?;
        let (mut changed, mut fetched_candles) = (BTreeMap::<u8, ChangedBucket>::new(), 0u64);
        for m in mints {
            let b = mint_bucket_index(m);
            if let Some(old) = then.buckets.get(&format!("{b:02x}")) {
                if old.candles > 0 && old.mints.is_empty() {
                    return None;
                }
                fetched_candles += old.mints.get(m).map_or(0, |p| p.0);
            }
            let bucket = changed.entry(b).or_insert_with(|| ChangedBucket {
                old_files: files_by_bucket.get(&b).cloned().unwrap_or_default(),
                ..Default::default()
            });
            bucket.fetch.push(m.clone());
        }
        for (b, bucket) in &mut changed {
            bucket.fetch.sort_unstable();
            bucket.keep = then
                .buckets
                .get(&format!("{b:02x}"))
                .map(|p| {
                    p.mints
                        .keys()
                        .filter(|m| bucket.fetch.binary_search(m).is_err())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
        }
        let total: u64 = then.buckets.values().map(|p| p.candles).sum();
        Self::unless_most(sealed, changed, fetched_candles, total)
    }

    /// The plan rebuilding `changed`, or `None` when its fetched candles are most of the day's `total`.
    fn unless_most(
        sealed: &DayManifest,
        changed: BTreeMap<u8, ChangedBucket>,
        fetched_candles: u64,
        total: u64,
    ) -> Option<Self> {
        if fetched_candles as f64 > MAX_CHANGED_SHARE * total as f64 {
            return None;
        }
        let kept_files = sealed
            .files
            .iter()
            .filter(|f| bucket_of_day_path(&f.rel_path).is_some_and(|b| !changed.contains_key(&b)))
            .cloned()
            .collect();
        Some(Self {
            changed,
            kept_files,
        })
    }

    /// Every mint to fetch, sorted.
    pub fn fetched_mints(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .changed
            .values()
            .flat_map(|b| b.fetch.iter().cloned())
            .collect();
        all.sort_unstable();
        all
    }

    /// The sealed files of the changed buckets.
    pub fn old_files(&self) -> Vec<WrittenFile> {
        self.changed
            .values()
            .flat_map(|b| b.old_files.iter().cloned())
            .collect()
    }

    /// How many mints are fetched again.
    pub fn mints_fetched(&self) -> u64 {
        self.changed.values().map(|b| b.fetch.len() as u64).sum()
    }
}

/// The sealed files of each bucket, or `None` when a bucket has files but no candles in the fingerprint (the two
/// disagree, so trust neither).
fn files_by_bucket(
    sealed: &DayManifest,
    then: &SourceFingerprint,
) -> Option<BTreeMap<u8, Vec<WrittenFile>>> {
    let mut out: BTreeMap<u8, Vec<WrittenFile>> = BTreeMap::new();
    for f in &sealed.files {
        let b = bucket_of_day_path(&f.rel_path)?;
        then.buckets.get(&format!("{b:02x}"))?;
        out.entry(b).or_default().push(f.clone());
    }
    Some(out)
}

/// The fetched rows of a refresh, parked per bucket until each bucket is rebuilt.
pub(crate) struct FetchedRows {
    spill: SpillFile,
    parts: BTreeMap<u8, Vec<(u64, u32)>>,
    /// What fetching them cost.
    pub stats: FetchStats,
    scratch: Vec<u8>,
    cancel: CancelFlag,
}

impl FetchedRows {
    /// A sink parking fetched mints in a new spill file at `spill`.
    pub fn new(spill: &Path, cancel: CancelFlag) -> Result<Self> {
        Ok(Self {
            spill: SpillFile::create(spill)?,
            parts: BTreeMap::new(),
            stats: FetchStats::default(),
            scratch: Vec::new(),
            cancel,
        })
    }

    /// Rebuilds each changed bucket of `plan` under `root` from the sealed files under `sealed_dir` and the
    /// parked rows; returns the new files, sorted by path.
    pub fn write_buckets(
        mut self,
        plan: &RefreshPlan,
        sealed_dir: &Path,
        (start_ms, end_ms): (i64, i64),
        root: &Path,
        part: PartSettings,
    ) -> Result<Vec<WrittenFile>> {
        // One bucket at a time: its pages wait in memory.
        let mut pool = WriterPool::new(root, "", part, PageStore::Memory)?;
        let mut record = Vec::new();
        for (&b, bucket) in &plan.changed {
            self.cancel.check()?;
            let paths: Vec<PathBuf> = bucket
                .old_files
                .iter()
                .map(|f| sealed_dir.join(&f.rel_path))
                .collect();
            let keep: Vec<MintRanges> = bucket
                .keep
                .iter()
                .map(|m| MintRanges::new(m.clone(), vec![(start_ms, end_ms)]))
                .collect();
            let mut kept = read_mints(&paths, &keep, &self.cancel)?
                .into_iter()
                .peekable();
            for &(at, len) in self.parts.get(&b).into_iter().flatten() {
                self.spill
                    .read_into(at, len as usize, &mut record)
                    .map_err(|e| spill_error(&e))?;
                let fetched = decode_rows(&record)?;
                while let Some(k) = kept.next_if(|k| k.candles.mint < fetched.mint) {
                    write_mint(&mut pool, b, k.candles)?;
                }
                write_mint(&mut pool, b, fetched)?;
            }
            for k in kept {
                write_mint(&mut pool, b, k.candles)?;
            }
            pool.close_bucket(b)?;
        }
        pool.finish()
    }
}

fn write_mint(
    pool: &mut WriterPool,
    bucket: u8,
    candles: crate::spec::candles::MintCandles,
) -> Result<()> {
    // A mint without candles has no rows in an export from scratch either.
    if candles.is_empty() {
        return Ok(());
    }
    pool.write(bucket, candles)
}

fn spill_error(e: &std::io::Error) -> LakeError {
    LakeError::io("cannot use", Path::new("the refresh spill"), e)
}

impl MintSink for FetchedRows {
    type Output = FetchedRows;

    fn add(&mut self, m: FetchedMint) -> Result<()> {
        self.cancel.check()?;
        self.stats.rows_fetched += m.rows_fetched;
        self.stats.duplicates_dropped += m.duplicates_dropped;
        if m.candles.is_empty() {
            return Ok(());
        }
        let c = &m.candles;
        encode_rows(c, 0..c.len(), &mut self.scratch);
        let at = self
            .spill
            .append(&self.scratch)
            .map_err(|e| spill_error(&e))?;
        self.parts
            .entry(mint_bucket_index(&c.mint))
            .or_default()
            .push((at, self.scratch.len() as u32));
        Ok(())
    }

    fn finish(self) -> Result<Self::Output> {
        self.cancel.check()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::day_manifest::Selection;
    use crate::lake::fingerprint::MintPrint;
    use crate::lake::manifest::SourceSnapshot;
    use crate::spec::bucket_range::BucketRange;
    use crate::spec::mint_bucket::compute_mint_bucket;

    fn fingerprint(mints: &[(&str, u64, &str)]) -> SourceFingerprint {
        let mut buckets = crate::lake::fingerprint::BucketPrints::new();
        for &(m, n, v) in mints {
            // Stands in for the server's cityHash64: any function of (mint, candles, version).
            let hash = format!("{m}/{n}/{v}")
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
                    (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
                });
            let p = BucketPrint::of_mint(m, MintPrint(n, v.into()), hash);
            buckets
                .entry(compute_mint_bucket(m))
                .and_modify(|b| b.merge(&p))
                .or_insert(p);
        }
        SourceFingerprint::new(Some("ingested_at".into()), buckets)
    }

    fn sealed(print: SourceFingerprint) -> DayManifest {
        let files = print
            .buckets
            .iter()
            .map(|(b, p)| WrittenFile {
                rel_path: format!("mint_bucket={b}/part-0000.parquet"),
                rows: p.candles,
                bytes: 1,
                sha256: String::new(),
            })
            .collect();
        DayManifest::new(
            "2025-01-01".into(),
            "1m".into(),
            "solana".into(),
            SourceSnapshot::ClickHouse {
                cluster: "h".into(),
                database: "d".into(),
                table: "t".into(),
                as_of: "x".into(),
            },
            Selection {
                buckets: BucketRange::ALL,
                mint_filter: None,
            },
        )
        .with_files(files, FetchStats::default(), "then".into())
        .with_fingerprint(Some(print))
    }

    /// Mints chosen to fall in distinct buckets: a refresh of one must not touch the others.
    const MINTS: [&str; 4] = ["mint-a", "mint-b", "mint-c", "mint-d"];

    fn base() -> Vec<(&'static str, u64, &'static str)> {
        MINTS.iter().map(|m| (*m, 100, "v1")).collect()
    }

    #[test]
    fn only_changed_mints_of_changed_buckets_are_fetched() {
        let buckets: BTreeSet<String> = MINTS.iter().map(|m| compute_mint_bucket(m)).collect();
        assert_eq!(buckets.len(), MINTS.len(), "the test mints share a bucket");
        let day = sealed(fingerprint(&base()));
        let mut late = base();
        late[1].1 = 101;
        late[1].2 = "v2";
        let plan = RefreshPlan::new(&day, &fingerprint(&late)).unwrap();
        let b = mint_bucket_index("mint-b");
        assert_eq!(plan.changed.keys().copied().collect::<Vec<_>>(), vec![b]);
        assert_eq!(plan.changed[&b].fetch, vec!["mint-b".to_owned()]);
        assert!(plan.changed[&b].keep.is_empty());
        assert_eq!(plan.kept_files.len(), 3);
        assert_eq!(plan.fetched_mints(), vec!["mint-b".to_owned()]);
    }

    #[test]
    fn a_mint_that_disappears_or_appears_changes_its_bucket_only() {
        let day = sealed(fingerprint(&base()));
        let mut now = base();
        now.remove(2);
        now.push(("mint-new", 5, "v2"));
        let plan = RefreshPlan::new(&day, &fingerprint(&now)).unwrap();
        let (gone, new) = (mint_bucket_index("mint-c"), mint_bucket_index("mint-new"));
        assert!(plan.changed[&gone].fetch.is_empty());
        assert_eq!(
            plan.changed[&gone].old_files[0].rel_path,
            format!("mint_bucket={gone:02x}/part-0000.parquet")
        );
        assert_eq!(plan.changed[&new].fetch, vec!["mint-new".to_owned()]);
        let kept: Vec<&str> = plan
            .kept_files
            .iter()
            .map(|f| f.rel_path.as_str())
            .collect();
        let untouched: Vec<&str> = day
            .files
            .iter()
            .map(|f| f.rel_path.as_str())
            .filter(|f| bucket_of_day_path(f).is_some_and(|b| b != gone && b != new))
            .collect();
        assert_eq!(kept, untouched);
        assert!(!kept.is_empty());
    }

    #[test]
    fn mints_with_new_rows_are_fetched_and_the_rest_of_their_buckets_kept() {
        let mut mints = base();
        mints.push(("mint-e", 100, "v1"));
        let day = sealed(fingerprint(&mints));
        let asked = vec!["mint-b".to_owned(), "mint-new".to_owned()];
        let plan = RefreshPlan::for_mints(&day, &asked).unwrap();
        let (b, new) = (mint_bucket_index("mint-b"), mint_bucket_index("mint-new"));
        assert_eq!(plan.changed[&b].fetch, vec!["mint-b".to_owned()]);
        assert_eq!(plan.changed[&new].fetch, vec!["mint-new".to_owned()]);
        let sealed_of_b: Vec<String> = fingerprint(&mints).buckets[&format!("{b:02x}")]
            .mints
            .keys()
            .filter(|m| *m != "mint-b")
            .cloned()
            .collect();
        assert_eq!(plan.changed[&b].keep, sealed_of_b);
        assert_eq!(plan.fetched_mints(), asked);
        assert_eq!(
            plan.kept_files.len() + plan.old_files().len(),
            day.files.len()
        );
        let most: Vec<String> = MINTS.iter().map(|m| (*m).to_owned()).collect();
        assert!(RefreshPlan::for_mints(&day, &most).is_none());
    }

    #[test]
    fn most_of_a_day_changed_or_no_mint_prints_means_a_whole_export() {
        let day = sealed(fingerprint(&base()));
        let mut most = base();
        for m in most.iter_mut().take(3) {
            m.2 = "v2";
        }
        assert!(RefreshPlan::new(&day, &fingerprint(&most)).is_none());
        let mut old = fingerprint(&base());
        for p in old.buckets.values_mut() {
            p.mints.clear();
        }
        let mut late = base();
        late[0].1 = 101;
        let plan = RefreshPlan::new(&sealed(old), &fingerprint(&late)).unwrap();
        let a = mint_bucket_index("mint-a");
        assert_eq!(
            plan.changed[&a].fetch,
            vec!["mint-a".to_owned()],
            "without prints, the changed bucket is fetched whole"
        );
        let mut unprinted = day.clone();
        unprinted.source_fingerprint = None;
        assert!(RefreshPlan::new(&unprinted, &fingerprint(&late)).is_none());
    }
}
