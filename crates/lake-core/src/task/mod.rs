//! How long work runs: blocking work moved off the async workers, and cooperative cancellation that every
//! long loop checks. Below everything that reads or writes candles.

pub(crate) mod blocking;
pub(crate) mod cancel;
pub(crate) mod retry;
