//! Loading alerts from Parquet or CSV (docs/lake-format.md, "Alerts") and the run's stored copy `inputs/alerts.parquet`.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{LakeError, Result};
use crate::spec::alert::{Alert, MAX_MINT_BYTES};

/// Earliest accepted alert time (0001-01-01T00:00:00Z), in epoch ms.
const MIN_TS_MS: i64 = -62_135_596_800_000;
/// Latest accepted alert time (9999-12-31T23:59:59.999Z), in epoch ms.
const MAX_TS_MS: i64 = 253_402_300_799_999;

/// Column names tried in order (docs/lake-format.md, "Alerts").
const ID_COLUMNS: [&str; 2] = ["alert_id", "id"];
const MINT_COLUMNS: [&str; 2] = ["mint", "token_address"];
const TIME_COLUMNS: [&str; 3] = ["ts", "timestamp", "ts_ms"];

/// The two input formats, chosen by file suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertsFormat {
    /// `.parquet`: stored byte-for-byte.
    Parquet,
    /// `.csv`: converted deterministically.
    Csv,
}

impl AlertsFormat {
    /// The format of a path by its suffix (case-insensitive), or `INVALID_ALERTS`.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet") => Ok(Self::Parquet),
            Some("csv") => Ok(Self::Csv),
            _ => Err(LakeError::invalid_alerts(format!(
                "alerts file {} must end in .parquet or .csv",
                path.display()
            ))),
        }
    }
}

fn bad_value(path: &Path, row: &str, column: &str, what: &str) -> LakeError {
    LakeError::invalid_alerts(format!(
        "alerts file {}: {row}, column {column:?}: {what}; fix or remove that row",
        path.display()
    ))
}

/// Epoch ms from a number: ms when ≥ 1e12, else seconds.
pub fn number_to_ms(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let ms = if value >= 1e12 {
        value.floor()
    } else {
        (value * 1000.0).floor()
    };
    (ms >= MIN_TS_MS as f64 && ms <= MAX_TS_MS as f64).then_some(ms as i64)
}

fn integer_to_ms(value: i64) -> Option<i64> {
    let ms = if value >= 1_000_000_000_000 {
        Some(value)
    } else {
        value.checked_mul(1000)
    }?;
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}

/// Epoch ms from text: a number first, then ISO-8601 / RFC 3339 (no offset means UTC).
pub fn parse_time_text(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return integer_to_ms(i);
    }
    if let Ok(f) = t.parse::<f64>() {
        return number_to_ms(f);
    }
    let ms = if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        dt.timestamp_millis()
    } else if let Some(naive) = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    {
        naive.and_utc().timestamp_millis()
    } else if let Ok(dt) = DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%#z") {
        dt.timestamp_millis()
    } else if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()
    } else {
        return None;
    };
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}

/// A mint must be there and of a sane length (a token address is 32 to 44 characters; nothing longer than
/// [`MAX_MINT_BYTES`] is one, and it would only bloat the queries).
fn check_mint(mint: &str, path: &Path, row: &str, column: &str) -> Result<()> {
    if mint.trim().is_empty() {
        return Err(bad_value(path, row, column, "the mint is empty"));
    }
    if mint.len() > MAX_MINT_BYTES {
        return Err(bad_value(
            path,
            row,
            column,
            &format!(
                "the mint is {} bytes long, more than the {MAX_MINT_BYTES} a token address can have",
                mint.len()
            ),
        ));
    }
    Ok(())
}

fn finish_alert(id: Option<String>, mint: String, ts_ms: i64) -> Alert {
    let id = id
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("{mint}:{ts_ms}"));
    Alert { id, mint, ts_ms }
}

fn pick<'a>(candidates: &[&'a str], present: impl Fn(&str) -> bool) -> Option<&'a str> {
    candidates.iter().copied().find(|c| present(c))
}

fn missing_column(path: &Path, which: &str, candidates: &[&str]) -> LakeError {
    LakeError::invalid_alerts(format!(
        "alerts file {} has no {which} column: add one named {}",
        path.display(),
        candidates
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

/// Reads every alert of a `.parquet` or `.csv` file, in file order.
pub fn load_alerts(path: &Path) -> Result<Vec<Alert>> {
    let format = AlertsFormat::of(path)?;
    let alerts = match format {
        AlertsFormat::Csv => load_csv(path)?,
        AlertsFormat::Parquet => load_parquet(path)?,
    };
    if alerts.is_empty() {
        return Err(LakeError::invalid_alerts(format!(
            "alerts file {} has no rows: give at least one alert",
            path.display()
        )));
    }
    Ok(alerts)
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| {
        LakeError::invalid_alerts(format!(
            "cannot open alerts file {}: {e}; check alerts_path",
            path.display()
        ))
    })
}

/// Parses alerts from in-memory file content; `name` only labels error messages. The same code path as
/// [`load_alerts`], used by the fuzz tests.
pub fn parse_alerts(content: Vec<u8>, format: AlertsFormat, name: &Path) -> Result<Vec<Alert>> {
    match format {
        AlertsFormat::Csv => parse_csv(std::io::Cursor::new(content), name),
        AlertsFormat::Parquet => parse_parquet(bytes::Bytes::from(content), name),
    }
}

fn load_csv(path: &Path) -> Result<Vec<Alert>> {
    parse_csv(open(path)?, path)
}

fn parse_csv(input: impl std::io::Read, path: &Path) -> Result<Vec<Alert>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| {
            LakeError::invalid_alerts(format!(
                "alerts file {}: cannot read the header: {e}",
                path.display()
            ))
        })?
        .clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(LakeError::invalid_alerts(format!(
            "alerts file {} is empty: it needs a header and at least one alert",
            path.display()
        )));
    }
    let index = |name: &str| headers.iter().position(|h| h == name);
    let id_col = pick(&ID_COLUMNS, |c| index(c).is_some()).and_then(index);
    let mint_name = pick(&MINT_COLUMNS, |c| index(c).is_some())
        .ok_or_else(|| missing_column(path, "mint", &MINT_COLUMNS))?;
    let time_name = pick(&TIME_COLUMNS, |c| index(c).is_some())
        .ok_or_else(|| missing_column(path, "time", &TIME_COLUMNS))?;
    let (mint_col, time_col) = (index(mint_name).unwrap_or(0), index(time_name).unwrap_or(0));
    let mut alerts = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e
                .position()
                .map_or(String::from("?"), |p| p.line().to_string());
            LakeError::invalid_alerts(format!("alerts file {}: line {line}: {e}", path.display()))
        })?;
        let row = format!("line {}", record.position().map_or(0, |p| p.line()));
        let mint = record.get(mint_col).unwrap_or("");
        check_mint(mint, path, &row, mint_name)?;
        let time = record.get(time_col).unwrap_or("");
        let ts_ms = parse_time_text(time).ok_or_else(|| {
            bad_value(
                path,
                &row,
                time_name,
                &format!("{time:?} is not a time (epoch seconds or ms, or ISO-8601 like 2021-01-01T00:00:00Z)"),
            )
        })?;
        let id = id_col.and_then(|i| record.get(i)).map(str::to_owned);
        alerts.push(finish_alert(id, mint.to_owned(), ts_ms));
    }
    Ok(alerts)
}

fn load_parquet(path: &Path) -> Result<Vec<Alert>> {
    parse_parquet(open(path)?, path)
}

fn parse_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    path: &Path,
) -> Result<Vec<Alert>> {
    // The Parquet decoder has panicked on some corrupt files; a corrupt input is the user's problem to fix,
    // so it gets INVALID_ALERTS like any other unreadable file instead of INTERNAL.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_parquet(input, path))).unwrap_or_else(|_| {
        Err(LakeError::invalid_alerts(format!(
            "alerts file {} is not readable Parquet (the decoder rejected its structure); re-export the file",
            path.display()
        )))
    })
}

fn decode_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    path: &Path,
) -> Result<Vec<Alert>> {
    let unreadable = |e: &dyn std::fmt::Display| {
        LakeError::invalid_alerts(format!(
            "alerts file {} is not readable Parquet: {e}",
            path.display()
        ))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(|e| unreadable(&e))?;
    let schema = builder.schema().clone();
    let has = |name: &str| schema.field_with_name(name).is_ok();
    let id_name = pick(&ID_COLUMNS, has);
    let mint_name =
        pick(&MINT_COLUMNS, has).ok_or_else(|| missing_column(path, "mint", &MINT_COLUMNS))?;
    let time_name =
        pick(&TIME_COLUMNS, has).ok_or_else(|| missing_column(path, "time", &TIME_COLUMNS))?;
    let reader = builder.build().map_err(|e| unreadable(&e))?;
    let mut alerts = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let first_row = alerts.len();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .expect("column exists in schema")
        };
        let mints = column(mint_name);
        let times = column(time_name);
        let ids = id_name.map(column);
        for i in 0..batch.num_rows() {
            let row = format!("row {}", first_row + i + 1);
            let mint = text_value(&mints, i)
                .ok_or_else(|| {
                    bad_value(path, &row, mint_name, "the mint column must hold strings")
                })?
                .unwrap_or_default();
            check_mint(&mint, path, &row, mint_name)?;
            let ts_ms = time_value(&times, i).ok_or_else(|| {
                bad_value(
                    path,
                    &row,
                    time_name,
                    "the time is missing or not a timestamp, epoch number or ISO-8601 text",
                )
            })?;
            let id = match &ids {
                Some(col) => id_value(col, i).ok_or_else(|| {
                    bad_value(
                        path,
                        &row,
                        id_name.unwrap_or("id"),
                        "the id must be text or a whole number",
                    )
                })?,
                None => None,
            };
            alerts.push(finish_alert(id, mint, ts_ms));
        }
    }
    Ok(alerts)
}

/// A string cell: `None` for an unsupported type, `Some(None)` for null.
fn text_value(array: &ArrayRef, i: usize) -> Option<Option<String>> {
    if array.is_null(i) {
        return Some(None);
    }
    let s = match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).to_owned(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_owned(),
        DataType::Utf8View => array.as_string_view().value(i).to_owned(),
        _ => return None,
    };
    Some(Some(s))
}

fn id_value(array: &ArrayRef, i: usize) -> Option<Option<String>> {
    if array.is_null(i) {
        return Some(None);
    }
    match array.data_type() {
        DataType::Int64 => Some(Some(array.as_primitive::<Int64Type>().value(i).to_string())),
        DataType::Int32 => Some(Some(array.as_primitive::<Int32Type>().value(i).to_string())),
        DataType::UInt64 => Some(Some(
            array.as_primitive::<UInt64Type>().value(i).to_string(),
        )),
        DataType::UInt32 => Some(Some(
            array.as_primitive::<UInt32Type>().value(i).to_string(),
        )),
        _ => text_value(array, i),
    }
}

fn time_value(array: &ArrayRef, i: usize) -> Option<i64> {
    if array.is_null(i) {
        return None;
    }
    let ms = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .checked_mul(1000)?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .value(i)
            .div_euclid(1_000_000),
        DataType::Int64 => return integer_to_ms(array.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => {
            return integer_to_ms(i64::from(array.as_primitive::<Int32Type>().value(i)))
        }
        DataType::UInt32 => {
            return integer_to_ms(i64::from(array.as_primitive::<UInt32Type>().value(i)))
        }
        DataType::UInt64 => {
            return integer_to_ms(i64::try_from(array.as_primitive::<UInt64Type>().value(i)).ok()?)
        }
        DataType::Float64 => return number_to_ms(array.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => {
            return number_to_ms(f64::from(array.as_primitive::<Float32Type>().value(i)))
        }
        _ => return parse_time_text(&text_value(array, i)??),
    };
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}
