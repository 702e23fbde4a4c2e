//! Hostile input: configs, specs and alerts files built to break the parsers. Nothing may panic; every
//! rejection carries its code. `LAKE_FUZZ_CASES` sets the cases per target (default 25,000: 125,000 in all).

use std::path::Path;

use lake_core::{
    alerts_to_parquet, interval_to_seconds, parse_alerts, parse_window_spec, validate_run_id,
    Alert, AlertsFormat, CompressionKind, CorpusConfig, ErrorCode, RunSliceConfig,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn cases() -> u32 {
    std::env::var("LAKE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Values a caller could plausibly (or maliciously) put in any field.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(4_294_967_296),
            Just(i64::MAX)
        ]
        .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("../../etc"),
            Just("/abs"),
            Just("a\u{0}b"),
            Just("pre1_post1"),
            Just("1m"),
            Just("zstd"),
            Just("x'; DROP TABLE t; --"),
            Just("00-ff"),
            Just("2025-01-01"),
            Just("corpus"),
        ]
        .prop_map(Value::from),
        proptest::collection::vec("\\PC{0,8}", 0..4).prop_map(|v| json!(v)),
    ]
}

const RUN_KEYS: [&str; 16] = [
    "data_root",
    "run_id",
    "interval",
    "window",
    "alerts_path",
    "chain",
    "compression",
    "target_file_mb",
    "strict_coverage",
    "min_required_pre",
    "target_total",
    "clickhouse",
    "overwrite",
    "concurrency",
    "source",
    "bogus",
];
const CORPUS_KEYS: [&str; 13] = [
    "data_root",
    "interval",
    "date_from",
    "date_to",
    "chain",
    "compression",
    "target_file_mb",
    "mint_filter",
    "buckets",
    "overwrite",
    "concurrency",
    "clickhouse",
    "bogus",
];
const CH_KEYS: [&str; 8] = [
    "host",
    "port",
    "database",
    "table",
    "user",
    "password",
    "connect_timeout",
    "send_receive_timeout",
];

fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::collection::vec((proptest::sample::select(keys), any_value()), 0..keys.len())
        .prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
}

fn with_clickhouse(base: Value, ch: Value) -> Value {
    let mut base = base;
    if let (Value::Object(m), true) = (&mut base, ch.is_object()) {
        m.insert("clickhouse".into(), ch);
    }
    base
}

fn valid_alerts_parquet() -> Vec<u8> {
    let alerts: Vec<Alert> = (0..50)
        .map(|i| Alert {
            id: format!("a{i}"),
            mint: format!("mint{}", i % 7),
            ts_ms: 1_609_459_200_000 + i * 60_000,
        })
        .collect();
    alerts_to_parquet(&alerts, CompressionKind::Snappy).unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn run_configs_never_panic(base in object(&RUN_KEYS), ch in object(&CH_KEYS)) {
        if let Err(e) = RunSliceConfig::from_json(with_clickhouse(base, ch)).and_then(RunSliceConfig::validate) {
            prop_assert_eq!(e.code(), ErrorCode::InvalidConfig);
        }
    }

    #[test]
    fn corpus_configs_never_panic(base in object(&CORPUS_KEYS), ch in object(&CH_KEYS)) {
        if let Err(e) = CorpusConfig::from_json(with_clickhouse(base, ch)).and_then(CorpusConfig::validate) {
            prop_assert_eq!(e.code(), ErrorCode::InvalidConfig);
        }
    }

    #[test]
    fn specs_and_run_ids_never_panic(s in "\\PC{0,32}", t in "(pre|post|_|[0-9]|-|m|s|h|d|\\PC){0,16}") {
        for input in [&s, &t] {
            for result in [parse_window_spec(input).map(|_| ()), interval_to_seconds(input).map(|_| ()), validate_run_id(input)] {
                if let Err(e) = result {
                    prop_assert_eq!(e.code(), ErrorCode::InvalidConfig);
                }
            }
            if let Ok(()) = validate_run_id(input) {
                prop_assert!(!input.contains('/') && !input.starts_with('.') && !input.contains('\0'));
            }
        }
    }

    #[test]
    fn csv_alerts_never_panic(
        header in prop_oneof![Just("alert_id,mint,ts\n".to_owned()), Just("id,token_address,timestamp\n".to_owned()), "[a-z_,]{0,30}\n"],
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut content = header.into_bytes();
        content.extend(body);
        if let Err(e) = parse_alerts(content, AlertsFormat::Csv, Path::new("fuzz.csv")) {
            prop_assert_eq!(e.code(), ErrorCode::InvalidAlerts);
        }
    }

    #[test]
    fn corrupted_parquet_alerts_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid_alerts_parquet();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if cut.index(4) == 0 {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        if let Err(e) = parse_alerts(bytes, AlertsFormat::Parquet, Path::new("fuzz.parquet")) {
            prop_assert_eq!(e.code(), ErrorCode::InvalidAlerts);
        }
    }
}
