//! What every manifest shares (docs/lake-format.md, "Manifests").
//!
//! Manifests are typed serde structs whose field order is the order of the file; a manifest is sealed by
//! serialising it without its seal, hashing the canonical form and appending the seal as the last field.

use std::iter::Sum;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lake::layout::bucket_label_of;
use crate::lake::seal::seal;

/// `lake_version` of every manifest.
pub const LAKE_VERSION: &str = "v1";

/// Who wrote a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exporter {
    /// `quantbot-lake`.
    pub name: String,
    /// The exporter's version.
    pub version: String,
}

impl Exporter {
    /// This exporter.
    pub fn current() -> Self {
        Self {
            name: "quantbot-lake".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// One data file of a sealed directory: path (relative to it), rows, bytes and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path relative to the sealed directory, `/`-separated.
    #[serde(rename = "path")]
    pub rel_path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// Files, rows and bytes of a set of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileTotals {
    /// Files.
    pub files: u64,
    /// Rows over all files.
    pub rows: u64,
    /// Bytes over all files.
    pub bytes: u64,
}

impl FileTotals {
    /// The totals of `files`.
    pub fn of(files: &[WrittenFile]) -> Self {
        Self {
            files: files.len() as u64,
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
        }
    }
}

/// A corpus day a run read, and the seal its manifest had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySeal {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The day manifest's seal value.
    pub seal: String,
    /// The digest of the day's source fingerprint, so that whether the run read fresh days can be asked later;
    /// absent for days sealed without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Where the candles came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceSnapshot {
    /// A ClickHouse table, read at the server's time `as_of`.
    #[serde(rename = "clickhouse")]
    ClickHouse {
        /// `host:port` of the server.
        cluster: String,
        /// Database.
        database: String,
        /// Table.
        table: String,
        /// Server time of the read, ISO-8601 UTC.
        as_of: String,
    },
    /// A corpus already on disk.
    #[serde(rename = "corpus")]
    Corpus {
        /// The corpus directory of the interval, relative to the lake root.
        path: String,
        /// The day manifests' seals that were read, sorted by day.
        days: Vec<DaySeal>,
    },
}

/// Counters of the fetch, for fetch amplification and dedup reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FetchStats {
    /// Candle rows read from the source.
    pub rows_fetched: u64,
    /// Rows dropped because their (mint, ts) was already seen.
    pub duplicates_dropped: u64,
    /// ClickHouse requests made again after a transient failure (docs/lake-format.md, "Retries"); absent in
    /// manifests written before retries existed.
    #[serde(default)]
    pub retries: u64,
}

impl AddAssign for FetchStats {
    fn add_assign(&mut self, other: Self) {
        self.rows_fetched += other.rows_fetched;
        self.duplicates_dropped += other.duplicates_dropped;
        self.retries += other.retries;
    }
}

impl Sum for FetchStats {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |mut acc, s| {
            acc += s;
            acc
        })
    }
}

/// What one output directory holds: its buckets, files and rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTotals {
    /// `<bb>` of every `mint_bucket=<bb>` the files lie under, sorted and unique.
    pub mint_buckets: Vec<String>,
    /// Files.
    pub files: u64,
    /// Rows over the files.
    pub rows: u64,
}

impl OutputTotals {
    /// The totals of `files`.
    pub fn of(files: &[WrittenFile]) -> Self {
        let mut mint_buckets: Vec<String> = files
            .iter()
            .filter_map(|f| bucket_label_of(&f.rel_path))
            .map(str::to_owned)
            .collect();
        mint_buckets.sort();
        mint_buckets.dedup();
        let totals = FileTotals::of(files);
        Self {
            mint_buckets,
            files: totals.files,
            rows: totals.rows,
        }
    }
}

/// The seal of a manifest (docs/lake-format.md, "Seal").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// `sha256`.
    pub algorithm: String,
    /// Lowercase hex digest of the canonical form.
    pub value: String,
}

/// `files` as manifests list them: sorted by path.
pub fn sorted_files(mut files: Vec<WrittenFile>) -> Vec<WrittenFile> {
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    files
}

/// Serialises an unsealed manifest and seals it.
pub(crate) fn sealed_json<T: Serialize>(manifest: &T) -> Value {
    let mut value = serde_json::to_value(manifest).expect("manifests always serialise");
    seal(&mut value);
    value
}

/// Pretty JSON with a trailing newline: what `manifest.json` holds.
pub fn manifest_bytes(manifest: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(manifest).expect("JSON values always serialise");
    out.push(b'\n');
    out
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_seconds(epoch_s: i64) -> String {
    chrono::DateTime::from_timestamp(epoch_s, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The wall clock for `created_at`, ISO-8601 UTC with milliseconds.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, rows: u64) -> WrittenFile {
        WrittenFile {
            rel_path: path.to_owned(),
            rows,
            bytes: rows * 10,
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn totals_and_buckets() {
        let files = [
            file("s/mint_bucket=0b/part-0000.parquet", 3),
            file("s/mint_bucket=0a/part-0000.parquet", 4),
            file("s/mint_bucket=0a/part-0001.parquet", 5),
        ];
        let t = OutputTotals::of(&files);
        assert_eq!(t.mint_buckets, ["0a", "0b"]);
        assert_eq!((t.files, t.rows), (3, 12));
        assert_eq!(FileTotals::of(&files).bytes, 120);
    }

    #[test]
    fn stats_add_and_sum() {
        let a = FetchStats {
            rows_fetched: 5,
            duplicates_dropped: 1,
            retries: 1,
        };
        let total: FetchStats = [a, a, FetchStats::default()].into_iter().sum();
        assert_eq!(
            total,
            FetchStats {
                rows_fetched: 10,
                duplicates_dropped: 2,
                retries: 2
            }
        );
    }

    #[test]
    fn snapshots_keep_their_wire_form() {
        let ch = SourceSnapshot::ClickHouse {
            cluster: "h:1".into(),
            database: "d".into(),
            table: "t".into(),
            as_of: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&ch).unwrap(),
            r#"{"clickhouse":{"cluster":"h:1","database":"d","table":"t","as_of":"x"}}"#
        );
        let corpus = SourceSnapshot::Corpus {
            path: "p".into(),
            days: vec![
                DaySeal {
                    date: "2025-01-01".into(),
                    seal: "s".into(),
                    fingerprint: None,
                },
                DaySeal {
                    date: "2025-01-02".into(),
                    seal: "t".into(),
                    fingerprint: Some("f".into()),
                },
            ],
        };
        let text = serde_json::to_string(&corpus).unwrap();
        assert_eq!(
            text,
            r#"{"corpus":{"path":"p","days":[{"date":"2025-01-01","seal":"s"},{"date":"2025-01-02","seal":"t","fingerprint":"f"}]}}"#
        );
        assert_eq!(
            serde_json::from_str::<SourceSnapshot>(&text).unwrap(),
            corpus
        );
    }
}
