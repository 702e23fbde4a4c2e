//! What the caller can do to a running export: cancel it, and hear how far it is.

use crate::pipeline::progress::ProgressCallback;
use crate::task::cancel::CancelFlag;

/// What the caller can do to a running export.
#[derive(Clone, Default)]
pub struct ExportHooks {
    /// Set to stop the export; it then fails with `CANCELLED` and removes its staging directory.
    pub cancel: CancelFlag,
    /// Receives throttled progress events.
    pub progress: Option<ProgressCallback>,
}
