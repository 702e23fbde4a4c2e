//! Shared helpers of the integration tests: the ClickHouse server that scripts/test.sh starts.

use lake_core::ClickHouseConfig;

/// The test server's URL, or a panic naming the script that starts it.
pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| {
        panic!(
            "CLICKHOUSE_URL is not set: run `npm test` (scripts/test.sh starts ClickHouse), or \
             `eval \"$(bash scripts/clickhouse-server.sh start)\"` before `cargo test`"
        )
    })
}

/// Host and port of the test server.
pub fn host_port() -> (String, u16) {
    let url = clickhouse_url();
    let rest = url.trim_start_matches("http://");
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .expect("url has a port");
    (host.to_owned(), port.parse().expect("numeric port"))
}

/// Settings for the test server as `default`.
pub fn config(database: &str, table: &str) -> ClickHouseConfig {
    let (host, port) = host_port();
    ClickHouseConfig {
        host,
        port,
        database: database.to_owned(),
        table: table.to_owned(),
        user: "default".to_owned(),
        password: String::new(),
        connect_timeout: 10,
        send_receive_timeout: 60,
        secure: false,
        ca_cert: None,
        // Fail at once: these tests look at what each failure is; retries are tested through the addon.
        retries: 0,
        retry_max_wait: 0,
    }
}

/// Settings for the test server's HTTPS port (its certificate is signed by the CA at `CLICKHOUSE_TEST_CA`),
/// trusting that CA.
pub fn tls_config(database: &str, table: &str) -> ClickHouseConfig {
    let url = std::env::var("CLICKHOUSE_HTTPS_URL")
        .expect("CLICKHOUSE_HTTPS_URL is set by scripts/clickhouse-server.sh start");
    let port = url.rsplit_once(':').expect("url has a port").1;
    ClickHouseConfig {
        port: port.trim_end_matches('/').parse().expect("numeric port"),
        secure: true,
        ca_cert: Some(std::env::var("CLICKHOUSE_TEST_CA").expect("CLICKHOUSE_TEST_CA is set")),
        ..config(database, table)
    }
}

/// Runs SQL as `default` through plain HTTP (not through the code under test) and returns the body.
pub async fn sql(query: &str) -> String {
    let client = clickhouse::Client::default().with_url(clickhouse_url());
    let mut cursor = client
        .query(query)
        .fetch_bytes("TabSeparated")
        .expect("query starts");
    let bytes = cursor
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    String::from_utf8(bytes.to_vec()).expect("utf8")
}

/// A single-quoted SQL string literal, escaped independently of the code under test.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A fresh database name for one test.
pub async fn fresh_database(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("{prefix}_{}_{nanos}", std::process::id());
    sql(&format!("CREATE DATABASE {name}")).await;
    name
}

/// The QuantBot table shape.
pub const CANDLE_COLUMNS: &str =
    "token_address String, chain String, timestamp DateTime, interval_seconds UInt32, \
     open Float64, high Float64, low Float64, close Float64, volume Float64, ingested_at DateTime";
