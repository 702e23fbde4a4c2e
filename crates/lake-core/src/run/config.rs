//! The run-slice export config (docs/lake-format.md, "Run config"; snake_case on the wire) and its validation
//! into settings.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::facts::{defaults, FACTS};
use crate::config::wire::{check_chain, check_data_root, non_empty, parse_config};
use crate::error::{LakeError, Result};
use crate::lake::layout::{slice_dir, validate_run_id};
use crate::lake::place::LakePlace;
use crate::lake::remote::store::ObjectStoreConfig;
use crate::source::clickhouse::ClickHouseConfig;
use crate::spec::interval::Interval;
use crate::spec::window::{parse_window_spec, WindowSpec};
use crate::writer::settings::CompressionKind;

/// Where a run's candles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChoice {
    /// A ClickHouse server.
    ClickHouse(ClickHouseConfig),
    /// The sealed corpus under `<lake>/corpus`; with a server to check that every day it reads is fresh.
    Corpus {
        /// `require_fresh`: the server whose fingerprints the days must still match.
        require_fresh: Option<ClickHouseConfig>,
    },
}

/// The config as callers send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSliceConfig {
    /// The lake lives in `<data_root>/lake`: a directory, or `s3://bucket/prefix`.
    pub data_root: String,
    /// The run's id.
    pub run_id: String,
    /// Candle interval spec.
    pub interval: String,
    /// Window spec `pre<N>_post<M>`.
    pub window: String,
    /// `.parquet` or `.csv` alerts file.
    pub alerts_path: String,
    /// ClickHouse `chain` filter.
    #[serde(default = "defaults::chain")]
    pub chain: String,
    /// `zstd`, `snappy` or `none`.
    #[serde(default = "defaults::compression")]
    pub compression: String,
    /// Part files roll before passing this size.
    #[serde(default = "defaults::target_file_mb")]
    pub target_file_mb: u64,
    /// Drop alerts below the thresholds.
    #[serde(default)]
    pub strict_coverage: bool,
    /// Strict threshold before the anchor.
    #[serde(default = "defaults::min_required_pre")]
    pub min_required_pre: u64,
    /// Strict threshold in total.
    #[serde(default = "defaults::target_total")]
    pub target_total: u64,
    /// The candle server (required unless `source` is `corpus`).
    #[serde(default)]
    pub clickhouse: Option<ClickHouseConfig>,
    /// `clickhouse` (default) or `corpus`: the lake's own sealed corpus of the same interval and chain.
    #[serde(default = "defaults::source")]
    pub source: String,
    /// With `source` `corpus`: refuse (`CORPUS_STALE`) days whose source changed since they were sealed, asking
    /// `clickhouse` for their fingerprints.
    #[serde(default)]
    pub require_fresh: bool,
    /// Replace an existing run with the same id.
    #[serde(default)]
    pub overwrite: bool,
    /// Queries in flight at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: u64,
    /// Region, endpoint and credentials of an `s3://` data root (else the AWS environment's).
    #[serde(default)]
    pub object_store: Option<ObjectStoreConfig>,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The lake the run goes to.
    pub lake: LakePlace,
    /// Validated run id.
    pub run_id: String,
    /// Parsed interval.
    pub interval: Interval,
    /// Window spec string, verbatim.
    pub window_spec: String,
    /// Parsed window.
    pub window: WindowSpec,
    /// Alerts file.
    pub alerts_path: PathBuf,
    /// Chain filter.
    pub chain: String,
    /// Codec.
    pub compression: CompressionKind,
    /// Roll size in bytes.
    pub target_file_bytes: u64,
    /// Strict mode.
    pub strict: bool,
    /// Strict threshold before the anchor.
    pub min_required_pre: u32,
    /// Strict threshold in total.
    pub target_total: u32,
    /// Where candles come from.
    pub source: SourceChoice,
    /// Replace an existing run.
    pub overwrite: bool,
    /// Queries in flight.
    pub concurrency: usize,
}

impl RunSliceConfig {
    /// Parses the wire JSON; unknown or mistyped fields are `INVALID_CONFIG` naming the field.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        parse_config(value, "run-slice export")
    }

    /// Checks every field and derives the settings the export runs on.
    pub fn validate(self) -> Result<RunSettings> {
        validate_run_id(&self.run_id)?;
        check_data_root(&self.data_root)?;
        non_empty(
            &self.alerts_path,
            "alerts_path is empty: give a .parquet or .csv alerts file",
        )?;
        check_chain(&self.chain)?;
        Ok(RunSettings {
            lake: LakePlace::open(&self.data_root, self.object_store.as_ref())?,
            interval: Interval::parse(&self.interval)?,
            window: parse_window_spec(&self.window)?,
            window_spec: self.window,
            alerts_path: PathBuf::from(&self.alerts_path),
            chain: self.chain,
            compression: CompressionKind::parse(&self.compression)?,
            target_file_bytes: FACTS
                .target_file_mb
                .check("target_file_mb", self.target_file_mb)?
                << 20,
            strict: self.strict_coverage,
            min_required_pre: FACTS
                .min_required_pre
                .check("min_required_pre", self.min_required_pre)? as u32,
            target_total: FACTS
                .target_total
                .check("target_total", self.target_total)? as u32,
            source: match (self.source.as_str(), self.clickhouse) {
                ("clickhouse", _) if self.require_fresh => {
                    return Err(LakeError::invalid_config(
                        "require_fresh applies to source \"corpus\": a run read from ClickHouse is as fresh as it gets",
                    ))
                }
                ("corpus", None) if self.require_fresh => {
                    return Err(LakeError::invalid_config(
                        "require_fresh needs clickhouse: the server whose fingerprints the corpus days must match",
                    ))
                }
                ("clickhouse", Some(ch)) => SourceChoice::ClickHouse(ch),
                ("clickhouse", None) => {
                    return Err(LakeError::invalid_config(
                        "clickhouse is missing: give host, port, database, table and user, or set source to \"corpus\"",
                    ))
                }
                ("corpus", ch) => SourceChoice::Corpus {
                    require_fresh: ch.filter(|_| self.require_fresh),
                },
                (other, _) => {
                    return Err(LakeError::invalid_config(format!(
                        "invalid source {other:?}: use \"clickhouse\" or \"corpus\""
                    )))
                }
            },
            overwrite: self.overwrite,
            concurrency: FACTS.concurrency.check("concurrency", self.concurrency)? as usize,
            run_id: self.run_id,
        })
    }
}

impl RunSettings {
    /// `slices/ohlcv/interval=<i>/window=<w>`, relative to the run.
    pub fn slice_dir(&self) -> String {
        slice_dir(self.interval.spec(), &self.window_spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({
            "data_root": "/tmp/x", "run_id": "r1", "interval": "1m", "window": "pre52_post4948",
            "alerts_path": "a.csv",
            "clickhouse": {"host": "127.0.0.1", "port": 8123, "database": "quantbot", "table": "ohlcv_candles", "user": "default"}
        })
    }

    #[test]
    fn applies_the_original_defaults() {
        let s = RunSliceConfig::from_json(base())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(s.chain, "solana");
        assert_eq!(s.compression, CompressionKind::Zstd);
        assert_eq!(s.target_file_bytes, 512 << 20);
        assert!(!s.strict);
        assert_eq!((s.min_required_pre, s.target_total), (52, 5000));
        assert_eq!(
            s.slice_dir(),
            "slices/ohlcv/interval=1m/window=pre52_post4948"
        );
        assert_eq!(s.concurrency, 2);
    }

    #[test]
    fn rejects_each_bad_field_by_name() {
        let cases = [
            ("run_id", json!("../escape"), "run_id"),
            ("interval", json!("0m"), "interval"),
            ("window", json!("pre5"), "window"),
            ("compression", json!("gzip"), "compression"),
            ("target_file_mb", json!(0), "target_file_mb"),
            ("target_file_mb", json!(-1), "target_file_mb"),
            ("min_required_pre", json!(0), "min_required_pre"),
            ("target_total", json!(1.5), "target_total"),
            ("concurrency", json!(1000), "concurrency"),
            ("source", json!("s3"), "source"),
            ("surprise", json!(1), "surprise"),
        ];
        for (field, value, needle) in cases {
            let mut c = base();
            c[field] = value;
            let err = RunSliceConfig::from_json(c)
                .and_then(RunSliceConfig::validate)
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{field}");
            assert!(err.message().contains(needle), "{field}: {err}");
        }
    }

    #[test]
    fn clickhouse_is_required() {
        let mut c = base();
        c.as_object_mut().unwrap().remove("clickhouse");
        let err = RunSliceConfig::from_json(c.clone())
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(err.message().contains("clickhouse is missing"), "{err}");
        c["source"] = json!("corpus");
        let settings = RunSliceConfig::from_json(c.clone())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            settings.source,
            SourceChoice::Corpus {
                require_fresh: None
            }
        );
        c["require_fresh"] = json!(true);
        let err = RunSliceConfig::from_json(c)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.message().contains("require_fresh needs clickhouse"),
            "{err}"
        );
    }

    #[test]
    fn require_fresh_is_for_a_corpus_with_a_server() {
        let mut c = base();
        c["require_fresh"] = json!(true);
        let err = RunSliceConfig::from_json(c.clone())
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.message().contains("applies to source \"corpus\""),
            "{err}"
        );
        c["source"] = json!("corpus");
        let settings = RunSliceConfig::from_json(c).unwrap().validate().unwrap();
        assert!(matches!(
            settings.source,
            SourceChoice::Corpus {
                require_fresh: Some(_)
            }
        ));
    }
}
