//! Connection settings (`clickhouse.*`, docs/lake-format.md "Run config") and the HTTP client built from them.

use std::time::Duration;

use serde::Deserialize;

use super::http_client::http_client;
use super::native::DecodeError;
use super::server_error::{client_error, exception_error};
use super::tls;
use crate::config::facts::{defaults, FACTS};
use crate::error::{ErrorCode, LakeError, Result, Transient};
use crate::task::cancel::CancelFlag;
use crate::task::retry::{Retrier, RetryObserver, RetryPolicy};

/// How to reach the candle table over ClickHouse's HTTP interface.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// Host name or IP address of the server.
    pub host: String,
    /// HTTP port (8123 by default in the CLI).
    pub port: u16,
    /// Database holding the candle table.
    pub database: String,
    /// The candle table.
    pub table: String,
    /// User name.
    pub user: String,
    /// Password; never written to any output, log or error message.
    #[serde(default)]
    pub password: String,
    /// Seconds allowed to set up a connection (TCP, and TLS when used).
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: u64,
    /// Seconds allowed for every wait for bytes of an answer, the first byte included.
    #[serde(default = "defaults::send_receive_timeout")]
    pub send_receive_timeout: u64,
    /// Speak HTTPS (TLS) instead of plain HTTP.
    #[serde(default)]
    pub secure: bool,
    /// With `secure`: a PEM file of the certificates to trust instead of the public CAs (a self-signed server).
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// Retries of one request after a transient failure (docs/lake-format.md, "Retries"); 0 fails at once.
    #[serde(default = "defaults::retries")]
    pub retries: u64,
    /// Seconds one request may spend waiting between its attempts.
    #[serde(default = "defaults::retry_max_wait")]
    pub retry_max_wait: u64,
}

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `version()`, e.g. `18.16.1`.
    pub version: String,
    /// The server's time zone.
    pub timezone: String,
    /// The server's clock, epoch seconds (used as the snapshot's `as_of`).
    pub now_epoch_s: i64,
}

impl ServerInfo {
    /// The major version (`18` of `18.16.1`); 0 when the server names its version oddly.
    pub fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Checks a database or table name; they are quoted too, but validation gives a clear error early.
pub fn validate_identifier(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    if ok_first && name.len() <= 255 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(LakeError::invalid_config(format!(
            "invalid clickhouse.{kind} {name:?}: use letters, digits and underscores, starting with a letter or underscore"
        )))
    }
}

/// Backtick-quotes an identifier that [`validate_identifier`] accepted.
pub fn quote_identifier(name: &str) -> String {
    format!("`{name}`")
}

/// A validated connection: the HTTP client plus what error messages need.
#[derive(Clone)]
pub struct Connection {
    client: ::clickhouse::Client,
    config: ClickHouseConfig,
    endpoint: String,
    retrier: Retrier,
    cancel: CancelFlag,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("database", &self.config.database)
            .field("table", &self.config.table)
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Validates the settings and builds the client; no network traffic yet.
    pub fn new(config: ClickHouseConfig) -> Result<Self> {
        let host = config.host.trim();
        if host.is_empty()
            || host.len() > 253
            || !host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            })
        {
            return Err(LakeError::invalid_config(format!(
                "invalid clickhouse.host {:?}: give a host name or IP address without scheme, port or path",
                config.host
            )));
        }
        if config.port == 0 {
            return Err(LakeError::invalid_config(
                "invalid clickhouse.port 0: give the server's HTTP port, usually 8123 (8443 for HTTPS)",
            ));
        }
        validate_identifier("database", &config.database)?;
        validate_identifier("table", &config.table)?;
        if config.user.is_empty() {
            return Err(LakeError::invalid_config(
                "clickhouse.user is empty: give a user name, e.g. \"default\"",
            ));
        }
        FACTS
            .connect_timeout
            .check("clickhouse.connect_timeout", config.connect_timeout)?;
        FACTS.send_receive_timeout.check(
            "clickhouse.send_receive_timeout",
            config.send_receive_timeout,
        )?;
        let retries = FACTS.retries.check("clickhouse.retries", config.retries)?;
        let max_wait = FACTS
            .retry_max_wait
            .check("clickhouse.retry_max_wait", config.retry_max_wait)?;
        let retrier = Retrier::new(RetryPolicy {
            block: "clickhouse",
            retries: retries as u32,
            max_wait: Duration::from_secs(max_wait),
        });
        let host_part = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        if config.ca_cert.is_some() && !config.secure {
            return Err(LakeError::invalid_config(
                "clickhouse.ca_cert is set but clickhouse.secure is not: a CA file only matters over HTTPS (https://)",
            ));
        }
        let tls = match config.secure {
            true => Some(tls::client_config(config.ca_cert.as_deref())?),
            false => None,
        };
        let scheme = if config.secure { "https" } else { "http" };
        let endpoint = format!("{scheme}://{host_part}:{}", config.port);
        let client = http_client(Duration::from_secs(config.connect_timeout), tls)
            .with_url(endpoint.clone())
            .with_database(config.database.clone())
            .with_user(config.user.clone())
            .with_password(config.password.clone())
            // 18.16 knows neither RowBinaryWithNamesAndTypes nor the settings newer clients send for validation.
            .with_validation(false);
        Ok(Self {
            client,
            config,
            endpoint,
            retrier,
            cancel: CancelFlag::new(),
        })
    }

    /// The same connection working for one export: every retry is reported to `observer` (its progress), and
    /// `cancel` ends the waits between attempts of the requests that take no flag of their own.
    pub fn for_export(mut self, observer: Option<RetryObserver>, cancel: CancelFlag) -> Self {
        self.retrier = self.retrier.observed(observer);
        self.cancel = cancel;
        self
    }

    /// The retry policy of this connection and its clones, with their count of retries.
    pub fn retrier(&self) -> &Retrier {
        &self.retrier
    }

    /// The settings this connection was built from.
    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// `http://host:port` or `https://host:port`, for messages (never carries credentials).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `` `database`.`table` ``, quoted for SQL.
    pub fn quoted_table(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.config.database),
            quote_identifier(&self.config.table)
        )
    }

    /// The underlying client, for building queries with client-side value binding.
    pub fn client(&self) -> &::clickhouse::Client {
        &self.client
    }

    /// The time allowed for each wait for bytes of an answer.
    pub fn receive_timeout(&self) -> Duration {
        Duration::from_secs(self.config.send_receive_timeout)
    }

    /// Maps a client failure to a coded error naming this server.
    pub fn map_client_error(&self, err: &::clickhouse::error::Error) -> LakeError {
        client_error(err, &self.endpoint, &self.config)
    }

    /// A coded error for a server exception text.
    pub fn exception(&self, text: &str) -> LakeError {
        exception_error(text, &self.endpoint, &self.config.password)
    }

    /// The error for a server that accepted the query and then sent nothing for `send_receive_timeout`.
    pub fn timeout_error(&self) -> LakeError {
        LakeError::transient(
            Transient::Silent,
            ErrorCode::ClickhouseTimeout,
            format!(
                "ClickHouse at {} sent nothing for {} s; the server is busy or the query is slow: retry later, \
                 or raise clickhouse.send_receive_timeout",
                self.endpoint, self.config.send_receive_timeout
            ),
        )
    }

    /// Sends a query; its answer is read with [`Connection::next_piece`].
    pub fn cursor(
        &self,
        query: ::clickhouse::query::Query,
        format: &str,
    ) -> Result<::clickhouse::query::BytesCursor> {
        query
            .fetch_bytes(format)
            .map_err(|e| self.map_client_error(&e))
    }

    /// The next piece of an answer, or `None` at its end. Setting up the connection may take
    /// `connect_timeout` (the connector enforces it); every wait for bytes after that, the first included, may
    /// take `send_receive_timeout`. Cancellation is checked before each piece.
    pub async fn next_piece(
        &self,
        cursor: &mut ::clickhouse::query::BytesCursor,
        first: bool,
        cancel: &crate::task::cancel::CancelFlag,
    ) -> Result<Option<bytes::Bytes>> {
        cancel.check()?;
        let mut limit = self.receive_timeout();
        if first {
            limit += Duration::from_secs(self.config.connect_timeout);
        }
        let next = tokio::time::timeout(limit, cursor.next())
            .await
            .map_err(|_| self.timeout_error())?;
        next.map_err(|e| self.map_client_error(&e))
    }

    /// Streams a query's answer in `format`, handing each piece to `sink`.
    pub async fn stream(
        &self,
        query: ::clickhouse::query::Query,
        format: &str,
        cancel: &crate::task::cancel::CancelFlag,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut cursor = self.cursor(query, format)?;
        let mut first = true;
        while let Some(piece) = self.next_piece(&mut cursor, first, cancel).await? {
            first = false;
            sink(&piece)?;
        }
        Ok(())
    }

    /// A whole (small) answer in `format`, asked for again after a transient failure (within the budget).
    pub async fn fetch_all_bytes(
        &self,
        query: ::clickhouse::query::Query,
        format: &str,
    ) -> Result<Vec<u8>> {
        let cancel = &self.cancel;
        let mut attempts = self.retrier.request();
        loop {
            let mut out = Vec::new();
            let answer = self
                .stream(query.clone(), format, cancel, |chunk| {
                    out.extend_from_slice(chunk);
                    Ok(())
                })
                .await;
            match answer {
                Ok(()) => return Ok(out),
                Err(e) => attempts.after(e, cancel).await?,
            }
        }
    }

    /// The error for an answer that carried an exception, was not what was asked for, or broke a trusted order.
    pub fn decode_error(&self, err: DecodeError) -> LakeError {
        match err {
            DecodeError::Exception(text) => self.exception(text.trim_start_matches(['\r', '\n'])),
            DecodeError::Garbled(what) => LakeError::new(
                ErrorCode::ClickhouseQuery,
                format!(
                    "ClickHouse at {} sent an answer that is not what was asked for: {what}; nothing was written. \
                     Check the server log, then retry",
                    self.endpoint
                ),
            ),
            DecodeError::Unordered(what) => LakeError::unordered_answer(format!(
                "ClickHouse at {} sent rows out of key order ({what})",
                self.endpoint
            )),
        }
    }

    /// Runs a small query and returns its TabSeparated text, failing on any server exception.
    pub async fn query_text(&self, query: ::clickhouse::query::Query) -> Result<String> {
        let out = self.fetch_all_bytes(query, "TabSeparated").await?;
        let text = String::from_utf8_lossy(&out).into_owned();
        // 18.16 appends an exception raised mid-result to a 200 answer as plain text.
        if let Some(pos) = text.find("Code: ") {
            if text[pos..].contains("Exception") {
                return Err(self.exception(&text[pos..]));
            }
        }
        Ok(text)
    }

    /// Asks the server for its version, time zone and clock; proves reachability and credentials.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        let text = self
            .query_text(
                self.client
                    .query("SELECT version(), timezone(), toUInt32(now())"),
            )
            .await?;
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        match fields.as_slice() {
            [version, timezone, now] => Ok(ServerInfo {
                version: (*version).to_owned(),
                timezone: (*timezone).to_owned(),
                now_epoch_s: now.parse().map_err(|_| {
                    LakeError::new(
                        ErrorCode::ClickhouseQuery,
                        format!(
                            "unexpected answer from ClickHouse at {}: {text:?}",
                            self.endpoint
                        ),
                    )
                })?,
            }),
            _ => Err(LakeError::new(
                ErrorCode::ClickhouseQuery,
                format!(
                    "unexpected answer from ClickHouse at {}: {text:?}",
                    self.endpoint
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClickHouseConfig {
        ClickHouseConfig {
            host: "127.0.0.1".into(),
            port: 8123,
            database: "quantbot".into(),
            table: "ohlcv_candles".into(),
            user: "default".into(),
            password: String::new(),
            connect_timeout: 10,
            send_receive_timeout: 300,
            secure: false,
            ca_cert: None,
            retries: 5,
            retry_max_wait: 120,
        }
    }

    #[test]
    fn validates_identifiers() {
        for bad in [
            "",
            "1abc",
            "a-b",
            "a`b",
            "a.b",
            "a b",
            "x'; DROP TABLE y; --",
        ] {
            let err = validate_identifier("table", bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{bad}");
        }
        for good in ["ohlcv_candles", "_x", "T1"] {
            validate_identifier("table", good).unwrap();
        }
    }

    #[test]
    fn rejects_bad_settings() {
        type Mutation = fn(&mut ClickHouseConfig);
        let cases: Vec<(Mutation, &str)> = vec![
            (|c| c.host = "http://x".into(), "clickhouse.host"),
            (|c| c.host = String::new(), "clickhouse.host"),
            (|c| c.port = 0, "clickhouse.port"),
            (|c| c.database = "a;b".into(), "clickhouse.database"),
            (|c| c.table = "".into(), "clickhouse.table"),
            (|c| c.user = "".into(), "clickhouse.user"),
            (|c| c.connect_timeout = 0, "clickhouse.connect_timeout"),
            (
                |c| c.send_receive_timeout = 10_000_000,
                "clickhouse.send_receive_timeout",
            ),
            (|c| c.retries = 101, "clickhouse.retries"),
            (|c| c.retry_max_wait = 100_000, "clickhouse.retry_max_wait"),
        ];
        for (mutate, name) in cases {
            let mut c = config();
            mutate(&mut c);
            let err = Connection::new(c).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig);
            assert!(err.message().contains(name), "{err}");
        }
    }

    #[test]
    fn endpoint_has_no_credentials() {
        let mut c = config();
        c.password = "pw".into();
        let conn = Connection::new(c).unwrap();
        assert_eq!(conn.endpoint(), "http://127.0.0.1:8123");
        assert_eq!(conn.quoted_table(), "`quantbot`.`ohlcv_candles`");
        assert!(!format!("{conn:?}").contains("pw"));
    }

    #[test]
    fn defaults_apply_when_deserialising() {
        let c: ClickHouseConfig =
            serde_json::from_str(r#"{"host":"h","port":1,"database":"d","table":"t","user":"u"}"#)
                .unwrap();
        assert_eq!(
            (
                c.password.as_str(),
                c.connect_timeout,
                c.send_receive_timeout
            ),
            ("", 10, 300)
        );
    }
}
