//! The lake's pure rules: how mints are bucketed, intervals and windows read, coverage counted and fetches
//! planned. Nothing here does I/O (docs/lake-format.md, "Rules").

pub(crate) mod alert;
pub(crate) mod bucket_range;
pub(crate) mod candles;
pub(crate) mod coverage;
pub(crate) mod fetch_plan;
pub(crate) mod interval;
pub(crate) mod mint_bucket;
pub(crate) mod shard;
pub(crate) mod window;
