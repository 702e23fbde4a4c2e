//! Making a directory's entries durable (a rename, a new file) before a later step depends on them.
//!
//! POSIX systems fsync the directory itself. Windows cannot open a directory as a file without special flags
//! and journals NTFS metadata on its own, so there it is a no-op.

use std::io;
use std::path::Path;

/// fsyncs `dir` so that the names in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
