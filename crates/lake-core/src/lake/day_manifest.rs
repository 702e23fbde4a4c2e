//! Manifests of corpus days (docs/lake-format.md, "Corpus day manifest"): one per sealed day (`manifest.json`),
//! and one per shard of a multi-machine export (`manifest.buckets-<lo>-<hi>.json`), which merge into the day's
//! manifest once they cover every bucket.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::lake::fingerprint::SourceFingerprint;
use crate::lake::manifest::{
    sealed_json, sorted_files, Exporter, FetchStats, OutputTotals, Seal, SourceSnapshot,
    WrittenFile, LAKE_VERSION,
};
use crate::spec::bucket_range::BucketRange;

/// `kind` of a corpus day manifest.
const KIND: &str = "corpus_day";
/// The dataset every corpus day holds.
const DATASET: &str = "ohlcv";

/// `selection.mint_filter`: how many mints were asked for and a digest of the sorted list, so a re-run can tell
/// whether a sealed day was made with the same filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintFilter {
    /// Mints in the filter.
    pub mints: u64,
    /// SHA-256 over each mint followed by a zero byte, in sorted order.
    pub sha256: String,
}

impl MintFilter {
    /// The digest of a sorted, unique mint list.
    pub fn of(sorted_mints: &[String]) -> Self {
        let mut h = Sha256::new();
        for m in sorted_mints {
            h.update(m.as_bytes());
            h.update([0]);
        }
        Self {
            mints: sorted_mints.len() as u64,
            sha256: hex::encode(h.finalize()),
        }
    }
}

/// `selection`: which part of the day the manifest covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The buckets (`00-ff` for a whole day).
    pub buckets: BucketRange,
    /// The mint filter, or null for every mint.
    pub mint_filter: Option<MintFilter>,
}

/// A corpus day's (or one shard's) manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayManifest {
    /// `v1`.
    pub lake_version: String,
    /// `corpus_day`.
    pub kind: String,
    /// `ohlcv`.
    pub dataset: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Interval spec.
    pub interval: String,
    /// Chain.
    pub chain: String,
    /// Wall clock of the export (unsealed).
    pub created_at: String,
    /// Who wrote it.
    pub exporter: Exporter,
    /// The server read.
    pub source_snapshot: SourceSnapshot,
    /// What the server held for the day's selection when it was read; absent in days sealed before fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_fingerprint: Option<SourceFingerprint>,
    /// What part of the day this manifest covers.
    pub selection: Selection,
    /// Buckets, files and rows.
    pub outputs: OutputTotals,
    /// Data files, paths relative to the day directory, sorted.
    pub files: Vec<WrittenFile>,
    /// Fetch counters.
    pub stats: FetchStats,
    /// Absent until sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

impl DayManifest {
    /// The manifest of a day (or shard) before its files are known.
    pub fn new(
        date: String,
        interval: String,
        chain: String,
        source_snapshot: SourceSnapshot,
        selection: Selection,
    ) -> Self {
        Self {
            lake_version: LAKE_VERSION.to_owned(),
            kind: KIND.to_owned(),
            dataset: DATASET.to_owned(),
            date,
            interval,
            chain,
            created_at: String::new(),
            exporter: Exporter::current(),
            source_snapshot,
            source_fingerprint: None,
            selection,
            outputs: OutputTotals::of(&[]),
            files: Vec::new(),
            stats: FetchStats::default(),
            seal: None,
        }
    }

    /// The same manifest listing `files`, made at `created_at`.
    pub fn with_files(
        self,
        files: Vec<WrittenFile>,
        stats: FetchStats,
        created_at: String,
    ) -> Self {
        Self {
            outputs: OutputTotals::of(&files),
            files: sorted_files(files),
            stats,
            created_at,
            seal: None,
            ..self
        }
    }

    /// The same manifest with the source's fingerprint, taken before the day's rows were read.
    pub fn with_fingerprint(self, source_fingerprint: Option<SourceFingerprint>) -> Self {
        Self {
            source_fingerprint,
            ..self
        }
    }

    /// The sealed manifest as JSON.
    pub fn to_sealed_json(&self) -> Value {
        sealed_json(self)
    }

    /// True when it was made with this selection (so one can stand for the other).
    pub fn same_selection(&self, chain: &str, selection: &Selection) -> bool {
        self.chain == chain && &self.selection == selection
    }
}

/// Merges shard manifests into the day's manifest when they cover `00-ff` exactly once and agree on what they
/// hold, else `None`. The earliest `as_of` stands for the day, so the merge does not depend on which shard
/// finished last.
pub fn merge_shards(mut shards: Vec<DayManifest>, created_at: &str) -> Option<DayManifest> {
    shards.sort_by_key(|s| s.selection.buckets.lo);
    let mut next: u16 = 0;
    for s in &shards {
        if u16::from(s.selection.buckets.lo) != next {
            return None;
        }
        next = u16::from(s.selection.buckets.hi) + 1;
    }
    if next != 256 {
        return None;
    }
    let first = shards.first()?.clone();
    if shards.iter().any(|s| {
        s.chain != first.chain
            || s.interval != first.interval
            || s.date != first.date
            || s.selection.mint_filter != first.selection.mint_filter
    }) {
        return None;
    }
    let as_of = shards
        .iter()
        .map(|s| match &s.source_snapshot {
            SourceSnapshot::ClickHouse { as_of, .. } => Some(as_of.clone()),
            SourceSnapshot::Corpus { .. } => None,
        })
        .collect::<Option<Vec<String>>>()?
        .into_iter()
        .min()?;
    let source_snapshot = match first.source_snapshot.clone() {
        SourceSnapshot::ClickHouse {
            cluster,
            database,
            table,
            ..
        } => SourceSnapshot::ClickHouse {
            cluster,
            database,
            table,
            as_of,
        },
        other => other,
    };
    let files = shards
        .iter()
        .flat_map(|s| s.files.iter().cloned())
        .collect();
    let stats = shards.iter().map(|s| s.stats).sum();
    // Every shard was fingerprinted, or the day has no fingerprint: a part would claim freshness for the whole.
    let source_fingerprint = shards
        .iter()
        .map(|s| s.source_fingerprint.as_ref())
        .collect::<Option<Vec<_>>>()
        .and_then(SourceFingerprint::union);
    let day = DayManifest {
        source_snapshot,
        source_fingerprint,
        selection: Selection {
            buckets: BucketRange::ALL,
            mint_filter: first.selection.mint_filter.clone(),
        },
        ..first
    };
    Some(day.with_files(files, stats, created_at.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::fingerprint::BucketPrint;

    fn shard(range: &str, as_of: &str, rows: u64) -> DayManifest {
        let range = BucketRange::parse(range).unwrap();
        let file = WrittenFile {
            rel_path: format!("mint_bucket={:02x}/part-0000.parquet", range.lo),
            rows,
            bytes: rows * 30,
            sha256: "a".repeat(64),
        };
        DayManifest::new(
            "2025-01-02".into(),
            "1m".into(),
            "solana".into(),
            SourceSnapshot::ClickHouse {
                cluster: "h:8123".into(),
                database: "d".into(),
                table: "t".into(),
                as_of: as_of.into(),
            },
            Selection {
                buckets: range,
                mint_filter: None,
            },
        )
        .with_files(
            vec![file],
            FetchStats {
                rows_fetched: rows + 1,
                duplicates_dropped: 1,
                retries: 0,
            },
            "then".into(),
        )
        .with_fingerprint(Some(SourceFingerprint::new(
            Some("ingested_at".into()),
            [(
                format!("{:02x}", range.lo),
                BucketPrint {
                    candles: rows,
                    max_version: as_of.into(),
                    hash: "0".repeat(16),
                    mints: Default::default(),
                },
            )]
            .into(),
        )))
    }

    #[test]
    fn shards_that_cover_every_bucket_once_merge() {
        let merged = merge_shards(
            vec![
                shard("80-ff", "2025-01-03T00:00:02Z", 7),
                shard("00-7f", "2025-01-03T00:00:01Z", 5),
            ],
            "now",
        )
        .unwrap();
        assert!(merged.selection.buckets.is_all());
        assert_eq!(merged.created_at, "now");
        assert_eq!(merged.files.len(), 2);
        assert_eq!(merged.files[0].rel_path, "mint_bucket=00/part-0000.parquet");
        assert_eq!((merged.outputs.files, merged.outputs.rows), (2, 12));
        assert_eq!(merged.outputs.mint_buckets, ["00", "80"]);
        assert_eq!(merged.stats.rows_fetched, 14);
        assert_eq!(merged.stats.duplicates_dropped, 2);
        let fp = merged.source_fingerprint.as_ref().unwrap();
        assert_eq!(fp.buckets.keys().collect::<Vec<_>>(), ["00", "80"]);
        let mut unprinted = shard("80-ff", "2025-01-03T00:00:02Z", 7);
        unprinted.source_fingerprint = None;
        let half = merge_shards(vec![unprinted, shard("00-7f", "x", 5)], "now").unwrap();
        assert!(
            half.source_fingerprint.is_none(),
            "one shard's fingerprint never stands for the day"
        );
        let SourceSnapshot::ClickHouse { as_of, .. } = &merged.source_snapshot else {
            panic!("a ClickHouse day");
        };
        assert_eq!(
            as_of, "2025-01-03T00:00:01Z",
            "the earliest read stands for the day"
        );
    }

    #[test]
    fn gaps_overlaps_and_disagreements_do_not_merge() {
        let t = "2025-01-03T00:00:00Z";
        assert!(merge_shards(vec![shard("00-7e", t, 1), shard("80-ff", t, 1)], "n").is_none());
        assert!(merge_shards(vec![shard("00-80", t, 1), shard("80-ff", t, 1)], "n").is_none());
        assert!(merge_shards(vec![shard("00-7f", t, 1)], "n").is_none());
        assert!(merge_shards(vec![], "n").is_none());
        let mut other_chain = shard("80-ff", t, 1);
        other_chain.chain = "base".into();
        assert!(merge_shards(vec![shard("00-7f", t, 1), other_chain], "n").is_none());
        let mut filtered = shard("80-ff", t, 1);
        filtered.selection.mint_filter = Some(MintFilter::of(&["m".to_owned()]));
        assert!(merge_shards(vec![shard("00-7f", t, 1), filtered], "n").is_none());
    }

    #[test]
    fn the_wire_form_reads_back() {
        let day = shard("00-ff", "x", 3);
        let json = day.to_sealed_json();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "lake_version",
                "kind",
                "dataset",
                "date",
                "interval",
                "chain",
                "created_at",
                "exporter",
                "source_snapshot",
                "source_fingerprint",
                "selection",
                "outputs",
                "files",
                "stats",
                "seal"
            ]
        );
        assert_eq!(json["selection"]["buckets"], "00-ff");
        assert!(json["selection"]["mint_filter"].is_null());
        let back: DayManifest = serde_json::from_value(json).unwrap();
        assert_eq!(
            back.seal.as_ref().map(|s| s.algorithm.as_str()),
            Some("sha256")
        );
        assert_eq!(DayManifest { seal: None, ..back }, day);
    }
}
