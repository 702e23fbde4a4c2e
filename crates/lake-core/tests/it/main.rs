//! The core's integration tests, in one binary (one link instead of four).

mod alerts_input;
mod clickhouse_source;
mod hostile_input;
mod lake_files;
mod support;
