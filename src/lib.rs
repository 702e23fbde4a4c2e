//! The QuantBot lake Node addon: converts JavaScript values, runs `lake-core` on napi's tokio runtime and
//! maps its errors to coded JavaScript errors. No lake logic lives here.
//!
//! One file per group of exports: `run` (exportRunSlices), `corpus` (exportCorpus), `verify` (verifyLakeDir),
//! `clickhouse` (probeClickhouse and the connection type), `object_store` (the S3 block of the configs), `rules` (the pure helpers), `config_facts`
//! (configFacts); `hooks` turns `{ onProgress, signal }` into the core's hooks and `js_error` makes coded errors.

#![deny(clippy::all)]

pub mod clickhouse;
pub mod config_facts;
pub mod corpus;
pub mod corpus_status;
pub mod hooks;
pub mod js_error;
pub mod object_store;
pub mod rules;
pub mod run;
pub mod verify;
