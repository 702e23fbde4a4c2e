//! Alerts loading (docs/lake-format.md, "Alerts"): every column fallback, time format and INVALID_ALERTS case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, TimestampSecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use lake_core::{
    alerts_to_parquet, load_alerts, parse_time_text, Alert, CompressionKind, ErrorCode,
};
use parquet::arrow::ArrowWriter;
use proptest::prelude::*;

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn write_parquet(dir: &Path, name: &str, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let p = dir.join(name);
    let mut w = ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    p
}

fn alert(id: &str, mint: &str, ts_ms: i64) -> Alert {
    Alert {
        id: id.into(),
        mint: mint.into(),
        ts_ms,
    }
}

const T: i64 = 1_609_459_200_000;

#[test]
fn csv_numbers_and_iso_strings() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "a.CSV",
        "alert_id,mint,ts\n\
         a1,m1,1609459200\n\
         a2,m2,1609459200000\n\
         a3,m3,2021-01-01T00:00:00Z\n\
         a4,m4,2021-01-01T02:00:00+02:00\n\
         a5,m5,2021-01-01 00:00:00\n\
         a6,m6,2021-01-01T00:00:00.250\n\
         a7,m7,1609459200.5\n",
    );
    let got = load_alerts(&p).unwrap();
    let want = vec![
        alert("a1", "m1", T),
        alert("a2", "m2", T),
        alert("a3", "m3", T),
        alert("a4", "m4", T),
        alert("a5", "m5", T),
        alert("a6", "m6", T + 250),
        alert("a7", "m7", T + 500),
    ];
    assert_eq!(got, want);
}

#[test]
fn csv_column_fallbacks_and_id_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "b.csv",
        "id,token_address,timestamp\nx,m1,1609459200\n,m2,1609459200\n",
    );
    assert_eq!(
        load_alerts(&p).unwrap(),
        vec![alert("x", "m1", T), alert("m2:1609459200000", "m2", T)]
    );
    let p = write(dir.path(), "c.csv", "mint,ts_ms\nm1,1609459200000\n");
    assert_eq!(
        load_alerts(&p).unwrap(),
        vec![alert("m1:1609459200000", "m1", T)]
    );
    // `alert_id` wins over `id`, `mint` over `token_address`, `ts` over `timestamp`.
    let p = write(
        dir.path(),
        "d.csv",
        "id,alert_id,token_address,mint,timestamp,ts\ni,a,t,m,1,1609459200\n",
    );
    assert_eq!(load_alerts(&p).unwrap(), vec![alert("a", "m", T)]);
}

#[test]
fn csv_errors_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty.csv", "", vec!["empty.csv", "empty"]),
        (
            "header_only.csv",
            "mint,ts\n",
            vec!["header_only.csv", "no rows"],
        ),
        (
            "no_mint.csv",
            "id,ts\n1,1609459200\n",
            vec!["no mint column", "\"mint\" or \"token_address\""],
        ),
        (
            "no_time.csv",
            "mint,when\nm,1\n",
            vec!["no time column", "\"ts\""],
        ),
        (
            "bad_time.csv",
            "mint,ts\nm,1609459200\nm,yesterday\n",
            vec!["line 3", "column \"ts\"", "yesterday"],
        ),
        (
            "empty_mint.csv",
            "mint,ts\n,1609459200\n",
            vec!["line 2", "column \"mint\"", "empty"],
        ),
        ("ragged.csv", "mint,ts\nm,1,extra\n", vec!["line 2"]),
    ];
    let huge_mint = format!(
        "mint,ts\nok,1609459200\n{},1609459200\n",
        "x".repeat(50_000_000)
    );
    let cases = cases.into_iter().chain([(
        "huge_mint.csv",
        huge_mint.as_str(),
        vec!["line 3", "column \"mint\"", "50000000 bytes", "1024"],
    )]);
    for (name, content, needles) in cases {
        let p = write(dir.path(), name, content);
        let err = load_alerts(&p).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidAlerts, "{name}: {err}");
        for needle in needles {
            assert!(
                err.message().contains(needle),
                "{name}: {err} lacks {needle:?}"
            );
        }
    }
    let err = load_alerts(&write(dir.path(), "alerts.json", "[]")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidAlerts);
    assert!(err.message().contains(".parquet or .csv"));
    let err = load_alerts(&dir.path().join("missing.csv")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidAlerts);
}

#[test]
fn parquet_ms_seconds_and_timestamp_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mints: ArrayRef = Arc::new(StringArray::from(vec!["m1", "m2"]));
    let p = write_parquet(
        dir.path(),
        "ms.parquet",
        vec![
            ("alert_id", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("mint", mints.clone()),
            ("ts", Arc::new(Int64Array::from(vec![T, T + 60_000]))),
        ],
    );
    assert_eq!(
        load_alerts(&p).unwrap(),
        vec![alert("a", "m1", T), alert("b", "m2", T + 60_000)]
    );
    let p = write_parquet(
        dir.path(),
        "s.parquet",
        vec![
            ("id", Arc::new(Int64Array::from(vec![7, 8]))),
            ("token_address", mints.clone()),
            (
                "timestamp",
                Arc::new(Int64Array::from(vec![T / 1000, T / 1000 + 1])),
            ),
        ],
    );
    assert_eq!(
        load_alerts(&p).unwrap(),
        vec![alert("7", "m1", T), alert("8", "m2", T + 1000)]
    );
    let p = write_parquet(
        dir.path(),
        "tsus.parquet",
        vec![
            ("mint", mints.clone()),
            (
                "ts",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![T * 1000 + 999, T * 1000])
                        .with_timezone("America/New_York"),
                ),
            ),
        ],
    );
    assert_eq!(
        load_alerts(&p).unwrap(),
        vec![
            alert("m1:1609459200000", "m1", T),
            alert("m2:1609459200000", "m2", T)
        ]
    );
    let p = write_parquet(
        dir.path(),
        "tss.parquet",
        vec![
            ("mint", mints),
            (
                "ts",
                Arc::new(TimestampSecondArray::from(vec![T / 1000, T / 1000])),
            ),
        ],
    );
    assert_eq!(load_alerts(&p).unwrap()[0].ts_ms, T);
    assert_eq!(
        Field::new("x", DataType::Timestamp(TimeUnit::Second, None), true).data_type(),
        &DataType::Timestamp(TimeUnit::Second, None)
    );
}

#[test]
fn parquet_errors_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_parquet(
        dir.path(),
        "nullts.parquet",
        vec![
            ("mint", Arc::new(StringArray::from(vec!["m1", "m2"]))),
            ("ts", Arc::new(Int64Array::from(vec![Some(T), None]))),
        ],
    );
    let err = load_alerts(&p).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidAlerts);
    assert!(
        err.message().contains("row 2") && err.message().contains("\"ts\""),
        "{err}"
    );
    let p = write_parquet(
        dir.path(),
        "nullmint.parquet",
        vec![
            ("mint", Arc::new(StringArray::from(vec![None, Some("m")]))),
            ("ts", Arc::new(Int64Array::from(vec![T, T]))),
        ],
    );
    let err = load_alerts(&p).unwrap_err();
    assert!(
        err.message().contains("row 1") && err.message().contains("\"mint\""),
        "{err}"
    );
    let p = write_parquet(
        dir.path(),
        "empty.parquet",
        vec![
            ("mint", Arc::new(StringArray::from(Vec::<&str>::new()))),
            ("ts", Arc::new(Int64Array::from(Vec::<i64>::new()))),
        ],
    );
    assert!(load_alerts(&p).unwrap_err().message().contains("no rows"));
    let p = write(dir.path(), "garbage.parquet", "not parquet");
    assert_eq!(
        load_alerts(&p).unwrap_err().code(),
        ErrorCode::InvalidAlerts
    );
}

#[test]
fn csv_conversion_is_deterministic() {
    let alerts = vec![alert("a", "m1", T), alert("b", "m2", T + 1)];
    let one = alerts_to_parquet(&alerts, CompressionKind::Zstd).unwrap();
    let two = alerts_to_parquet(&alerts, CompressionKind::Zstd).unwrap();
    assert_eq!(one, two);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("round.parquet");
    std::fs::write(&p, &one).unwrap();
    assert_eq!(
        load_alerts(&p).unwrap(),
        alerts,
        "the stored copy reads back as the same alerts"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
    #[test]
    fn csv_reader_never_panics(content in "[a-z0-9_,:\\-\\. \"\n]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "f.csv", &content);
        if let Err(e) = load_alerts(&p) {
            prop_assert_eq!(e.code(), ErrorCode::InvalidAlerts);
        }
    }

    #[test]
    fn time_text_never_panics(s in "\\PC{0,40}") {
        let _ = parse_time_text(&s);
    }
}
