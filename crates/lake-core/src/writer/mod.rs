//! Parquet encoding: the writer settings (built in one place), bucket files written mint by mint with pages
//! spilled until their row group is complete, the pool that spreads buckets over threads, and the small tables.
//!
//! Named `writer`, not `parquet`, so that the `parquet` crate keeps its name everywhere in this crate.

pub(crate) mod bucket_writer;
pub(crate) mod page_spill;
pub(crate) mod pool;
pub(crate) mod settings;
pub(crate) mod tables;
