//! The ClickHouse source against the real server that scripts/test.sh starts.

use crate::support::*;
use lake_core::{
    load_table_schema, plan_mints, CancelFlag, CandleSource, Connection, ErrorCode, FetchedMint,
    MintRanges, ReadOrder,
};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

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
    Ok(
        CandleSource::connect(&cfg, "solana", 60, None, &CancelFlag::new())
            .await?
            .0,
    )
}

/// A fresh database holding the candle table, and a source over it as `user`.
async fn candle_source(prefix: &str, engine: &str, user: &str) -> (String, CandleSource) {
    let db = fresh_database(prefix).await;
    candle_table(&db, engine).await;
    let src = source(&db, "ohlcv_candles", user).await.unwrap();
    (db, src)
}

/// Runs a fetch that sends mints into a channel and collects them, in order.
async fn collected<Fut>(
    fetch: impl FnOnce(mpsc::Sender<FetchedMint>) -> Fut,
) -> lake_core::Result<Vec<FetchedMint>>
where
    Fut: std::future::Future<Output = lake_core::Result<()>>,
{
    let (tx, mut rx) = mpsc::channel(4);
    let collect = async move {
        let mut out = Vec::new();
        while let Some(m) = rx.recv().await {
            out.push(m);
        }
        out
    };
    let (r, out) = tokio::join!(fetch(tx), collect);
    r.map(|()| out)
}

/// Every mint the fetch hands out, in order.
async fn fetch(
    src: &CandleSource,
    plan: &[MintRanges],
    order: &ReadOrder,
    cancel: &CancelFlag,
) -> lake_core::Result<Vec<FetchedMint>> {
    collected(|tx| async move { src.fetch_mints(plan, order, 2, cancel, &tx).await }).await
}

/// Every row as `mint\tts_s\topen\thigh\tlow\tclose\tvolume`, sorted, with the fetch counters.
fn lines(mints: &[FetchedMint]) -> (Vec<String>, u64, u64) {
    let mut lines = Vec::new();
    let (mut fetched, mut dups) = (0, 0);
    for m in mints {
        fetched += m.rows_fetched;
        dups += m.duplicates_dropped;
        let c = &m.candles;
        for i in 0..c.len() {
            lines.push(format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                c.mint,
                c.ts_ms[i] / 1000,
                c.open[i],
                c.high[i],
                c.low[i],
                c.close[i],
                c.volume[i]
            ));
        }
    }
    lines.sort();
    (lines, fetched, dups)
}

async fn fetch_all(
    src: &CandleSource,
    plan: &[MintRanges],
) -> lake_core::Result<(Vec<String>, u64, u64)> {
    Ok(lines(
        &fetch(src, plan, &src.order, &CancelFlag::new()).await?,
    ))
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
    let (db, src) = candle_source("src_rmt", "ReplacingMergeTree(ingested_at)", "default").await;
    assert!(src.schema.supports_final());
    assert_eq!(
        src.order,
        ReadOrder::Key,
        "18.16 sends FINAL in key order unasked"
    );
    let plan = plan_mints(windows());
    let mints = fetch(&src, &plan, &src.order, &CancelFlag::new())
        .await
        .unwrap();
    let names: Vec<&str> = mints.iter().map(|m| m.candles.mint.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "every mint once, in mint order");
    assert_eq!(names.len(), MINTS.len());
    let (got, fetched, _) = lines(&mints);
    let want = expected(&db).await;
    assert!(
        want.len() > 200,
        "the fixture has enough rows ({})",
        want.len()
    );
    assert_eq!(got, want);
    // Overlapping windows fetch each candle once; far-apart windows are read by separate passes, so the only
    // rows fetched and dropped are those between windows read together (and re-ingested duplicates).
    assert!(
        fetched as usize >= got.len()
            && (fetched as usize) <= got.len() * 105 / 100 + 10 * MINTS.len(),
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
async fn a_read_only_user_gets_the_same_rows() {
    // readonly=1 refuses any setting sent with a query: the fetch sends none.
    let (db, src) = candle_source("src_ro", "ReplacingMergeTree(ingested_at)", "reader").await;
    let (got, _, _) = fetch_all(&src, &plan_mints(windows())).await.unwrap();
    assert_eq!(got, expected(&db).await);
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn every_order_the_server_is_asked_for_gives_the_same_rows() {
    let (db, src) = candle_source("src_orders", "ReplacingMergeTree(ingested_at)", "default").await;
    let plan = plan_mints(windows());
    let want = expected(&db).await;
    for order in [
        ReadOrder::Key,
        ReadOrder::InOrder("token_address, chain, timestamp".into()),
        src.schema.sorted_order(),
    ] {
        let got = lines(
            &fetch(&src, &plan, &order, &CancelFlag::new())
                .await
                .unwrap(),
        )
        .0;
        assert_eq!(got, want, "{order:?}");
    }
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn a_trusted_order_that_breaks_is_reported_never_written() {
    // A plain MergeTree with several unmerged parts: 18.16 reads them in parallel, out of key order.
    let db = fresh_database("src_unordered").await;
    sql(&format!("CREATE TABLE {db}.ohlcv_candles ({CANDLE_COLUMNS}) ENGINE = MergeTree ORDER BY (token_address, chain, timestamp, interval_seconds) SETTINGS index_granularity = 64")).await;
    for part in 0..4 {
        sql(&format!(
            "INSERT INTO {db}.ohlcv_candles SELECT concat('m', toString(number % 50)), 'solana', \
             toDateTime({T0} + intDiv(number, 50) * 60 * 4 + {part} * 60), 60, 1, 2, 3, 4, 5, toDateTime(1700000000) \
             FROM system.numbers LIMIT 20000"
        ))
        .await;
    }
    let src = source(&db, "ohlcv_candles", "default").await.unwrap();
    let plan = plan_mints(
        (0..50)
            .map(|k| (format!("m{k}"), vec![(T0 * 1000, (T0 + 400 * 240) * 1000)]))
            .collect(),
    );
    let sorted = fetch(&src, &plan, &src.order, &CancelFlag::new())
        .await
        .unwrap();
    assert_eq!(lines(&sorted).0.len(), 80_000);
    let mut broke = 0;
    for _ in 0..5 {
        match fetch(&src, &plan, &ReadOrder::Key, &CancelFlag::new()).await {
            Err(e) => {
                assert!(e.is_unordered_answer(), "{e}");
                broke += 1;
            }
            Ok(mints) => assert_eq!(
                lines(&mints).0,
                lines(&sorted).0,
                "an answer that came in order is right"
            ),
        }
    }
    eprintln!("unordered answers: {broke} of 5");
    assert!(broke > 0, "the scenario produces unordered answers");
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn plain_merge_tree_yields_no_duplicates_and_newest_wins() {
    let (db, src) = candle_source("src_mt", "MergeTree", "default").await;
    assert!(!src.schema.supports_final());
    let plan = plan_mints(windows());
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
async fn a_server_that_accepts_and_then_says_nothing_times_out() {
    // A peer that accepts the connection and reads the request, then says nothing: CLICKHOUSE_TIMEOUT after
    // send_receive_timeout, naming the setting to raise (it is busy, not unreachable).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(conn);
    });
    let mut cfg = config("default", "t");
    cfg.port = port;
    cfg.connect_timeout = 1;
    cfg.send_receive_timeout = 2;
    let started = std::time::Instant::now();
    let err = Connection::new(cfg)
        .unwrap()
        .server_info()
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), ErrorCode::ClickhouseTimeout, "{err}");
    assert!(err.message().contains("send_receive_timeout"), "{err}");
    assert!(
        waited >= std::time::Duration::from_secs(2) && waited < std::time::Duration::from_secs(4),
        "gave up after {waited:?}"
    );
    holder.join().unwrap();
}

#[tokio::test]
async fn a_sorted_read_slower_than_connect_timeout_does_not_matter() {
    // The old query shape (ORDER BY the SHA-1 bucket) made the server sort before its first byte, and that wait
    // was bounded by connect_timeout. Prove the table is big enough for that wait to pass 1 s, then fetch it
    // all with connect_timeout = 1.
    let db = fresh_database("src_big").await;
    sql(&format!("CREATE TABLE {db}.ohlcv_candles ({CANDLE_COLUMNS}) ENGINE = ReplacingMergeTree(ingested_at) ORDER BY (token_address, chain, timestamp, interval_seconds)")).await;
    sql(&format!(
        "INSERT INTO {db}.ohlcv_candles SELECT concat('mint', toString(number % 1000)), 'solana', \
         toDateTime({T0} + intDiv(number, 1000) * 60), 60, number, number, number, number, number, toDateTime(1700000000) \
         FROM system.numbers LIMIT 3000000"
    ))
    .await;
    let old_shape = format!(
        "SELECT token_address, toUInt32(timestamp), open, high, low, close, volume FROM {db}.ohlcv_candles FINAL \
         WHERE chain = 'solana' AND interval_seconds = 60 ORDER BY substring(SHA1(token_address), 1, 1), token_address, timestamp"
    );
    let client = clickhouse::Client::default().with_url(clickhouse_url());
    let started = std::time::Instant::now();
    let mut cursor = client.query(&old_shape).fetch_bytes("RowBinary").unwrap();
    let first = cursor.next().await.unwrap();
    let first_byte = started.elapsed();
    assert!(first.is_some());
    drop(cursor);
    assert!(
        first_byte > std::time::Duration::from_secs(1),
        "the sorted read took {first_byte:?} to its first byte; the table is too small to prove the point"
    );
    // One alert per mint whose window spans all of its 3,000 candles, exported with connect_timeout = 1.
    let work = tempfile::tempdir().unwrap();
    let alerts = work.path().join("alerts.csv");
    let mut csv = String::from("mint,ts\n");
    for k in 0..1000 {
        csv.push_str(&format!("mint{k},{}\n", T0 + 2999 * 60));
    }
    std::fs::write(&alerts, csv).unwrap();
    let (host, port) = host_port();
    let settings = lake_core::RunSliceConfig::from_json(serde_json::json!({
        "data_root": work.path().to_str().unwrap(), "run_id": "big", "interval": "1m", "window": "pre2999_post0",
        "alerts_path": alerts.to_str().unwrap(),
        "clickhouse": { "host": host, "port": port, "database": db, "table": "ohlcv_candles", "user": "default",
                        "connect_timeout": 1 },
    }))
    .unwrap()
    .validate()
    .unwrap();
    let result = lake_core::export_run_slices(settings, Default::default())
        .await
        .unwrap();
    assert_eq!(result.slices.rows, 3_000_000);
    assert_eq!(
        result.stats.rows_fetched, 3_000_000,
        "fetch amplification 1"
    );
    // Read back independently of the writer: the parquet crate's reader, every file, every row.
    let mut rows = 0;
    for f in result.manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        if path.starts_with("slices/") {
            let file = std::fs::File::open(result.run_dir.join(path)).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            rows += parquet::file::reader::FileReader::metadata(&reader)
                .file_metadata()
                .num_rows();
        }
    }
    assert_eq!(rows, 3_000_000);
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn fifty_thousand_mints_with_the_default_window_fit_the_default_limits() {
    // Each query stays under max_query_size (256 KiB) and max_ast_elements (50,000) of a server whose settings
    // nobody raised, however many mints the export names.
    let (db, src) = candle_source("src_many", "ReplacingMergeTree(ingested_at)", "default").await;
    let window = |k: i64| {
        (
            T0 * 1000 - 52 * 60_000 + k * 60_000,
            T0 * 1000 + 4949 * 60_000 + k * 60_000,
        )
    };
    let mut per_mint: BTreeMap<String, Vec<(i64, i64)>> = (0..50_000)
        .map(|k| {
            (
                format!("{k:08}AbCdEfGhJkMnPqRsTuVwXyZ123456789ab"),
                vec![window(k % 7)],
            )
        })
        .collect();
    per_mint.insert(MINTS[0].to_owned(), vec![window(0)]);
    let plan = plan_mints(per_mint);
    let mints = fetch(&src, &plan, &src.order, &CancelFlag::new())
        .await
        .unwrap();
    assert_eq!(mints.len(), 50_001);
    let with_rows: Vec<&FetchedMint> = mints.iter().filter(|m| !m.candles.is_empty()).collect();
    assert_eq!(with_rows.len(), 1);
    assert_eq!(with_rows[0].candles.mint, MINTS[0]);
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn a_day_by_range_equals_plain_sql() {
    let (db, src) = candle_source("src_range", "ReplacingMergeTree(ingested_at)", "default").await;
    let (lo, hi) = (T0 * 1000, (T0 + 3 * 3600) * 1000);
    let want = {
        let text = sql(&format!(
            "SELECT count(), uniqExact(token_address) FROM {db}.ohlcv_candles FINAL WHERE chain = 'solana' AND interval_seconds = 60 \
             AND timestamp >= toDateTime({T0}) AND timestamp < toDateTime({})",
            T0 + 3 * 3600
        ))
        .await;
        text.trim().to_owned()
    };
    for order in [src.order.clone(), src.schema.sorted_order()] {
        let (src, by, cancel) = (&src, &order, &CancelFlag::new());
        let mints =
            collected(|tx| async move { src.fetch_range((lo, hi), by, 2, cancel, &tx).await })
                .await
                .unwrap();
        let rows: usize = mints.iter().map(|m| m.candles.len()).sum();
        assert_eq!(format!("{rows}\t{}", mints.len()), want, "{order:?}");
    }
    sql(&format!("DROP DATABASE {db}")).await;
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
    let plan = plan_mints(
        [(
            mint.to_owned(),
            vec![(T0 * 1000, (T0 + 120_000 * 60) * 1000)],
        )]
        .into_iter()
        .collect(),
    );
    let err = fetch(&src, &plan, &src.order, &CancelFlag::new())
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
    let (db, src) = candle_source("src_cancel", "ReplacingMergeTree(ingested_at)", "default").await;
    let cancel = CancelFlag::new();
    cancel.cancel();
    let plan = plan_mints(windows());
    let err = fetch(&src, &plan, &src.order, &cancel).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    sql(&format!("DROP DATABASE {db}")).await;
}

#[tokio::test]
async fn https_gives_the_same_rows_and_fails_cleanly_without_its_ca() {
    let db = fresh_database("src_tls").await;
    candle_table(&db, "ReplacingMergeTree(ingested_at)").await;
    let secure = tls_config(&db, "ohlcv_candles");
    let (src, snapshot) = CandleSource::connect(&secure, "solana", 60, None, &CancelFlag::new())
        .await
        .unwrap();
    let lake_core::SourceSnapshot::ClickHouse { cluster, .. } = snapshot else {
        panic!("a ClickHouse snapshot");
    };
    assert_eq!(
        cluster,
        format!("127.0.0.1:{}", secure.port),
        "no scheme in the manifest"
    );
    let (got, _, _) = fetch_all(&src, &plan_mints(windows())).await.unwrap();
    assert_eq!(got, expected(&db).await);

    // The public CAs do not know the test CA; the plain-HTTP port does not speak TLS; plain HTTP to the TLS port.
    let untrusted = lake_core::ClickHouseConfig {
        ca_cert: None,
        ..secure.clone()
    };
    let http_port = config(&db, "ohlcv_candles").port;
    let cases = [
        (untrusted, ErrorCode::ClickhouseTls, "ca_cert"),
        // A plain HTTP port answers a TLS hello with an HTTP error at once or waits for the rest of a request,
        // depending on the hello's random bytes: either way a TLS error (the wait bounded by the timeout).
        (
            lake_core::ClickHouseConfig {
                port: http_port,
                connect_timeout: 2,
                ..secure.clone()
            },
            ErrorCode::ClickhouseTls,
            "HTTPS",
        ),
        (
            lake_core::ClickHouseConfig {
                secure: false,
                ca_cert: None,
                ..secure.clone()
            },
            ErrorCode::ClickhouseUnreachable,
            "https://",
        ),
    ];
    for (cfg, code, needle) in cases {
        let err = CandleSource::connect(&cfg, "solana", 60, None, &CancelFlag::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.message().contains(needle), "{err}");
    }

    // A port that accepts and never answers the hello: a TLS error naming the port, not an unreachable server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let err = CandleSource::connect(
        &lake_core::ClickHouseConfig {
            port: silent_port,
            connect_timeout: 1,
            ..secure.clone()
        },
        "solana",
        60,
        None,
        &CancelFlag::new(),
    )
    .await
    .unwrap_err();
    holder.abort();
    assert_eq!(err.code(), ErrorCode::ClickhouseTls, "{err}");
    assert!(
        err.message()
            .contains("no TLS handshake came back within 1 s"),
        "{err}"
    );
    sql(&format!("DROP DATABASE {db}")).await;
}
