//! The corpus export config: every candle of one interval and chain for each UTC day in `[date_from, date_to)`.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::config::facts::{defaults, FACTS};
use crate::config::wire::{check_chain, check_data_root, parse_config};
use crate::error::{LakeError, Result};
use crate::lake::layout::{corpus_interval_dir, corpus_rel_dir, day_dir_name};
use crate::lake::place::LakePlace;
use crate::lake::remote::store::ObjectStoreConfig;
use crate::source::clickhouse::ClickHouseConfig;
use crate::spec::alert::MAX_MINT_BYTES;
use crate::spec::bucket_range::BucketRange;
use crate::spec::interval::Interval;
use crate::spec::shard::{parse_shard, shard_from_env};
use crate::writer::settings::CompressionKind;

/// The corpus config as callers send it (snake_case).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusConfig {
    /// The lake lives in `<data_root>/lake`: a directory, or `s3://bucket/prefix`.
    pub data_root: String,
    /// Candle interval spec.
    pub interval: String,
    /// First day, `YYYY-MM-DD` (UTC).
    pub date_from: String,
    /// Day after the last one, `YYYY-MM-DD` (exclusive).
    pub date_to: String,
    /// Chain filter.
    #[serde(default = "defaults::chain")]
    pub chain: String,
    /// `zstd`, `snappy` or `none`.
    #[serde(default = "defaults::compression")]
    pub compression: String,
    /// Part files roll before passing this size.
    #[serde(default = "defaults::target_file_mb")]
    pub target_file_mb: u64,
    /// Only these mints (all when absent).
    #[serde(default)]
    pub mint_filter: Option<Vec<String>>,
    /// Only these buckets, e.g. `00-3f` (all when absent): one shard of a multi-machine export.
    #[serde(default)]
    pub buckets: Option<String>,
    /// `K/N`: the K-th (from 0) of N near-equal bucket ranges, instead of `buckets`.
    #[serde(default)]
    pub shard: Option<String>,
    /// `N`: one of N shards, which one read from `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job) or
    /// `AWS_BATCH_JOB_ARRAY_INDEX` (AWS Batch array job); instead of `buckets` and `shard`.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Re-export days that are already sealed and intact.
    #[serde(default)]
    pub overwrite: bool,
    /// Queries in flight.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: u64,
    /// The candle server.
    pub clickhouse: ClickHouseConfig,
    /// Region, endpoint and credentials of an `s3://` data root (else the AWS environment's).
    #[serde(default)]
    pub object_store: Option<ObjectStoreConfig>,
}

/// A validated corpus config.
#[derive(Debug, Clone)]
pub struct CorpusSettings {
    /// The lake the days go to.
    pub lake: LakePlace,
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

/// The buckets of this process: `buckets`, `shard` or `shards` (at most one of them), else all.
fn selected_buckets(
    buckets: Option<&str>,
    shard: Option<&str>,
    shards: Option<u32>,
) -> Result<BucketRange> {
    match (buckets, shard, shards) {
        (None, None, None) => Ok(BucketRange::ALL),
        (Some(b), None, None) => BucketRange::parse(b),
        (None, Some(k_of_n), None) => parse_shard(k_of_n),
        (None, None, Some(n)) => shard_from_env(n, |name| std::env::var(name).ok()),
        _ => Err(LakeError::invalid_config(
            "give one of buckets, shard and shards: each picks this process's buckets",
        )),
    }
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
        let max_days = FACTS.max_corpus_days as i64;
        if span <= 0 || span > max_days {
            return Err(LakeError::invalid_config(format!(
                "invalid date range {}..{}: date_to is exclusive and must be 1 to {max_days} days after date_from",
                self.date_from, self.date_to
            )));
        }
        check_data_root(&self.data_root)?;
        check_chain(&self.chain)?;
        let mint_filter = match self.mint_filter {
            None => None,
            Some(list) => {
                let max = FACTS.max_mint_filter;
                let bad_mint = |m: &String| m.is_empty() || m.len() > MAX_MINT_BYTES;
                if list.is_empty() || list.len() as u64 > max || list.iter().any(bad_mint) {
                    return Err(LakeError::invalid_config(format!(
                        "invalid mint_filter: give 1 to {max} mints of 1 to {MAX_MINT_BYTES} bytes, or leave it out for all"
                    )));
                }
                let mut list = list;
                list.sort();
                list.dedup();
                Some(list)
            }
        };
        let target_mb = FACTS
            .target_file_mb
            .check("target_file_mb", self.target_file_mb)?;
        let concurrency = FACTS.concurrency.check("concurrency", self.concurrency)?;
        Ok(CorpusSettings {
            lake: LakePlace::open(&self.data_root, self.object_store.as_ref())?,
            interval: Interval::parse(&self.interval)?,
            days: (0..span)
                .map(|d| from + chrono::Days::new(d as u64))
                .collect(),
            chain: self.chain,
            compression: CompressionKind::parse(&self.compression)?,
            target_file_bytes: target_mb << 20,
            mint_filter,
            buckets: selected_buckets(self.buckets.as_deref(), self.shard.as_deref(), self.shards)?,
            overwrite: self.overwrite,
            concurrency: concurrency as usize,
            clickhouse: self.clickhouse,
        })
    }
}

impl CorpusSettings {
    /// `<lake>/corpus/ohlcv/interval=<i>` on local disk (the work directory of a lake in an object store).
    pub fn interval_dir(&self) -> PathBuf {
        corpus_interval_dir(&self.lake.local, self.interval.spec())
    }

    /// How results name the corpus of the interval: a path or an `s3://` URL.
    pub fn shown_corpus(&self) -> PathBuf {
        self.lake.shown(&corpus_rel_dir(self.interval.spec()))
    }

    /// How results name a day's directory.
    pub fn shown_day(&self, day: NaiveDate) -> PathBuf {
        self.lake.shown(&self.day_rel(day))
    }

    /// `corpus/ohlcv/interval=<i>/date=<d>`: a day's directory relative to the lake.
    pub fn day_rel(&self, day: NaiveDate) -> String {
        format!(
            "{}/{}",
            corpus_rel_dir(self.interval.spec()),
            day_dir_name(day)
        )
    }
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
        assert_eq!(s.days[2], NaiveDate::from_ymd_opt(2025, 1, 3).unwrap());
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
            ("shard", json!("4/4"), "shard"),
            ("shards", json!(0), "shard count"),
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

    #[test]
    fn a_shard_is_a_bucket_range_and_only_one_way_to_pick_it_is_given() {
        let mut c = base();
        c["shard"] = json!("1/4");
        let s = CorpusConfig::from_json(c.clone())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(s.buckets.label(), "40-7f");
        c["buckets"] = json!("00-3f");
        let err = CorpusConfig::from_json(c)
            .and_then(CorpusConfig::validate)
            .unwrap_err();
        assert!(
            err.message().contains("one of buckets, shard and shards"),
            "{err}"
        );
    }
}
