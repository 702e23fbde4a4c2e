//! Parquet Lake v1 core: everything the QuantBot lake exporter does, with no Node or napi dependency.
//!
//! The addon crate at the repository root converts JavaScript values to these types, runs the async parts
//! on napi's tokio runtime and maps [`LakeError`] codes to `err.code`.

pub mod alerts;
pub mod bucket_range;
pub mod bucket_writer;
pub mod cancel;
pub mod candle_feed;
pub mod candles;
pub mod clickhouse_source;
pub mod corpus_batch;
pub mod corpus_config;
pub mod corpus_export;
pub mod corpus_manifest;
pub mod corpus_source;
pub mod coverage;
pub mod error;
pub mod export_run;
pub mod failpoint;
pub mod fetch_plan;
pub mod hashing_writer;
pub mod interval;
pub mod manifest;
pub mod mint_bucket;
pub mod page_spill;
pub mod parquet_settings;
pub mod progress;
pub mod publish;
pub mod run_config;
pub mod seal;
pub mod verify;
pub mod window;
pub mod worker;
pub mod writer_pool;

pub use error::{ErrorCode, LakeError, Result};
