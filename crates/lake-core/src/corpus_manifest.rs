//! Manifests of corpus days: one per sealed day (`manifest.json`), and one per shard of a multi-machine export
//! (`manifest.buckets-<lo>-<hi>.json`) that merge into the day's manifest once they cover every bucket.

use serde_json::{json, Value};

use crate::bucket_range::BucketRange;
use crate::bucket_writer::WrittenFile;
use crate::error::{LakeError, Result};
use crate::manifest::{
    buckets_of, files_json, FetchStats, SourceSnapshot, EXPORTER_NAME, EXPORTER_VERSION,
};
use crate::seal::seal;

/// File name of a shard's manifest inside the day directory.
pub fn shard_manifest_name(range: BucketRange) -> String {
    format!("manifest.buckets-{}.json", range.label())
}

/// Everything a corpus day (or one shard of it) states.
#[derive(Debug, Clone)]
pub struct DayManifest {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Interval spec.
    pub interval: String,
    /// Chain.
    pub chain: String,
    /// Wall clock of the export (unsealed).
    pub created_at: String,
    /// The server read.
    pub source: SourceSnapshot,
    /// Buckets this manifest covers.
    pub buckets: BucketRange,
    /// `{mints, sha256}` of the sorted mint filter, or null.
    pub mint_filter: Value,
    /// Data files, paths relative to the day directory.
    pub files: Vec<WrittenFile>,
    /// Fetch counters.
    pub stats: FetchStats,
}

impl DayManifest {
    /// The sealed manifest.
    pub fn to_json(&self) -> Value {
        let refs: Vec<&WrittenFile> = self.files.iter().collect();
        let mut m = json!({
            "lake_version": "v1",
            "kind": "corpus_day",
            "dataset": "ohlcv",
            "date": self.date,
            "interval": self.interval,
            "chain": self.chain,
            "created_at": self.created_at,
            "exporter": { "name": EXPORTER_NAME, "version": EXPORTER_VERSION },
            "source_snapshot": source_json(&self.source),
            "selection": { "buckets": self.buckets.label(), "mint_filter": self.mint_filter },
            "outputs": {
                "mint_buckets": buckets_of(&self.files),
                "files": self.files.len(),
                "rows": self.files.iter().map(|f| f.rows).sum::<u64>(),
            },
            "files": files_json(&refs),
            "stats": { "rows_fetched": self.stats.rows_fetched, "duplicates_dropped": self.stats.duplicates_dropped },
        });
        seal(&mut m);
        m
    }

    /// Reads back what a manifest states (for merging shards).
    pub fn from_json(v: &Value) -> Result<Self> {
        let bad = |what: &str| LakeError::internal(format!("a corpus manifest lacks {what}"));
        let s = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(key))
        };
        let ch = v
            .pointer("/source_snapshot/clickhouse")
            .ok_or_else(|| bad("source_snapshot.clickhouse"))?;
        let cs = |key: &str| {
            ch.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(key))
        };
        let files = v
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("files"))?
            .iter()
            .map(|f| {
                Ok(WrittenFile {
                    rel_path: f
                        .get("path")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("files.path"))?
                        .to_owned(),
                    rows: f
                        .get("rows")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| bad("files.rows"))?,
                    bytes: f
                        .get("bytes")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| bad("files.bytes"))?,
                    sha256: f
                        .get("sha256")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("files.sha256"))?
                        .to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stat = |key: &str| {
            v.pointer(&format!("/stats/{key}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Ok(Self {
            date: s("date")?,
            interval: s("interval")?,
            chain: s("chain")?,
            created_at: s("created_at")?,
            source: SourceSnapshot::ClickHouse {
                cluster: cs("cluster")?,
                database: cs("database")?,
                table: cs("table")?,
                as_of: cs("as_of")?,
            },
            buckets: BucketRange::parse(
                v.pointer("/selection/buckets")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("selection.buckets"))?,
            )?,
            mint_filter: v
                .pointer("/selection/mint_filter")
                .cloned()
                .unwrap_or(Value::Null),
            files,
            stats: FetchStats {
                rows_fetched: stat("rows_fetched"),
                duplicates_dropped: stat("duplicates_dropped"),
            },
        })
    }

    /// True when `other` was made with the same selection (so one can stand for the other).
    pub fn same_selection(&self, chain: &str, buckets: BucketRange, mint_filter: &Value) -> bool {
        self.chain == chain && self.buckets == buckets && &self.mint_filter == mint_filter
    }
}

fn source_json(source: &SourceSnapshot) -> Value {
    match source {
        SourceSnapshot::ClickHouse {
            cluster,
            database,
            table,
            as_of,
        } => {
            json!({ "clickhouse": { "cluster": cluster, "database": database, "table": table, "as_of": as_of } })
        }
        SourceSnapshot::Corpus { .. } => Value::Null,
    }
}

/// Merges shard manifests into the day's manifest when they cover `00-ff` exactly once, else `None`.
/// The earliest `as_of` stands for the day, so the merge does not depend on which shard finished last.
pub fn merge_shards(mut shards: Vec<DayManifest>, created_at: &str) -> Option<DayManifest> {
    shards.sort_by_key(|s| s.buckets.lo);
    let mut next: u16 = 0;
    for s in &shards {
        if u16::from(s.buckets.lo) != next {
            return None;
        }
        next = u16::from(s.buckets.hi) + 1;
    }
    if next != 256 {
        return None;
    }
    let first = shards.first()?.clone();
    if shards.iter().any(|s| {
        s.chain != first.chain || s.interval != first.interval || s.mint_filter != first.mint_filter
    }) {
        return None;
    }
    let as_of = shards
        .iter()
        .filter_map(|s| match &s.source {
            SourceSnapshot::ClickHouse { as_of, .. } => Some(as_of.clone()),
            SourceSnapshot::Corpus { .. } => None,
        })
        .min()?;
    let mut files: Vec<WrittenFile> = shards
        .iter()
        .flat_map(|s| s.files.iter().cloned())
        .collect();
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let stats = shards
        .iter()
        .fold(FetchStats::default(), |acc, s| FetchStats {
            rows_fetched: acc.rows_fetched + s.stats.rows_fetched,
            duplicates_dropped: acc.duplicates_dropped + s.stats.duplicates_dropped,
        });
    let source = match first.source {
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
    Some(DayManifest {
        created_at: created_at.to_owned(),
        source,
        buckets: BucketRange::ALL,
        files,
        stats,
        ..first
    })
}
