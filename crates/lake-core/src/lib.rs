//! Parquet Lake v1 core: everything the QuantBot lake exporter does, with no Node or napi dependency.
//!
//! The addon crate at the repository root converts JavaScript values to these types, runs the async parts
//! on napi's tokio runtime and maps [`LakeError`] codes to `err.code`.

pub mod clickhouse_source;
pub mod error;
pub mod interval;
pub mod mint_bucket;
pub mod window;

pub use error::{ErrorCode, LakeError, Result};
