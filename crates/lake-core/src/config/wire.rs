//! Reading a config as callers send it (snake_case JSON): errors name the offending field's path.

use crate::error::{LakeError, Result};

/// Deserialises a wire config; errors name the offending field path (e.g. `clickhouse.port`).
pub fn parse_config<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("field {path}: ")
        };
        LakeError::invalid_config(format!(
            "invalid {what} config: {at}{}; check the field's name and type",
            e.inner()
        ))
    })
}

/// `INVALID_CONFIG` unless `value` holds more than white space.
pub(crate) fn non_empty(value: &str, message: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(LakeError::invalid_config(message))
    } else {
        Ok(())
    }
}

/// Both configs' `data_root`: not empty.
pub(crate) fn check_data_root(data_root: &str) -> Result<()> {
    non_empty(
        data_root,
        "data_root is empty: give the directory that holds (or will hold) lake/",
    )
}

/// Both configs' `chain`: not empty.
pub(crate) fn check_chain(chain: &str) -> Result<()> {
    non_empty(
        chain,
        "chain is empty: give the chain to filter on, e.g. \"solana\"",
    )
}
