//! Cooperative cancellation: the caller flips a flag, long loops check it between pieces of work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{ErrorCode, LakeError, Result};

/// A shared cancellation flag; clones see the same flag.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `CANCELLED` once cancelled, so loops can use `?`.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(LakeError::new(
                ErrorCode::Cancelled,
                "the export was cancelled; nothing was published and its staging directory was removed",
            ))
        } else {
            Ok(())
        }
    }
}
