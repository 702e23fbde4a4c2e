//! The corpus export config: every candle of one interval and chain for each UTC day in `[date_from, date_to)`.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::bucket_range::BucketRange;
use crate::clickhouse_source::ClickHouseConfig;
use crate::error::{LakeError, Result};
use crate::interval::Interval;
use crate::parquet_settings::CompressionKind;
use crate::run_config::{
    default_chain, default_compression, default_concurrency, default_target_file_mb, in_range,
    parse_config, MAX_CONCURRENCY, MAX_TARGET_FILE_MB,
};

/// Most days one export may cover (about 27 years).
pub const MAX_DAYS: i64 = 10_000;
/// Most mints in a `mint_filter`.
pub const MAX_MINT_FILTER: usize = 1_000_000;

/// The corpus config as callers send it (snake_case).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusConfig {
    /// The lake lives in `<data_root>/lake`.
    pub data_root: String,
    /// Candle interval spec.
    pub interval: String,
    /// First day, `YYYY-MM-DD` (UTC).
    pub date_from: String,
    /// Day after the last one, `YYYY-MM-DD` (exclusive).
    pub date_to: String,
    /// Chain filter.
    #[serde(default = "default_chain")]
    pub chain: String,
    /// `zstd`, `snappy` or `none`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Part files roll before passing this size.
    #[serde(default = "default_target_file_mb")]
    pub target_file_mb: u64,
    /// Only these mints (all when absent).
    #[serde(default)]
    pub mint_filter: Option<Vec<String>>,
    /// Only these buckets, e.g. `00-3f` (all when absent): one shard of a multi-machine export.
    #[serde(default)]
    pub buckets: Option<String>,
    /// Re-export days that are already sealed and intact.
    #[serde(default)]
    pub overwrite: bool,
    /// Queries in flight.
    #[serde(default = "default_concurrency")]
    pub concurrency: u64,
    /// The candle server.
    pub clickhouse: ClickHouseConfig,
}

/// A validated corpus config.
#[derive(Debug, Clone)]
pub struct CorpusSettings {
    /// `<data_root>/lake`.
    pub lake_root: PathBuf,
    /// Interval.
    pub interval: Interval,
    /// Days to export, in order.
    pub days: Vec<NaiveDate>,
    /// Chain.
    pub chain: String,
    /// Codec.
    pub compression: CompressionKind,
    /// Roll size in bytes.
    pub target_file_bytes: u64,
    /// Sorted, unique mints, or all.
    pub mint_filter: Option<Vec<String>>,
    /// Buckets of this shard.
    pub buckets: BucketRange,
    /// Redo intact days.
    pub overwrite: bool,
    /// Queries in flight.
    pub concurrency: usize,
    /// Server.
    pub clickhouse: ClickHouseConfig,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(name: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| {
            LakeError::invalid_config(format!(
                "invalid {name} {s:?}: use a UTC date like \"2025-01-31\""
            ))
        })
}

impl CorpusConfig {
    /// Parses the wire JSON; errors name the field.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        parse_config(value, "corpus export")
    }

    /// Checks every field.
    pub fn validate(self) -> Result<CorpusSettings> {
        let from = parse_date("date_from", &self.date_from)?;
        let to = parse_date("date_to", &self.date_to)?;
        let span = (to - from).num_days();
        if span <= 0 || span > MAX_DAYS {
            return Err(LakeError::invalid_config(format!(
                "invalid date range {}..{}: date_to is exclusive and must be 1 to {MAX_DAYS} days after date_from",
                self.date_from, self.date_to
            )));
        }
        if self.data_root.trim().is_empty() {
            return Err(LakeError::invalid_config(
                "data_root is empty: give the directory that holds (or will hold) lake/",
            ));
        }
        if self.chain.is_empty() {
            return Err(LakeError::invalid_config(
                "chain is empty: give the chain to filter on, e.g. \"solana\"",
            ));
        }
        let mint_filter = match self.mint_filter {
            None => None,
            Some(list) => {
                if list.is_empty()
                    || list.len() > MAX_MINT_FILTER
                    || list.iter().any(|m| m.is_empty())
                {
                    return Err(LakeError::invalid_config(format!(
                        "invalid mint_filter: give 1 to {MAX_MINT_FILTER} non-empty mints, or leave it out for all"
                    )));
                }
                let mut list = list;
                list.sort();
                list.dedup();
                Some(list)
            }
        };
        let target_mb = in_range("target_file_mb", self.target_file_mb, 1, MAX_TARGET_FILE_MB)?;
        let concurrency = in_range("concurrency", self.concurrency, 1, MAX_CONCURRENCY)?;
        Ok(CorpusSettings {
            lake_root: PathBuf::from(&self.data_root).join("lake"),
            interval: Interval::parse(&self.interval)?,
            days: (0..span)
                .map(|d| from + chrono::Days::new(d as u64))
                .collect(),
            chain: self.chain,
            compression: CompressionKind::parse(&self.compression)?,
            target_file_bytes: target_mb << 20,
            mint_filter,
            buckets: match &self.buckets {
                Some(b) => BucketRange::parse(b)?,
                None => BucketRange::ALL,
            },
            overwrite: self.overwrite,
            concurrency: concurrency as usize,
            clickhouse: self.clickhouse,
        })
    }
}

impl CorpusSettings {
    /// `<lake>/corpus/ohlcv/interval=<i>`.
    pub fn interval_dir(&self) -> PathBuf {
        corpus_interval_dir(&self.lake_root, self.interval.spec())
    }
}

/// `<lake>/corpus/ohlcv/interval=<i>`.
pub fn corpus_interval_dir(lake_root: &std::path::Path, interval_spec: &str) -> PathBuf {
    lake_root
        .join("corpus")
        .join("ohlcv")
        .join(format!("interval={interval_spec}"))
}

/// `date=YYYY-MM-DD`.
pub fn day_dir_name(day: NaiveDate) -> String {
    format!("date={}", day.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({
            "data_root": "/tmp/x", "interval": "1m", "date_from": "2025-01-01", "date_to": "2025-01-04",
            "clickhouse": {"host": "127.0.0.1", "port": 8123, "database": "quantbot", "table": "ohlcv_candles", "user": "default"}
        })
    }

    #[test]
    fn defaults_and_days() {
        let s = CorpusConfig::from_json(base()).unwrap().validate().unwrap();
        assert_eq!(s.days.len(), 3);
        assert_eq!(day_dir_name(s.days[2]), "date=2025-01-03");
        assert!(s.buckets.is_all());
        assert_eq!(s.chain, "solana");
    }

    #[test]
    fn rejects_bad_dates_and_ranges() {
        for (field, value, needle) in [
            ("date_from", json!("2025-1-1"), "date_from"),
            ("date_to", json!("2025-01-01"), "date range"),
            ("date_to", json!("2024-12-01"), "date range"),
            ("date_from", json!("yesterday"), "date_from"),
            ("buckets", json!("80-40"), "buckets"),
            ("buckets", json!("zz"), "buckets"),
            ("mint_filter", json!([]), "mint_filter"),
            ("mint_filter", json!([""]), "mint_filter"),
        ] {
            let mut c = base();
            c[field] = value;
            let err = CorpusConfig::from_json(c)
                .and_then(CorpusConfig::validate)
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig);
            assert!(err.message().contains(needle), "{field}: {err}");
        }
    }
}
