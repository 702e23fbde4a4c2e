//! The lake on disk: every path rule, the typed manifests and their seal, hashed durable files, sealed
//! publishing and verification (docs/lake-format.md).

pub(crate) mod day_manifest;
pub(crate) mod fingerprint;
pub(crate) mod hashed_file;
pub(crate) mod layout;
pub(crate) mod manifest;
pub(crate) mod manifest_reader;
pub(crate) mod place;
pub(crate) mod publish;
pub(crate) mod remote;
pub(crate) mod run_manifest;
pub(crate) mod seal;
pub(crate) mod sealed_files;
pub(crate) mod verify;
