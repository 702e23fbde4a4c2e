//! The small tables of a run, each one Parquet file written in one go: `outputs/coverage.parquet` and the stored
//! form of CSV alerts (docs/lake-format.md, "Coverage" and "Alerts").

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{LakeError, Result};
use crate::spec::alert::Alert;
use crate::spec::coverage::{CoverageRow, WindowCoverage};
use crate::writer::settings::{arrow_writer_options, CompressionKind, FileKind};

/// Schema of `outputs/coverage.parquet` (docs/lake-format.md, "Coverage"): the original exporter's columns plus `kept`.
pub fn coverage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("mint", DataType::Utf8, false),
        Field::new("anchor_ts_ms", DataType::Int64, false),
        Field::new("available_pre", DataType::Int32, false),
        Field::new("available_post", DataType::Int32, false),
        Field::new("available_total", DataType::Int32, false),
        Field::new("first_ts_ms", DataType::Int64, true),
        Field::new("last_ts_ms", DataType::Int64, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("kept", DataType::Boolean, false),
    ]))
}

/// The coverage table as Parquet bytes, rows in input order.
pub fn coverage_to_parquet(rows: &[CoverageRow], compression: CompressionKind) -> Result<Vec<u8>> {
    let int32 = |f: fn(&WindowCoverage) -> u32| -> Result<ArrayRef> {
        let values = rows
            .iter()
            .map(|r| i32::try_from(f(&r.coverage)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| LakeError::internal("a coverage count does not fit in int32"))?;
        Ok(Arc::new(Int32Array::from(values)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.alert_id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.mint.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.anchor_ts_ms),
        )),
        int32(|c| c.pre)?,
        int32(|c| c.post)?,
        int32(WindowCoverage::total)?,
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.coverage.first_ts_ms),
        )),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.coverage.last_ts_ms),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.status.as_str()),
        )),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.kept)))),
    ];
    let schema = coverage_schema();
    table_bytes(schema, columns, compression, "the coverage table")
}

/// The deterministic Parquet form of alerts read from CSV: `alert_id`, `mint` (strings), `ts_ms` (int64).
pub fn alerts_to_parquet(alerts: &[Alert], compression: CompressionKind) -> Result<Vec<u8>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("mint", DataType::Utf8, false),
        Field::new("ts_ms", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            alerts.iter().map(|a| a.id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            alerts.iter().map(|a| a.mint.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(alerts.iter().map(|a| a.ts_ms))),
    ];
    table_bytes(schema, columns, compression, "the alerts table")
}

/// A small table (coverage, stored alerts) as the bytes of one Parquet file with the table layout.
fn table_bytes(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    compression: CompressionKind,
    what: &str,
) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| LakeError::internal(format!("writing {what}: {e}"));
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), columns).map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new_with_options(
        &mut out,
        schema,
        arrow_writer_options(FileKind::Table, compression),
    )
    .map_err(|e| fail(&e))?;
    writer.write(&batch).map_err(|e| fail(&e))?;
    writer.close().map_err(|e| fail(&e))?;
    Ok(out)
}
