//! The one reader of sealed manifests: verify, the corpus source, re-runs and the shard merge all read through it.

use std::path::Path;

use serde_json::Value;

use crate::lake::day_manifest::DayManifest;
use crate::lake::manifest::{OutputTotals, WrittenFile};
use crate::lake::run_manifest::RunManifest;

/// A manifest of either kind, as read back.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A run's.
    Run(RunManifest),
    /// A corpus day's, or one shard's of it.
    Day(DayManifest),
}

impl Manifest {
    /// Reads a manifest's JSON into its type (a corpus day says `"kind": "corpus_day"`); the error names the
    /// first field that does not fit.
    pub fn from_value(value: &Value) -> std::result::Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> std::result::Result<T, String> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                format!("field {path}: {}", e.inner())
            })
        }
        match value.get("kind") {
            Some(_) => typed(value).map(Self::Day),
            None => typed(value).map(Self::Run),
        }
    }

    /// The data files it lists.
    pub fn files(&self) -> &[WrittenFile] {
        match self {
            Self::Run(m) => &m.files,
            Self::Day(m) => &m.files,
        }
    }

    /// Each output directory (relative; `""` for the whole directory) and the totals it states.
    pub fn outputs(&self) -> Vec<(&str, &OutputTotals)> {
        match self {
            Self::Run(m) => m.outputs.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Self::Day(m) => vec![("", &m.outputs)],
        }
    }
}

/// Reads and parses a manifest file: its raw JSON (what the seal covers) and its typed form.
pub fn read_manifest(path: &Path) -> std::result::Result<(Value, Manifest), ManifestError> {
    let text = std::fs::read(path).map_err(|e| ManifestError::Missing(e.to_string()))?;
    parse_manifest(&text)
}

/// Parses a manifest's bytes (as read from disk or an object store): its raw JSON and its typed form.
pub fn parse_manifest(bytes: &[u8]) -> std::result::Result<(Value, Manifest), ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    let manifest = Manifest::from_value(&value).map_err(ManifestError::Malformed)?;
    Ok((value, manifest))
}

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// No readable file.
    Missing(String),
    /// Not JSON, or not a manifest.
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_that_does_not_fit_names_the_field() {
        let err = Manifest::from_value(&serde_json::json!({"kind": "corpus_day", "date": 5}))
            .unwrap_err();
        assert!(err.starts_with("field "), "{err}");
    }
}
