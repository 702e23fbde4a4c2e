//! The run manifest (SPEC §7): the original fields in the original order, plus chain, the file list, stats and
//! the seal.

use serde_json::{json, Map, Value};

use crate::bucket_writer::WrittenFile;
use crate::seal::seal;

/// `exporter.name` of every manifest.
pub const EXPORTER_NAME: &str = "quantbot-lake";
/// `exporter.version` of every manifest.
pub const EXPORTER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Path of the stored alerts inside a run.
pub const ALERTS_PATH: &str = "inputs/alerts.parquet";
/// Path of the coverage table inside a run.
pub const COVERAGE_PATH: &str = "outputs/coverage.parquet";
/// The manifest's own file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Where the candles came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSnapshot {
    /// A ClickHouse table, read at the server's time `as_of`.
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
    Corpus {
        /// The corpus directory of the interval, relative to the lake root.
        path: String,
        /// The day manifests' seals that were read, sorted by day.
        days: Vec<(String, String)>,
    },
}

impl SourceSnapshot {
    fn to_json(&self) -> Value {
        match self {
            Self::ClickHouse {
                cluster,
                database,
                table,
                as_of,
            } => json!({
                "clickhouse": { "cluster": cluster, "database": database, "table": table, "as_of": as_of }
            }),
            Self::Corpus { path, days } => json!({
                "corpus": {
                    "path": path,
                    "days": days.iter().map(|(d, s)| json!({ "date": d, "seal": s })).collect::<Vec<_>>(),
                }
            }),
        }
    }
}

/// The strict-coverage settings and what they kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverageSummary {
    /// Strict mode was on.
    pub strict: bool,
    /// Strict threshold before the anchor.
    pub min_required_pre: u32,
    /// Strict threshold in total.
    pub target_total: u32,
    /// Alerts kept.
    pub kept_events: u64,
    /// Alerts dropped by strict mode.
    pub dropped_events: u64,
}

/// Counters of the fetch, for fetch amplification and dedup reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchStats {
    /// Candle rows read from the source.
    pub rows_fetched: u64,
    /// Rows dropped because their (mint, ts) was already seen.
    pub duplicates_dropped: u64,
}

impl std::ops::AddAssign for FetchStats {
    fn add_assign(&mut self, other: Self) {
        self.rows_fetched += other.rows_fetched;
        self.duplicates_dropped += other.duplicates_dropped;
    }
}

/// Everything a run manifest states.
#[derive(Debug, Clone)]
pub struct RunManifest {
    /// Run id.
    pub run_id: String,
    /// Wall clock of the export, ISO-8601 UTC (the only unsealed field).
    pub created_at: String,
    /// The stored alerts file.
    pub alerts_file: WrittenFile,
    /// Where candles came from.
    pub source: SourceSnapshot,
    /// Interval spec, verbatim.
    pub interval: String,
    /// Window spec, verbatim.
    pub window: String,
    /// Chain filter.
    pub chain: String,
    /// `slices/ohlcv/interval=<i>/window=<w>`.
    pub slice_dir: String,
    /// Every part file of the slices.
    pub slice_files: Vec<WrittenFile>,
    /// The coverage table.
    pub coverage_file: WrittenFile,
    /// Strict-mode outcome.
    pub coverage: CoverageSummary,
    /// Fetch counters.
    pub stats: FetchStats,
}

/// The `mint_bucket=<bb>` names under which files lie, sorted and unique.
pub fn buckets_of(files: &[WrittenFile]) -> Vec<String> {
    let mut buckets: Vec<String> = files
        .iter()
        .filter_map(|f| {
            f.rel_path
                .split('/')
                .find_map(|seg| seg.strip_prefix("mint_bucket="))
        })
        .map(str::to_owned)
        .collect();
    buckets.sort();
    buckets.dedup();
    buckets
}

/// The `files` array: every data file with path, rows, bytes and SHA-256, sorted by path.
pub fn files_json(files: &[&WrittenFile]) -> Value {
    let mut sorted: Vec<&&WrittenFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Value::Array(
        sorted
            .into_iter()
            .map(|f| json!({ "path": f.rel_path, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256 }))
            .collect(),
    )
}

impl RunManifest {
    /// Total rows of the slice files.
    pub fn slice_rows(&self) -> u64 {
        self.slice_files.iter().map(|f| f.rows).sum()
    }

    /// The sealed manifest as JSON, fields in the original order.
    pub fn to_json(&self) -> Value {
        let mut outputs = Map::new();
        outputs.insert(
            self.slice_dir.clone(),
            json!({
                "mint_buckets": buckets_of(&self.slice_files),
                "files": self.slice_files.len(),
                "rows": self.slice_rows(),
            }),
        );
        let mut all: Vec<&WrittenFile> = vec![&self.alerts_file, &self.coverage_file];
        all.extend(self.slice_files.iter());
        let mut manifest = json!({
            "lake_version": "v1",
            "run_id": self.run_id,
            "created_at": self.created_at,
            "exporter": { "name": EXPORTER_NAME, "version": EXPORTER_VERSION },
            "inputs": {
                "alerts": {
                    "path": ALERTS_PATH,
                    "sha256": self.alerts_file.sha256,
                    "rows": self.alerts_file.rows,
                },
                "source_snapshot": self.source.to_json(),
            },
            "slice_spec": {
                "dataset": "ohlcv",
                "interval": self.interval,
                "window": self.window,
                "anchor_rule": "floor_to_interval(ts, interval)",
                "chain": self.chain,
            },
            "outputs": Value::Object(outputs),
            "coverage": {
                "min_required_pre": self.coverage.min_required_pre,
                "target_total": self.coverage.target_total,
                "kept_events": self.coverage.kept_events,
                "dropped_events": self.coverage.dropped_events,
                "strict": self.coverage.strict,
            },
            "files": files_json(&all),
            "stats": {
                "rows_fetched": self.stats.rows_fetched,
                "duplicates_dropped": self.stats.duplicates_dropped,
            },
        });
        seal(&mut manifest);
        manifest
    }
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

/// Pretty JSON with a trailing newline: what `manifest.json` holds.
pub fn manifest_bytes(manifest: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(manifest).expect("JSON values always serialise");
    out.push(b'\n');
    out
}
