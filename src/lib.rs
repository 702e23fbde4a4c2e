//! The QuantBot lake Node addon: converts JavaScript values, runs `lake-core` on napi's tokio runtime and
//! maps its errors to coded JavaScript errors. No lake logic lives here.

#![deny(clippy::all)]

pub mod corpus_export;
pub mod helpers;
pub mod js_error;
pub mod run_export;
pub mod server_probe;
pub mod verify_dir;
