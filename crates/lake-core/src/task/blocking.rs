//! Running blocking work (Parquet encoding, file I/O) off the async workers.

use crate::error::{LakeError, Result};

/// Runs `f` on tokio's blocking pool; a panic inside becomes an `INTERNAL` error.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LakeError::internal(format!("a worker thread failed: {e}")))?
}
