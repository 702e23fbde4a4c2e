//! Every default and limit of the export configs, defined once. The addon exports them to JavaScript
//! (`configFacts()`), where the Zod schemas and the CLI's help are built from them.

use serde::Serialize;

use crate::error::{LakeError, Result};
use crate::spec::alert::MAX_MINT_BYTES;
use crate::spec::interval::MAX_INTERVAL_SECONDS;
use crate::spec::window::MAX_WINDOW_CANDLES;

/// A whole-number field: its default and the range it must lie in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Whole {
    /// Used when the field is absent.
    pub default: u64,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

impl Whole {
    /// `value` when it lies in `[min, max]`, else `INVALID_CONFIG` naming the field and the range.
    pub fn check(&self, name: &str, value: u64) -> Result<u64> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(LakeError::invalid_config(format!(
                "invalid {name} {value}: give a whole number from {} to {}",
                self.min, self.max
            )))
        }
    }
}

/// A string field with a fixed set of values, the first being the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// Used when the field is absent.
    pub default: &'static str,
    /// Every accepted value.
    pub values: &'static [&'static str],
}

/// Every default and limit of the run-slice and corpus configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConfigFacts {
    /// `chain`'s default.
    pub chain: &'static str,
    /// `compression`.
    pub compression: Choice,
    /// `source` of a run.
    pub source: Choice,
    /// `target_file_mb`.
    pub target_file_mb: Whole,
    /// `min_required_pre`.
    pub min_required_pre: Whole,
    /// `target_total`.
    pub target_total: Whole,
    /// `concurrency`.
    pub concurrency: Whole,
    /// `clickhouse.connect_timeout`, seconds.
    pub connect_timeout: Whole,
    /// `clickhouse.send_receive_timeout`, seconds.
    pub send_receive_timeout: Whole,
    /// `clickhouse.retries`: retries of one request after a transient failure.
    pub retries: Whole,
    /// `clickhouse.retry_max_wait`, seconds: the most time spent waiting between the attempts of one request.
    pub retry_max_wait: Whole,
    /// Largest `pre` or `post` of a window spec.
    pub max_window_candles: u32,
    /// Largest interval, seconds.
    pub max_interval_seconds: u64,
    /// Most days one corpus export covers.
    pub max_corpus_days: u64,
    /// Most mints in a corpus `mint_filter`.
    pub max_mint_filter: u64,
    /// Longest mint, bytes (alerts and `mint_filter`).
    pub max_mint_bytes: u64,
    /// Pattern every run id matches.
    pub run_id_pattern: &'static str,
    /// Pattern of `clickhouse.database` and `clickhouse.table`.
    pub identifier_pattern: &'static str,
}

/// The one set of config facts.
pub const FACTS: ConfigFacts = ConfigFacts {
    chain: "solana",
    compression: Choice {
        default: "zstd",
        values: &["zstd", "snappy", "none"],
    },
    source: Choice {
        default: "clickhouse",
        values: &["clickhouse", "corpus"],
    },
    target_file_mb: Whole {
        default: 512,
        min: 1,
        max: 1 << 20,
    },
    min_required_pre: Whole {
        default: 52,
        min: 1,
        max: 100_000_000,
    },
    target_total: Whole {
        default: 5000,
        min: 1,
        max: 100_000_000,
    },
    concurrency: Whole {
        default: 2,
        min: 1,
        max: 64,
    },
    connect_timeout: Whole {
        default: 10,
        min: 1,
        max: 86_400,
    },
    send_receive_timeout: Whole {
        default: 300,
        min: 1,
        max: 86_400,
    },
    // 5 retries wait about 8-16 s in all: a server restart or a dropped connection, not an outage.
    retries: Whole {
        default: 5,
        min: 0,
        max: 100,
    },
    retry_max_wait: Whole {
        default: 120,
        min: 0,
        max: 86_400,
    },
    max_window_candles: MAX_WINDOW_CANDLES,
    max_interval_seconds: MAX_INTERVAL_SECONDS,
    max_corpus_days: 10_000,
    max_mint_filter: 1_000_000,
    max_mint_bytes: MAX_MINT_BYTES as u64,
    run_id_pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
    identifier_pattern: "^[A-Za-z_][A-Za-z0-9_]*$",
};

/// serde `default = "…"` needs functions; these read [`FACTS`].
pub(crate) mod defaults {
    use super::FACTS;

    pub fn chain() -> String {
        FACTS.chain.to_owned()
    }
    pub fn compression() -> String {
        FACTS.compression.default.to_owned()
    }
    pub fn source() -> String {
        FACTS.source.default.to_owned()
    }
    pub fn target_file_mb() -> u64 {
        FACTS.target_file_mb.default
    }
    pub fn min_required_pre() -> u64 {
        FACTS.min_required_pre.default
    }
    pub fn target_total() -> u64 {
        FACTS.target_total.default
    }
    pub fn concurrency() -> u64 {
        FACTS.concurrency.default
    }
    pub fn connect_timeout() -> u64 {
        FACTS.connect_timeout.default
    }
    pub fn send_receive_timeout() -> u64 {
        FACTS.send_receive_timeout.default
    }
    pub fn retries() -> u64 {
        FACTS.retries.default
    }
    pub fn retry_max_wait() -> u64 {
        FACTS.retry_max_wait.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_lies_in_its_range() {
        for w in [
            FACTS.target_file_mb,
            FACTS.min_required_pre,
            FACTS.target_total,
            FACTS.concurrency,
            FACTS.connect_timeout,
            FACTS.send_receive_timeout,
            FACTS.retries,
            FACTS.retry_max_wait,
        ] {
            assert!(w.check("x", w.default).is_ok(), "{w:?}");
            assert!(w.check("x", w.max + 1).is_err());
            if w.min > 0 {
                assert!(w.check("x", w.min - 1).is_err());
            }
        }
        for c in [FACTS.compression, FACTS.source] {
            assert_eq!(c.values[0], c.default);
        }
    }

    #[test]
    fn the_messages_name_the_field_and_range() {
        let err = FACTS.concurrency.check("concurrency", 65).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid concurrency 65: give a whole number from 1 to 64"
        );
    }
}
