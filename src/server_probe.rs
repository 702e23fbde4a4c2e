//! `probeClickhouse`: reach the server with the export's connection settings and report what it is.

use lake_core::clickhouse_source::{ClickHouseConfig, Connection};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::js_error::run_async;

/// Connection settings, the `clickhouse` block of SPEC §3 (snake_case on the wire).
#[napi(object)]
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
    /// Seconds to wait for the first answer; default 10.
    #[napi(js_name = "connect_timeout")]
    pub connect_timeout: Option<u32>,
    /// Seconds to wait for each piece of a streaming answer; default 300.
    #[napi(js_name = "send_receive_timeout")]
    pub send_receive_timeout: Option<u32>,
}

impl ClickhouseConnection {
    /// Converts to the core's settings, rejecting ports napi let through unchecked.
    pub fn into_core(self) -> lake_core::Result<ClickHouseConfig> {
        let port = u16::try_from(self.port).map_err(|_| {
            lake_core::LakeError::invalid_config(format!(
                "invalid clickhouse.port {}: give a port from 1 to 65535",
                self.port
            ))
        })?;
        Ok(ClickHouseConfig {
            host: self.host,
            port,
            database: self.database,
            table: self.table,
            user: self.user,
            password: self.password.unwrap_or_default(),
            connect_timeout: self.connect_timeout.map_or(10, u64::from),
            send_receive_timeout: self.send_receive_timeout.map_or(300, u64::from),
        })
    }
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
/// Rejects with `CLICKHOUSE_UNREACHABLE`, `CLICKHOUSE_AUTH` or `INVALID_CONFIG`.
#[napi(ts_return_type = "Promise<ClickhouseServerInfo>")]
pub fn probe_clickhouse(
    env: &Env,
    connection: ClickhouseConnection,
) -> napi::Result<PromiseRaw<'_, ClickhouseServerInfo>> {
    run_async(
        env,
        async move {
            Connection::new(connection.into_core()?)?
                .server_info()
                .await
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
