//! Parquet Lake v1 core: everything the QuantBot lake exporter does, with no Node or napi dependency.
//!
//! The addon crate at the repository root converts JavaScript values to these types, runs the async parts
//! on napi's tokio runtime and maps [`LakeError`] codes to `err.code`. The lake's format is described in
//! `docs/lake-format.md`.
//!
//! The modules, from the bottom up:
//! - `platform`: what the operating system offers beyond `std` (atomic swap, writeback, heap trim), one seam each.
//! - `spec`: the lake's pure rules (mint buckets, intervals, windows, coverage, fetch plans); no I/O.
//! - `config`: every default and limit of the configs, and how wire JSON is read.
//! - `lake`: the lake on disk (path layout, typed manifests, seal, sealed publish, verify).
//! - `writer`: Parquet encoding of bucket files and small tables.
//! - `task`: blocking work off the async workers, and cancellation.
//! - `source`: where candles come from (ClickHouse, the lake's corpus) behind one feed.
//! - `pipeline`: a fetch driven into a part sink, progress, the caller's hooks.
//! - `run`, `corpus`: the two exports.

mod config;
mod corpus;
mod error;
mod failpoint;
mod lake;
mod pipeline;
mod platform;
mod run;
mod source;
mod spec;
mod task;
mod writer;

pub use error::{ErrorCode, LakeError, Result, Transient};

// The exports and what they report.
pub use corpus::config::{CorpusConfig, CorpusSettings};
pub use corpus::status::{corpus_status, CorpusDayState, CorpusDayStatus, CorpusStatusReport};
pub use corpus::{export_corpus, CorpusExportResult, DayOutcome, DayReason, DayStatus, Refreshed};
pub use pipeline::hooks::ExportHooks;
pub use pipeline::progress::{Phase, ProgressCallback, ProgressEvent};
pub use run::config::{RunSettings, RunSliceConfig};
pub use run::{export_run_slices, RunExportResult};
pub use source::clickhouse::RetryNotice;
pub use task::blocking::blocking;
pub use task::cancel::CancelFlag;

// Configs: defaults and limits, wire parsing.
pub use config::facts::{Choice, ConfigFacts, Whole, FACTS};
pub use config::wire::parse_config;

// The lake on disk.
pub use lake::day_manifest::{DayManifest, MintFilter, Selection};
pub use lake::hashed_file::write_file;
pub use lake::layout::validate_run_id;
pub use lake::manifest::{manifest_bytes, FetchStats, FileTotals, SourceSnapshot, WrittenFile};
pub use lake::manifest_reader::{read_manifest, Manifest, ManifestError};
pub use lake::remote::store::ObjectStoreConfig;
pub use lake::run_manifest::{CoverageSummary, RunContents, RunManifest, SliceSpec};
pub use lake::verify::{verify, Problem, VerifyReport};

// The pure rules, for QuantBot code and the addon's helpers.
pub use spec::alert::Alert;
pub use spec::candles::MintCandles;
pub use spec::fetch_plan::{plan_mints, MintRanges};
pub use spec::interval::interval_to_seconds;
pub use spec::mint_bucket::{compute_mint_bucket, mint_bucket_index};
pub use spec::window::{
    compute_window_slice, floor_to_interval, parse_window_spec, WindowSlice, WindowSpec,
    MAX_WINDOW_CANDLES,
};

// Building blocks, public for the integration tests and benchmarks that exercise them on their own.
pub use run::alerts::{load_alerts, parse_alerts, parse_time_text, AlertsFormat};
pub use source::clickhouse::{
    load_table_schema, CandleSource, ClickHouseConfig, Connection, ReadOrder, ServerInfo,
};
pub use source::fetched_mint::FetchedMint;
pub use writer::bucket_writer::{BucketWriter, PartSettings};
pub use writer::page_spill::PageStore;
pub use writer::settings::{CompressionKind, CREATED_BY, PAGE_ROWS};
pub use writer::tables::alerts_to_parquet;
