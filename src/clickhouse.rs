//! `probeClickhouse`: reach the server with the export's connection settings and report what it is.

use lake_core::{parse_config, ClickHouseConfig, Connection};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_async;

/// Connection settings: the `clickhouse` block of both export configs (snake_case on the wire). Defaults and
/// ranges: `configFacts()`.
// Only its TypeScript declaration is used: the core reads the config with serde, so defaults and checks live
// in one place.
#[napi(object, object_from_js = false)]
pub struct ClickhouseConnection {
    /// Host name or IP address.
    pub host: String,
    /// HTTP port.
    pub port: u32,
    /// Database of the candle table.
    pub database: String,
    /// Candle table.
    pub table: String,
    /// User name.
    pub user: String,
    /// Password (never logged or written anywhere); default empty.
    pub password: Option<String>,
    /// Seconds allowed to set up a connection.
    #[napi(js_name = "connect_timeout")]
    pub connect_timeout: Option<u32>,
    /// Seconds allowed for every wait for bytes of an answer, the first byte included.
    #[napi(js_name = "send_receive_timeout")]
    pub send_receive_timeout: Option<u32>,
    /// Retries of one request after a transient failure (a lost connection, a restarting or busy server, a
    /// gateway error); 0 fails at once. Default 5.
    pub retries: Option<u32>,
    /// Seconds one request may spend waiting between its retries. Default 120.
    #[napi(js_name = "retry_max_wait")]
    pub retry_max_wait: Option<u32>,
    /// Speak HTTPS (TLS) instead of plain HTTP; default false.
    pub secure: Option<bool>,
    /// With `secure`: a PEM file of the certificates to trust instead of the public CAs (for a self-signed
    /// server), like `curl --cacert`.
    #[napi(js_name = "ca_cert")]
    pub ca_cert: Option<String>,
}

/// What the server reported about itself.
#[napi(object)]
pub struct ClickhouseServerInfo {
    /// Server version, e.g. `18.16.1`.
    pub version: String,
    /// Server time zone.
    pub timezone: String,
    /// Server clock in epoch seconds.
    pub now_epoch_s: f64,
}

/// Connects with the given settings and returns the server's version, time zone and clock.
/// Rejects with `CLICKHOUSE_UNREACHABLE`, `CLICKHOUSE_TLS`, `CLICKHOUSE_AUTH`, `CLICKHOUSE_TIMEOUT` or `INVALID_CONFIG`.
#[napi(
    ts_args_type = "connection: ClickhouseConnection",
    ts_return_type = "Promise<ClickhouseServerInfo>"
)]
pub fn probe_clickhouse(
    env: &Env,
    connection: serde_json::Value,
) -> napi::Result<PromiseRaw<'_, ClickhouseServerInfo>> {
    run_async(
        env,
        async move {
            let config: ClickHouseConfig = parse_config(connection, "clickhouse")?;
            Connection::new(config)?.server_info().await
        },
        |info| {
            Ok(ClickhouseServerInfo {
                version: info.version,
                timezone: info.timezone,
                now_epoch_s: info.now_epoch_s as f64,
            })
        },
    )
}
