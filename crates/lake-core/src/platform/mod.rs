//! What the operating system offers beyond `std`, one seam per capability, so the rest of the core never
//! names a platform.
//!
//! Each seam has a Linux, a macOS and a portable form. Only [`exchange`] carries a guarantee (the atomic swap
//! behind "old run or new run, never a mix"); where it is missing, publishing falls back to set-aside-and-rename
//! (`lake::publish`). The others are optimisations that a platform without them skips. Which platform gets which
//! form is in `docs/lake-format.md`, "Platforms".

pub(crate) mod dir_sync;
pub(crate) mod exchange;
pub(crate) mod heap;
pub(crate) mod positioned_io;
pub(crate) mod process_identity;
pub(crate) mod write_chunk;
pub(crate) mod writeback;
