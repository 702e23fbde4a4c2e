//! Reading and writing a file at an offset without a shared cursor, so the spill file can be appended to and
//! read back from by one handle in any order.
//!
//! POSIX has `pread`/`pwrite`; Windows has `seek_read`/`seek_write`, which also move the cursor, harmless
//! because every access here names its offset.

use std::fs::File;
use std::io;

use crate::platform::write_chunk::WRITE_CHUNK;

/// Fills `buf` from `file` at `offset`; an early end of file is `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes all of `buf` into `file` at `offset`, in writes of at most [`WRITE_CHUNK`] bytes.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut at = offset;
        for piece in buf.chunks(WRITE_CHUNK) {
            std::os::unix::fs::FileExt::write_all_at(file, piece, at)?;
            at += piece.len() as u64;
        }
        Ok(())
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            let piece = &buf[..buf.len().min(WRITE_CHUNK)];
            match std::os::windows::fs::FileExt::seek_write(file, piece, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_at_offsets_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap();
        write_all_at(&file, b"world", 5).unwrap();
        write_all_at(&file, b"hello", 0).unwrap();
        let mut out = [0u8; 10];
        read_exact_at(&file, &mut out, 0).unwrap();
        assert_eq!(&out, b"helloworld");
        let mut past = [0u8; 4];
        let err = read_exact_at(&file, &mut past, 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
