//! Starting a file's writeback early, so that many files closed in a row reach the disk in parallel instead of
//! one fsync round trip each.
//!
//! Linux only (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, in glibc and musl): a hint, never a guarantee; the
//! caller still fsyncs. Other platforms skip it and pay for the fsync alone.

use std::fs::File;

/// Asks the kernel to start writing `file`'s dirty pages back without waiting for them.
pub(crate) fn start_writeback(file: &File) {
    imp::start_writeback(file);
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::unix::io::AsRawFd;

    pub(super) fn start_writeback(file: &File) {
        // SAFETY: sync_file_range on a descriptor we own; it only schedules writeback of that file's pages.
        // A failure only means no head start: the fsync that follows reports real errors.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn start_writeback(_file: &std::fs::File) {}
}
