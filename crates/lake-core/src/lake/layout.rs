//! Every path rule of the lake, in one place (docs/lake-format.md, "Layout").
//!
//! ```text
//! <data_root>/lake/
//!   runs/run_id=<id>/                              one sealed run
//!     manifest.json
//!     inputs/alerts.parquet
//!     outputs/coverage.parquet
//!     slices/ohlcv/interval=<i>/window=<w>/mint_bucket=<bb>/part-NNNN.parquet
//!   corpus/ohlcv/interval=<i>/date=YYYY-MM-DD/     one sealed corpus day
//!     manifest.json
//!     manifest.buckets-<lo>-<hi>.json              one per shard of a multi-machine export
//!     mint_bucket=<bb>/part-NNNN.parquet
//! ```
//! Names starting with `.` are the exporter's own (staging, locks, spill files); readers skip them.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{LakeError, Result};
use crate::spec::bucket_range::BucketRange;
use crate::spec::mint_bucket::bucket_name;

/// A sealed directory's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The stored alerts inside a run.
pub const ALERTS_PATH: &str = "inputs/alerts.parquet";
/// The coverage table inside a run.
pub const COVERAGE_PATH: &str = "outputs/coverage.parquet";
/// Finished Parquet pages waiting for their row group, inside a staging directory.
pub const SPILL_FILE: &str = ".pages.spill";

const BUCKET_PREFIX: &str = "mint_bucket=";
const SHARD_MANIFEST_PREFIX: &str = "manifest.buckets-";

/// `<data_root>/lake`.
pub fn lake_root(data_root: &str) -> PathBuf {
    PathBuf::from(data_root).join("lake")
}

/// Validates a run id: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (no path can escape the runs directory).
pub fn validate_run_id(run_id: &str) -> Result<()> {
    let mut chars = run_id.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric());
    if first_ok
        && run_id.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Ok(())
    } else {
        Err(LakeError::invalid_config(format!(
            "invalid run_id {run_id:?}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

/// `run_id=<id>`: a run's directory name under `<lake>/runs`.
pub fn run_dir_name(run_id: &str) -> String {
    format!("run_id={run_id}")
}

/// `runs/run_id=<id>`: a run's directory relative to the lake (its keys in an object store).
pub fn run_rel_dir(run_id: &str) -> String {
    format!("runs/{}", run_dir_name(run_id))
}

/// `slices/ohlcv/interval=<i>/window=<w>`: a run's slice directory, relative to the run.
pub fn slice_dir(interval_spec: &str, window_spec: &str) -> String {
    format!("slices/ohlcv/interval={interval_spec}/window={window_spec}")
}

/// `corpus/ohlcv/interval=<i>`: the corpus of one interval, relative to the lake (as run manifests name it).
pub fn corpus_rel_dir(interval_spec: &str) -> String {
    format!("corpus/ohlcv/interval={interval_spec}")
}

/// `<lake>/corpus/ohlcv/interval=<i>`.
pub fn corpus_interval_dir(lake_root: &Path, interval_spec: &str) -> PathBuf {
    lake_root.join(corpus_rel_dir(interval_spec))
}

/// `YYYY-MM-DD`: how a UTC day is written in paths and manifests.
pub fn day_label(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// `date=YYYY-MM-DD`: a corpus day's directory name.
pub fn day_dir_name(day: NaiveDate) -> String {
    format!("date={}", day_label(day))
}

/// `mint_bucket=<bb>`: a bucket's directory name.
pub fn bucket_dir_name(bucket: u8) -> String {
    format!("{BUCKET_PREFIX}{}", bucket_name(bucket))
}

/// `part-NNNN.parquet`: the `n`th part file of a bucket (0-based).
pub fn part_file_name(n: usize) -> String {
    format!("part-{n:04}.parquet")
}

/// The `<bb>` of the first `mint_bucket=<bb>` segment of a relative path.
pub fn bucket_label_of(rel_path: &str) -> Option<&str> {
    rel_path
        .split('/')
        .find_map(|seg| seg.strip_prefix(BUCKET_PREFIX))
}

/// The bucket a day-relative path (`mint_bucket=<bb>/…`) lies in.
pub fn bucket_of_day_path(rel_path: &str) -> Option<u8> {
    rel_path
        .split('/')
        .next()
        .and_then(|seg| seg.strip_prefix(BUCKET_PREFIX))
        .filter(|b| b.len() == 2)
        .and_then(|b| u8::from_str_radix(b, 16).ok())
}

/// `manifest.buckets-<lo>-<hi>.json`: a shard's manifest inside the day directory.
pub fn shard_manifest_name(range: BucketRange) -> String {
    format!("{SHARD_MANIFEST_PREFIX}{}.json", range.label())
}

/// True when a relative path has a segment starting with `.`: the exporter's own (staging, locks, spill
/// files), which readers, `verify` and uploads skip.
pub fn is_hidden(rel_path: &str) -> bool {
    rel_path.split('/').any(|seg| seg.starts_with('.'))
}

/// True for a shard manifest's file name.
pub fn is_shard_manifest(name: &str) -> bool {
    name.starts_with(SHARD_MANIFEST_PREFIX) && name.ends_with(".json")
}

/// True for any manifest at the top of a sealed directory (the day's own or a shard's).
pub fn is_manifest(rel_path: &str) -> bool {
    rel_path == MANIFEST_FILE || is_shard_manifest(rel_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        let day = NaiveDate::from_ymd_opt(2025, 1, 3).unwrap();
        assert_eq!(day_dir_name(day), "date=2025-01-03");
        assert_eq!(bucket_dir_name(0x0a), "mint_bucket=0a");
        assert_eq!(part_file_name(7), "part-0007.parquet");
        let rel = format!("{}/{}", bucket_dir_name(0xc4), part_file_name(0));
        assert_eq!(bucket_of_day_path(&rel), Some(0xc4));
        assert_eq!(bucket_label_of(&format!("slices/x/{rel}")), Some("c4"));
        assert_eq!(bucket_of_day_path("mint_bucket=zz/p"), None);
        assert_eq!(bucket_of_day_path("other/mint_bucket=01/p"), None);
        let shard = shard_manifest_name(BucketRange::parse("00-3f").unwrap());
        assert_eq!(shard, "manifest.buckets-00-3f.json");
        assert!(is_manifest(&shard) && is_manifest(MANIFEST_FILE));
        assert!(!is_manifest("mint_bucket=00/manifest.json"));
        assert_eq!(
            slice_dir("1m", "pre1_post2"),
            "slices/ohlcv/interval=1m/window=pre1_post2"
        );
        assert_eq!(
            corpus_interval_dir(Path::new("/l"), "5m"),
            Path::new("/l/corpus/ohlcv/interval=5m")
        );
    }

    #[test]
    fn run_id_rules() {
        for ok in [
            "a",
            "run-1",
            "lake-export_lake_all_20260101000000_deadbeef",
            "A.b_c-9",
            &"x".repeat(128),
        ] {
            validate_run_id(ok).unwrap();
        }
        for bad in [
            "",
            "../x",
            "/abs",
            "a/b",
            ".hidden",
            "-x",
            "a\0b",
            "a b",
            &"x".repeat(129),
            "é",
        ] {
            assert_eq!(
                validate_run_id(bad).unwrap_err().code(),
                crate::error::ErrorCode::InvalidConfig,
                "{bad:?}"
            );
        }
    }
}
