//! The candle table's engine and columns, checked once per export.

use crate::error::{ErrorCode, LakeError, Result};

use super::connection::Connection;

/// What the export needs to know about the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Engine name, e.g. `ReplacingMergeTree`.
    pub engine: String,
    /// `ingested_at` when present: the version that decides between duplicates without `FINAL`.
    pub version_column: Option<String>,
}

impl TableSchema {
    /// `FINAL` collapses duplicates exactly as the engine's merges would; other engines reject it (error 181).
    pub fn supports_final(&self) -> bool {
        matches!(
            self.engine.as_str(),
            "ReplacingMergeTree"
                | "CollapsingMergeTree"
                | "VersionedCollapsingMergeTree"
                | "ReplicatedReplacingMergeTree"
                | "ReplicatedCollapsingMergeTree"
                | "ReplicatedVersionedCollapsingMergeTree"
                | "SharedReplacingMergeTree"
        )
    }
}

/// Columns the export reads, with the type families it accepts.
const REQUIRED: [(&str, &[&str]); 8] = [
    (
        "token_address",
        &["String", "LowCardinality(String)", "FixedString"],
    ),
    (
        "chain",
        &["String", "LowCardinality(String)", "FixedString", "Enum"],
    ),
    ("timestamp", &["DateTime"]),
    ("interval_seconds", &["UInt", "Int"]),
    ("open", &["Float", "Decimal"]),
    ("high", &["Float", "Decimal"]),
    ("low", &["Float", "Decimal"]),
    ("close", &["Float", "Decimal"]),
];
const VOLUME: (&str, &[&str]) = ("volume", &["Float", "Decimal", "UInt", "Int"]);

fn schema_error(conn: &Connection, what: String) -> LakeError {
    LakeError::new(
        ErrorCode::ClickhouseSchema,
        format!(
            "{} at {}: {what}; the table needs token_address String, chain String, timestamp DateTime, \
             interval_seconds UInt32 and open/high/low/close/volume Float64",
            conn.quoted_table(),
            conn.endpoint()
        ),
    )
}

/// Reads the engine and columns from `system.tables` / `system.columns` and checks the candle columns.
pub async fn load_table_schema(conn: &Connection) -> Result<TableSchema> {
    let cfg = conn.config();
    let engine = conn
        .query_text(
            conn.client()
                .query("SELECT engine FROM system.tables WHERE database = ? AND name = ?")
                .bind(cfg.database.as_str())
                .bind(cfg.table.as_str()),
        )
        .await?;
    let engine = engine.trim().to_owned();
    if engine.is_empty() {
        return Err(schema_error(conn, "the table does not exist".to_owned()));
    }
    let columns = conn
        .query_text(
            conn.client()
                .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ? ORDER BY name")
                .bind(cfg.database.as_str())
                .bind(cfg.table.as_str()),
        )
        .await?;
    let columns: Vec<(&str, &str)> = columns.lines().filter_map(|l| l.split_once('\t')).collect();
    let type_of = |name: &str| columns.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    for (name, families) in REQUIRED.iter().chain(std::iter::once(&VOLUME)) {
        match type_of(name) {
            None => return Err(schema_error(conn, format!("column {name} is missing"))),
            Some(ty) => {
                let bare = ty
                    .strip_prefix("Nullable(")
                    .map_or(ty, |t| t.trim_end_matches(')'));
                if !families.iter().any(|f| bare.starts_with(f)) {
                    return Err(schema_error(conn, format!("column {name} has type {ty}")));
                }
            }
        }
    }
    Ok(TableSchema {
        engine,
        version_column: type_of("ingested_at").map(|_| "ingested_at".to_owned()),
    })
}
