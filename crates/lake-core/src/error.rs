//! The one error type of the lake: a stable machine-readable code plus a message that says what to do.

use std::fmt;

/// Stable error codes (docs/lake-format.md, "Errors"). The addon exposes `as_str()` as the JavaScript `err.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The configuration (or a helper argument) is invalid.
    InvalidConfig,
    /// The alerts file is missing, unreadable or has bad rows.
    InvalidAlerts,
    /// ClickHouse could not be reached: refused, unresolvable, or no connection within `connect_timeout`.
    ClickhouseUnreachable,
    /// ClickHouse accepted the connection but sent nothing for `send_receive_timeout`.
    ClickhouseTimeout,
    /// The TLS handshake with an `https://` server failed (untrusted, expired or misnamed certificate; not TLS).
    ClickhouseTls,
    /// ClickHouse refused the credentials.
    ClickhouseAuth,
    /// ClickHouse rejected or failed a query.
    ClickhouseQuery,
    /// The ClickHouse table does not have the expected shape.
    ClickhouseSchema,
    /// A file system operation failed.
    Io,
    /// The run already exists and overwrite was not asked for.
    RunExists,
    /// Another export holds the lock of the same run.
    RunLocked,
    /// A run asked for a fresh corpus (`require_fresh`) and a day it needs is stale or cannot be shown fresh.
    CorpusStale,
    /// The object store refused the credentials (missing, wrong or not allowed to use the bucket).
    ObjectStoreAuth,
    /// The object store's endpoint could not be reached.
    ObjectStoreUnreachable,
    /// The object store failed a request for another reason (no such bucket, a conditional write it does
    /// not support, a server error).
    ObjectStore,
    /// The caller aborted the export.
    Cancelled,
    /// A bug: an invariant broke or a panic was caught.
    Internal,
    /// No binary of the addon for this platform is installed (or it did not load). Raised by the package's
    /// JavaScript loader (`native.js`), never by the core: listed here so that the codes have one list.
    AddonNotFound,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidAlerts,
        ErrorCode::ClickhouseUnreachable,
        ErrorCode::ClickhouseTimeout,
        ErrorCode::ClickhouseTls,
        ErrorCode::ClickhouseAuth,
        ErrorCode::ClickhouseQuery,
        ErrorCode::ClickhouseSchema,
        ErrorCode::Io,
        ErrorCode::RunExists,
        ErrorCode::RunLocked,
        ErrorCode::CorpusStale,
        ErrorCode::ObjectStoreAuth,
        ErrorCode::ObjectStoreUnreachable,
        ErrorCode::ObjectStore,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
        ErrorCode::AddonNotFound,
    ];

    /// The wire form of the code, e.g. `INVALID_CONFIG`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::InvalidAlerts => "INVALID_ALERTS",
            ErrorCode::ClickhouseUnreachable => "CLICKHOUSE_UNREACHABLE",
            ErrorCode::ClickhouseTimeout => "CLICKHOUSE_TIMEOUT",
            ErrorCode::ClickhouseTls => "CLICKHOUSE_TLS",
            ErrorCode::ClickhouseAuth => "CLICKHOUSE_AUTH",
            ErrorCode::ClickhouseQuery => "CLICKHOUSE_QUERY",
            ErrorCode::ClickhouseSchema => "CLICKHOUSE_SCHEMA",
            ErrorCode::Io => "IO",
            ErrorCode::RunExists => "RUN_EXISTS",
            ErrorCode::RunLocked => "RUN_LOCKED",
            ErrorCode::CorpusStale => "CORPUS_STALE",
            ErrorCode::ObjectStoreAuth => "OBJECT_STORE_AUTH",
            ErrorCode::ObjectStoreUnreachable => "OBJECT_STORE_UNREACHABLE",
            ErrorCode::ObjectStore => "OBJECT_STORE",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::AddonNotFound => "ADDON_NOT_FOUND",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the lake: what went wrong and what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeError {
    code: ErrorCode,
    message: String,
    unordered: bool,
    transient: Option<Transient>,
}

/// Why a failure may pass when the same request is made again (docs/lake-format.md, "Retries").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// No connection could be set up (refused, or not accepted in time): the server is down or restarting.
    Unreachable,
    /// The connection broke after the request went out, before the answer was whole.
    ConnectionLost,
    /// The server accepted the query and then sent nothing for `send_receive_timeout`.
    Silent,
    /// The server answered "try again": too many queries, no free thread, a query cancelled by a shutdown.
    Busy,
    /// A proxy or load balancer in front of the server answered 502, 503 or 504.
    Gateway,
}

impl Transient {
    /// The wire form, e.g. `connection_lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::ConnectionLost => "connection_lost",
            Self::Silent => "timeout",
            Self::Busy => "server_busy",
            Self::Gateway => "gateway",
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

impl LakeError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            unordered: false,
            transient: None,
        }
    }

    /// A failure that the same request may not meet again (a lost connection, a busy or restarting server):
    /// the ClickHouse retry policy asks again within its budget (`source::clickhouse::retry`).
    pub fn transient(kind: Transient, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            transient: Some(kind),
            ..Self::new(code, message)
        }
    }

    /// Why asking again may help, for [`LakeError::transient`] errors.
    pub fn transient_kind(&self) -> Option<Transient> {
        self.transient
    }

    /// A server trusted to send its key order without `ORDER BY` did not: the fetch must be redone sorted.
    /// Never reaches a caller as such; if it does, it reads as the query failure it is.
    pub fn unordered_answer(message: impl Into<String>) -> Self {
        Self {
            unordered: true,
            ..Self::new(ErrorCode::ClickhouseQuery, message)
        }
    }

    /// True for [`LakeError::unordered_answer`].
    pub fn is_unordered_answer(&self) -> bool {
        self.unordered
    }

    /// `INVALID_CONFIG` with a message.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message)
    }

    /// `INVALID_ALERTS` with a message.
    pub fn invalid_alerts(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidAlerts, message)
    }

    /// `INTERNAL` with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// `IO` naming the path and the operation that failed.
    pub fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::new(
            ErrorCode::Io,
            format!(
                "{what} {}: {err}; check that the path exists, is writable and the disk has space",
                path.display()
            ),
        )
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for LakeError {}
