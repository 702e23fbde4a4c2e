//! Swapping two paths in one atomic step: how an overwrite replaces a sealed directory without a moment where
//! a reader sees neither or a mix.
//!
//! Linux has `renameat2(RENAME_EXCHANGE)` (kernel 3.15+; ext4, XFS, btrfs, tmpfs, …), called as a raw system
//! call because glibc only wraps it from 2.28 on and the shipped binary targets glibc 2.17 (musl wraps it not
//! at all). macOS has `renamex_np(RENAME_SWAP)` (APFS, HFS+). Elsewhere, and on file systems that refuse, the
//! call fails with `Unsupported` or the file system's own error and the caller falls back.

use std::io;
use std::path::Path;

/// Swaps `a` and `b` (both must exist) atomically, or fails without changing either.
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    if crate::failpoint::disabled("rename_exchange") {
        return Err(io::ErrorKind::Unsupported.into());
    }
    imp::exchange(a, b)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub(super) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
        let a = CString::new(a.as_os_str().as_bytes())?;
        let b = CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths; the kernel reads them and touches no other memory.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(target_vendor = "apple")]
mod imp {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub(super) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
        let a = CString::new(a.as_os_str().as_bytes())?;
        let b = CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths; renamex_np reads them and touches no other memory.
        let rc = unsafe { libc::renamex_np(a.as_ptr(), b.as_ptr(), libc::RENAME_SWAP) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
mod imp {
    use std::io;
    use std::path::Path;

    pub(super) fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_os = "linux", target_vendor = "apple"))]
    #[test]
    fn swaps_two_directories() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("from_a"), "1").unwrap();
        std::fs::write(b.join("from_b"), "2").unwrap();
        exchange(&a, &b).unwrap();
        assert!(a.join("from_b").exists() && b.join("from_a").exists());
        assert!(!a.join("from_a").exists() && !b.join("from_b").exists());
    }

    #[test]
    fn fails_without_touching_either_path_when_one_is_missing() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        std::fs::create_dir(&a).unwrap();
        assert!(exchange(&a, &root.path().join("missing")).is_err());
        assert!(a.is_dir());
    }
}
