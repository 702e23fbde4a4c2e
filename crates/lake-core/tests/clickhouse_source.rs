//! The ClickHouse source against the real server that scripts/test.sh starts.

mod support;

use lake_core::cancel::CancelFlag;
use lake_core::clickhouse_source::{load_table_schema, CandleSource, Connection};
use lake_core::fetch_plan::{plan_buckets, BucketRequest};
use lake_core::ErrorCode;
use std::collections::BTreeMap;
use support::*;

const T0: i64 = 1_609_459_200; // 2021-01-01T00:00:00Z
const MINTS: [&str; 5] = [
    "So11111111111111111111111111111111111111112",
    "m'quote",
    "m\\back",
    "m\"dq",
    "plain",
];

/// A ReplacingMergeTree table like QuantBot's: gaps, duplicates in separate parts (newer ingested_at wins),
/// other chains and intervals, and mints with quotes and backslashes.
async fn candle_table(db: &str, engine: &str) {
    sql(&format!("CREATE TABLE {db}.ohlcv_candles ({CANDLE_COLUMNS}) ENGINE = {engine} ORDER BY (token_address, chain, timestamp, interval_seconds)")).await;
    for (k, mint) in MINTS.iter().enumerate() {
        let m = lit(mint);
        // 1m candles for 3 hours, every 7th minute missing.
        sql(&format!(
            "INSERT INTO {db}.ohlcv_candles SELECT {m}, 'solana', toDateTime({T0} + number * 60), 60, \
             number + {k}, number + 2, number, number + 1, number * 10, toDateTime(1700000000) \
             FROM system.numbers WHERE number % 7 != 3 LIMIT 160"
        ))
        .await;
        // Re-ingested candles for minutes 10..19: newer version, other prices.
        sql(&format!(
            "INSERT INTO {db}.ohlcv_candles SELECT {m}, 'solana', toDateTime({T0} + number * 60), 60, \
             1000 + number, 1000, 1000, 1000, 1000, toDateTime(1700000500) FROM system.numbers WHERE number >= 10 LIMIT 10"
        ))
        .await;
        // Noise that must never come back: other chain, other interval.
        sql(&format!(
            "INSERT INTO {db}.ohlcv_candles SELECT {m}, 'ethereum', toDateTime({T0} + number * 60), 60, -1, -1, -1, -1, -1, \
             toDateTime(1700000000) FROM system.numbers LIMIT 180"
        ))
        .await;
        sql(&format!(
            "INSERT INTO {db}.ohlcv_candles SELECT {m}, 'solana', toDateTime({T0} + number * 300), 300, -2, -2, -2, -2, -2, \
             toDateTime(1700000000) FROM system.numbers LIMIT 40"
        ))
        .await;
    }
}

fn windows() -> BTreeMap<String, Vec<(i64, i64)>> {
    let ms = |min: i64| (T0 + min * 60) * 1000;
    MINTS
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let k = k as i64;
            // Two overlapping windows and one apart, per mint.
            (
                m.to_string(),
                vec![
                    (ms(5 + k), ms(25 + k)),
                    (ms(20), ms(40)),
                    (ms(100), ms(130)),
                ],
            )
        })
        .collect()
}

async fn source(db: &str, table: &str, user: &str) -> lake_core::Result<CandleSource> {
    let mut cfg = config(db, table);
    cfg.user = user.to_owned();
    let conn = Connection::new(cfg)?;
    let schema = load_table_schema(&conn).await?;
    Ok(CandleSource {
        large_queries: true,
        conn,
        schema,
        chain: "solana".into(),
        interval_s: 60,
    })
}

/// Every row as `mint\tts_s\topen\thigh\tlow\tclose\tvolume`, fetched through the source.
async fn fetch_all(
    src: &CandleSource,
    plan: &[BucketRequest],
) -> lake_core::Result<(Vec<String>, u64, u64)> {
    let mut lines = Vec::new();
    let (mut fetched, mut dups) = (0, 0);
    for req in plan {
        let out = src.fetch_bucket(req, &CancelFlag::new()).await?;
        fetched += out.rows_fetched;
        dups += out.duplicates_dropped;
        for c in &out.mints {
            for i in 0..c.len() {
                let [o, h, l, cl, v] = c.ohlcv(i);
                lines.push(format!(
                    "{}\t{}\t{o}\t{h}\t{l}\t{cl}\t{v}",
                    c.mint,
                    c.ts_ms[i] / 1000
                ));
            }
        }
    }
    lines.sort();
    Ok((lines, fetched, dups))
}

/// The same rows by plain SQL: newest version per (mint, ts) inside the windows.
async fn expected(db: &str) -> Vec<String> {
    let terms: Vec<String> = windows()
        .iter()
        .flat_map(|(m, ranges)| {
            ranges.iter().map(move |(s, e)| {
                format!("(token_address = {} AND timestamp >= toDateTime({}) AND timestamp < toDateTime({}))", lit(m), s / 1000, e / 1000)
            })
        })
        .collect();
    let text = sql(&format!(
        "SELECT token_address, toUInt32(timestamp), argMax(open, ingested_at), argMax(high, ingested_at), \
         argMax(low, ingested_at), argMax(close, ingested_at), argMax(volume, ingested_at) \
         FROM {db}.ohlcv_candles WHERE chain = 'solana' AND interval_seconds = 60 AND ({}) \
         GROUP BY token_address, timestamp",
        terms.join(" OR ")
    ))
    .await;
    // TabSeparated escapes backslashes and quotes in strings; undo that to compare raw mints.
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.replace("\\\\", "\u{1}")
                .replace("\\'", "'")
                .replace('\u{1}', "\\")
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn replacing_merge_tree_rows_equal_plain_sql() {
    let db = fresh_database("src_rmt").await;
    candle_table(&db, "ReplacingMergeTree(ingested_at)").await;
    let src = source(&db, "ohlcv_candles", "default").await.unwrap();
    assert!(src.schema.supports_final());
    let plan = plan_buckets(windows());
    let (got, fetched, _) = fetch_all(&src, &plan).await.unwrap();
    let want = expected(&db).await;
    assert!(
        want.len() > 200,
        "the fixture has enough rows ({})",
        want.len()
    );
    assert_eq!(got, want);
    // Overlapping windows fetch each candle once; time blocks round windows outwards by at most a window each side.
    assert!(
        fetched as usize >= got.len() && (fetched as usize) <= got.len() * 3,
        "fetched {fetched} for {} rows",
        got.len()
    );
    assert!(
        got.iter().any(|l| l.starts_with("m'quote\t"))
            && got.iter().any(|l| l.starts_with("m\\back\t"))
    );
    assert!(
        got.iter().all(|l| !l.contains("-1") && !l.contains("-2")),
        "no other chain or interval"
    );
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn a_read_only_user_gets_the_same_rows_through_short_queries() {
    let db = fresh_database("src_ro").await;
    candle_table(&db, "ReplacingMergeTree(ingested_at)").await;
    let mut cfg = config(&db, "ohlcv_candles");
    cfg.user = "reader".into();
    let (src, _) = CandleSource::connect(&cfg, "solana", 60).await.unwrap();
    assert!(!src.large_queries, "readonly=1 cannot raise max_query_size");
    let (got, _, _) = fetch_all(&src, &plan_buckets(windows())).await.unwrap();
    assert_eq!(got, expected(&db).await);
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn plain_merge_tree_yields_no_duplicates_and_newest_wins() {
    let db = fresh_database("src_mt").await;
    candle_table(&db, "MergeTree").await;
    let src = source(&db, "ohlcv_candles", "default").await.unwrap();
    assert!(!src.schema.supports_final());
    let plan = plan_buckets(windows());
    let (got, fetched, dups) = fetch_all(&src, &plan).await.unwrap();
    assert_eq!(got, expected(&db).await);
    let keys: std::collections::BTreeSet<String> = got
        .iter()
        .map(|l| l.splitn(3, '\t').take(2).collect::<Vec<_>>().join("\t"))
        .collect();
    assert_eq!(keys.len(), got.len(), "no (mint, ts) twice");
    assert!(dups > 0, "the fixture has duplicates to drop");
    assert!(fetched >= got.len() as u64 + dups);
    sql(&format!("DROP DATABASE {db}")).await;
}

async fn error_of(db: &str, table: &str, user: &str, password: &str) -> lake_core::LakeError {
    let mut cfg = config(db, table);
    cfg.user = user.to_owned();
    cfg.password = password.to_owned();
    let conn = Connection::new(cfg).unwrap();
    match load_table_schema(&conn).await {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

#[tokio::test]
async fn each_failure_has_its_code() {
    let db = fresh_database("src_err").await;
    candle_table(&db, "ReplacingMergeTree(ingested_at)").await;

    let err = error_of(&db, "ohlcv_candles", "tester", "not-the-password").await;
    assert_eq!(err.code(), ErrorCode::ClickhouseAuth, "{err}");
    assert!(!err.message().contains("not-the-password"));

    let err = error_of("no_such_db", "ohlcv_candles", "default", "").await;
    assert_eq!(err.code(), ErrorCode::ClickhouseSchema, "{err}");
    let err = error_of(&db, "no_such_table", "default", "").await;
    assert_eq!(err.code(), ErrorCode::ClickhouseSchema, "{err}");
    assert!(err.message().contains("does not exist"));

    sql(&format!("CREATE TABLE {db}.no_volume (token_address String, chain String, timestamp DateTime, interval_seconds UInt32, open Float64, high Float64, low Float64, close Float64) ENGINE = MergeTree ORDER BY token_address")).await;
    let err = error_of(&db, "no_volume", "default", "").await;
    assert_eq!(err.code(), ErrorCode::ClickhouseSchema);
    assert!(err.message().contains("volume is missing"), "{err}");
    sql(&format!("CREATE TABLE {db}.string_ts (token_address String, chain String, timestamp String, interval_seconds UInt32, open Float64, high Float64, low Float64, close Float64, volume Float64) ENGINE = MergeTree ORDER BY token_address")).await;
    let err = error_of(&db, "string_ts", "default", "").await;
    assert_eq!(err.code(), ErrorCode::ClickhouseSchema);
    assert!(err.message().contains("timestamp has type String"), "{err}");

    let mut cfg = config(&db, "ohlcv_candles");
    cfg.port = 1;
    let err = Connection::new(cfg)
        .unwrap()
        .server_info()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ClickhouseUnreachable, "{err}");
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // A peer that accepts connections and then says nothing: the client must give up after connect_timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(conn);
    });
    let mut cfg = config("default", "t");
    cfg.port = port;
    cfg.connect_timeout = 1;
    let started = std::time::Instant::now();
    let err = Connection::new(cfg)
        .unwrap()
        .server_info()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ClickhouseUnreachable, "{err}");
    assert!(err.message().contains("did not answer"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    holder.join().unwrap();
}

#[tokio::test]
async fn an_exception_in_the_middle_of_a_200_answer_fails_the_fetch() {
    let db = fresh_database("src_mid").await;
    sql(&format!("CREATE TABLE {db}.ohlcv_candles ({CANDLE_COLUMNS}) ENGINE = MergeTree ORDER BY (token_address, chain, timestamp, interval_seconds)")).await;
    let mint = "So11111111111111111111111111111111111111112";
    sql(&format!(
        "INSERT INTO {db}.ohlcv_candles SELECT '{mint}', 'solana', toDateTime({T0} + number * 60), 60, 1, 2, 0.5, 1.5, 10, \
         toDateTime(1700000000) FROM system.numbers LIMIT 120000"
    ))
    .await;
    // Prove the scenario: the `limited` user's max_result_rows trips after data went out with status 200.
    let client = clickhouse::Client::default()
        .with_url(clickhouse_url())
        .with_user("limited");
    let mut raw = client
        .query(&format!("SELECT toUInt8(165), token_address, toUInt32(timestamp), open, high, low, close, volume FROM {db}.ohlcv_candles ORDER BY token_address, timestamp"))
        .fetch_bytes("RowBinary")
        .unwrap();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = raw.next().await {
        body.extend_from_slice(&chunk);
    }
    assert!(
        body.len() > 1_000_000,
        "rows were sent before the error ({} bytes)",
        body.len()
    );
    assert!(
        String::from_utf8_lossy(&body[body.len() - 300..]).contains("Limit for result exceeded")
    );

    let src = source(&db, "ohlcv_candles", "limited").await.unwrap();
    let plan = plan_buckets(
        [(
            mint.to_owned(),
            vec![(T0 * 1000, (T0 + 120_000 * 60) * 1000)],
        )]
        .into_iter()
        .collect(),
    );
    let err = src
        .fetch_bucket(&plan[0], &CancelFlag::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ClickhouseQuery, "{err}");
    assert!(
        err.message().contains("Limit for result exceeded"),
        "the server's message: {err}"
    );
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn cancellation_stops_a_fetch() {
    let db = fresh_database("src_cancel").await;
    candle_table(&db, "ReplacingMergeTree(ingested_at)").await;
    let src = source(&db, "ohlcv_candles", "default").await.unwrap();
    let cancel = CancelFlag::new();
    cancel.cancel();
    let plan = plan_buckets(windows());
    let err = src.fetch_bucket(&plan[0], &cancel).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    sql(&format!("DROP DATABASE {db}")).await;
}
