//! An alert: the token and time around which a run cuts its window.

/// One alert: an id, the token and the alert time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The alert's id, or `<mint>:<ts_ms>` when the input has none.
    pub id: String,
    /// The token address.
    pub mint: String,
    /// Alert time, epoch milliseconds UTC.
    pub ts_ms: i64,
}

/// The longest mint accepted, in bytes (alerts, mint filters, and rows a server sends).
pub const MAX_MINT_BYTES: usize = 1024;
