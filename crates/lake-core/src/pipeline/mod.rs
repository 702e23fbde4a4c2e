//! What both exports run on: the fetch driven into a sink on a blocking thread, the part sink that writes what a
//! filter keeps, progress and the caller's hooks.

pub(crate) mod hooks;
pub(crate) mod part_sink;
pub(crate) mod progress;
pub(crate) mod sink;
