//! Finished Parquet pages of many open column chunks, parked in one temporary file until their row group is
//! written out.
//!
//! Rows reach the lake in mint order, so every bucket file is open at once (up to 256 of them, 8 columns
//! each). Keeping each open column chunk's pages in memory until its row group ends would cost one row group
//! per bucket (gigabytes at scale); so every finished page goes to this file instead, and memory holds only
//! the page each column is filling. Pages are compressed here, by one codec shared by all columns: a zstd
//! context per column (two thousand of them) would cost more memory than the pages themselves. A writer that
//! fills one bucket at a time holds one row group's pages at most, and keeps them in memory
//! ([`PageStore::Memory`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};

use crate::error::Result;
use crate::lake::hashed_file::create_new;
use crate::platform::positioned_io::{read_exact_at, write_all_at};
use crate::platform::write_chunk::WRITE_CHUNK;
use crate::writer::settings::PageCodec;

/// Bytes gathered before one write to the spill file (see [`WRITE_CHUNK`]).
const WRITE_BUFFER: usize = WRITE_CHUNK;

/// Where a bucket writer's finished pages wait until their row group is written out.
#[derive(Debug, Clone, Copy)]
pub enum PageStore<'a> {
    /// A spill file at this path: for writers with every bucket open at once.
    File(&'a Path),
    /// Memory: for writers that fill one bucket at a time, which hold at most one row group's pages. A file
    /// there only cost writing and reading back bytes that were in memory anyway (and on a virtual machine,
    /// page-cache pages touched for the first time are slow: 0.3 GB/s for a fresh file here against 5.8 GB/s
    /// for one whose pages were just freed).
    Memory,
}

/// An append-only temporary file of page bytes (removed when dropped), or the same kept in memory.
pub struct SpillFile {
    /// The file and its path; none when kept in memory, where `buffer` holds everything.
    file: Option<(File, PathBuf)>,
    flushed: u64,
    buffer: Vec<u8>,
}

impl SpillFile {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self> {
        let file = create_new(path, true)?;
        Ok(Self {
            file: Some((file, path.to_owned())),
            flushed: 0,
            buffer: Vec::with_capacity(WRITE_BUFFER),
        })
    }

    /// A spill for `store`.
    pub fn for_store(store: PageStore<'_>) -> Result<Self> {
        match store {
            PageStore::File(path) => Self::create(path),
            PageStore::Memory => Ok(Self {
                file: None,
                flushed: 0,
                buffer: Vec::new(),
            }),
        }
    }

    /// Forgets every byte, keeping the file (emptied) and the buffer's capacity: nothing appended so far is
    /// needed any more.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.buffer.clear();
        if let Some((file, _)) = &self.file {
            if self.flushed > 0 {
                file.set_len(0)?;
            }
        }
        self.flushed = 0;
        Ok(())
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.flushed + self.buffer.len() as u64
    }

    /// Appends `bytes`; returns where they start.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.len();
        if self.buffer.len() + bytes.len() > WRITE_BUFFER {
            self.flush()?;
        }
        match &self.file {
            Some((file, _)) if bytes.len() >= WRITE_BUFFER => {
                write_all_at(file, bytes, self.flushed)?;
                self.flushed += bytes.len() as u64;
            }
            // In memory, the buffer is where everything stays.
            _ => self.buffer.extend_from_slice(bytes),
        }
        Ok(at)
    }

    /// Reads `len` bytes at `at` into `out` (replacing its content, reusing its allocation).
    pub(crate) fn read_into(&mut self, at: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        let end = at + len as u64;
        if at >= self.flushed {
            // Still in the buffer (always, in memory).
            let bytes = usize::try_from(at - self.flushed)
                .ok()
                .zip(usize::try_from(end - self.flushed).ok())
                .and_then(|(from, to)| self.buffer.get(from..to))
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "past the spill's end")
                })?;
            out.extend_from_slice(bytes);
            return Ok(());
        }
        if end > self.flushed {
            self.flush()?;
        }
        let Some((file, _)) = &self.file else {
            return Err(io::Error::other("a spill in memory has nothing flushed"));
        };
        out.resize(len, 0);
        read_exact_at(file, out, at)
    }

    /// Writes the buffer to the file (nothing in memory, where the buffer is everything).
    fn flush(&mut self) -> io::Result<()> {
        if let Some((file, _)) = &self.file {
            write_all_at(file, &self.buffer, self.flushed)?;
            self.flushed += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }

    #[cfg(test)]
    fn read(&mut self, at: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(at, len, &mut out)?;
        Ok(out)
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A spill file shared by the page writers of one writer set (one thread).
pub type SharedSpill = Arc<Mutex<SpillFile>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks already failed the export; the data behind it is only read
    // again by that same failing export, so a poisoned lock is safe to enter.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the pages of one column chunk lie in the spill file, in chunk order.
#[derive(Debug, Default)]
pub struct ChunkPages {
    /// `(offset in the spill file, length)` of each serialised page (header and data).
    pages: Vec<(u64, u32)>,
    /// Bytes of the chunk: the sum of the page lengths.
    len: u64,
}

impl ChunkPages {
    /// Bytes of the chunk so far.
    pub fn len(&self) -> u64 {
        self.len
    }
}

/// The page list a page writer fills and the row-group writer reads back.
pub type SharedChunk = Arc<Mutex<ChunkPages>>;

/// A [`PageWriter`] that compresses each page with the shared codec and appends it to the spill file.
///
/// Offsets it reports are positions inside its own column chunk (as if the chunk were written alone from
/// offset 0), which is what [`parquet::file::writer::SerializedRowGroupWriter::append_column`] expects.
pub struct SpillPageWriter {
    spill: SharedSpill,
    codec: Arc<Mutex<PageCodec>>,
    chunk: SharedChunk,
}

impl SpillPageWriter {
    /// A writer for one column chunk; `chunk` receives its page list.
    pub fn new(spill: SharedSpill, codec: Arc<Mutex<PageCodec>>, chunk: SharedChunk) -> Self {
        Self {
            spill,
            codec,
            chunk,
        }
    }
}

fn compressed(page: &CompressedPage, codec: &mut PageCodec) -> ParquetResult<CompressedPage> {
    let uncompressed_size = page.uncompressed_size();
    let buf = codec
        .compress(page.data())
        .map_err(|e| ParquetError::General(format!("compressing a page: {e}")))?;
    let rebuilt = match page.compressed_page() {
        Page::DataPage {
            num_values,
            encoding,
            def_level_encoding,
            rep_level_encoding,
            statistics,
            ..
        } => Page::DataPage {
            buf,
            num_values: *num_values,
            encoding: *encoding,
            def_level_encoding: *def_level_encoding,
            rep_level_encoding: *rep_level_encoding,
            statistics: statistics.clone(),
        },
        Page::DictionaryPage {
            num_values,
            encoding,
            is_sorted,
            ..
        } => Page::DictionaryPage {
            buf,
            num_values: *num_values,
            encoding: *encoding,
            is_sorted: *is_sorted,
        },
        Page::DataPageV2 { .. } => {
            return Err(ParquetError::General(
                "data page v2 is not written by the lake".into(),
            ))
        }
    };
    Ok(CompressedPage::new(rebuilt, uncompressed_size))
}

/// Appends what it is given to the spill file: lets the page serialiser write straight into it.
struct Appender<'a>(&'a mut SpillFile);

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PageWriter for SpillPageWriter {
    fn write_page(&mut self, page: CompressedPage) -> ParquetResult<PageWriteSpec> {
        let page = compressed(&page, &mut lock(&self.codec))?;
        let mut spill = lock(&self.spill);
        let at = spill.len();
        let mut sink = TrackedWrite::new(Appender(&mut spill));
        let mut spec = SerializedPageWriter::new(&mut sink).write_page(page)?;
        sink.into_inner()?;
        let len = spill.len() - at;
        let mut chunk = lock(&self.chunk);
        spec.offset = chunk.len;
        chunk.pages.push((at, len as u32));
        chunk.len += len;
        Ok(spec)
    }

    fn close(&mut self) -> ParquetResult<()> {
        Ok(())
    }
}

/// One closed column chunk, readable as the contiguous bytes Parquet wants, straight from the spill file.
pub struct SpilledChunk {
    spill: SharedSpill,
    pages: ChunkPages,
}

impl SpilledChunk {
    /// The chunk whose pages `pages` lists.
    pub fn new(spill: SharedSpill, pages: ChunkPages) -> Self {
        Self { spill, pages }
    }

    /// The chunk's bytes from `start` to the end.
    fn bytes_from(&self, start: u64) -> ParquetResult<Vec<u8>> {
        let mut out = Vec::new();
        ChunkRead::new(self, start).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Reads a spilled chunk's pages in order, one page at a time (a chunk can be megabytes).
pub struct ChunkRead {
    spill: SharedSpill,
    pages: std::vec::IntoIter<(u64, u32)>,
    current: io::Cursor<Vec<u8>>,
}

impl ChunkRead {
    fn new(chunk: &SpilledChunk, start: u64) -> Self {
        // Pages (or their tails) from `start` on.
        let mut pos = 0u64;
        let mut pages = Vec::new();
        for &(at, len) in &chunk.pages.pages {
            let end = pos + u64::from(len);
            if end > start {
                let skip = start.saturating_sub(pos);
                pages.push((at + skip, (u64::from(len) - skip) as u32));
            }
            pos = end;
        }
        Self {
            spill: chunk.spill.clone(),
            pages: pages.into_iter(),
            current: io::Cursor::new(Vec::new()),
        }
    }
}

impl Read for ChunkRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some((at, len)) = self.pages.next() else {
                return Ok(0);
            };
            let mut page = std::mem::take(self.current.get_mut());
            lock(&self.spill).read_into(at, len as usize, &mut page)?;
            self.current = io::Cursor::new(page);
        }
    }
}

impl Length for SpilledChunk {
    fn len(&self) -> u64 {
        self.pages.len
    }
}

impl ChunkReader for SpilledChunk {
    type T = ChunkRead;

    fn get_read(&self, start: u64) -> ParquetResult<Self::T> {
        Ok(ChunkRead::new(self, start))
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        let mut all = self.bytes_from(start)?;
        if all.len() < length {
            return Err(ParquetError::EOF(format!(
                "a spilled column chunk holds {} bytes from {start}, {length} asked for",
                all.len()
            )));
        }
        all.truncate(length);
        Ok(Bytes::from(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn appends_read_back_across_the_write_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let mut spill = SpillFile::create(&path).unwrap();
        let small = vec![7u8; 100];
        let big = vec![9u8; WRITE_BUFFER + 10];
        assert_eq!(spill.append(&small).unwrap(), 0);
        assert_eq!(spill.append(&big).unwrap(), 100);
        assert_eq!(spill.append(&small).unwrap(), 100 + big.len() as u64);
        assert_eq!(spill.read(0, 100).unwrap(), small);
        assert_eq!(spill.read(100, big.len()).unwrap(), big);
        assert_eq!(spill.read(100 + big.len() as u64, 100).unwrap(), small);
        drop(spill);
        assert!(!path.exists(), "the spill file is removed with its owner");
    }

    #[test]
    fn a_spill_in_memory_reads_back_and_empties() {
        let mut spill = SpillFile::for_store(PageStore::Memory).unwrap();
        let big = vec![9u8; WRITE_BUFFER + 10];
        assert_eq!(spill.append(b"abc").unwrap(), 0);
        assert_eq!(spill.append(&big).unwrap(), 3);
        assert_eq!(spill.read(3, big.len()).unwrap(), big);
        assert_eq!(spill.read(1, 2).unwrap(), b"bc");
        assert!(spill.read(3, big.len() + 1).is_err());
        spill.clear().unwrap();
        assert_eq!(spill.len(), 0);
        assert_eq!(spill.append(b"xy").unwrap(), 0);
        assert_eq!(spill.read(0, 2).unwrap(), b"xy");
    }

    #[test]
    fn an_emptied_spill_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let mut spill = SpillFile::create(&path).unwrap();
        let big = vec![5u8; WRITE_BUFFER + 10];
        spill.append(&big).unwrap();
        spill.append(b"tail").unwrap();
        spill.clear().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(spill.append(b"new").unwrap(), 0);
        assert_eq!(spill.append(&big).unwrap(), 3);
        assert_eq!(spill.read(0, 3).unwrap(), b"new");
        assert_eq!(spill.read(3, big.len()).unwrap(), big);
    }

    #[test]
    fn a_chunk_reads_as_its_pages_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spill: SharedSpill = Arc::new(Mutex::new(
            SpillFile::create(&dir.path().join("s")).unwrap(),
        ));
        let mut pages = ChunkPages::default();
        for (i, text) in [&b"abc"[..], b"defgh", b"ij"].iter().enumerate() {
            // Interleave foreign bytes, as other columns' pages would be.
            lock(&spill).append(&[b'x'; 5]).unwrap();
            let at = lock(&spill).append(text).unwrap();
            pages.pages.push((at, text.len() as u32));
            pages.len += text.len() as u64;
            assert_eq!(i + 1, pages.pages.len());
        }
        let chunk = SpilledChunk::new(spill, pages);
        assert_eq!(chunk.len(), 10);
        assert_eq!(read_all(chunk.get_read(0).unwrap()), b"abcdefghij");
        assert_eq!(read_all(chunk.get_read(4).unwrap()), b"efghij");
        assert_eq!(chunk.get_bytes(2, 5).unwrap().as_ref(), b"cdefg");
        assert!(chunk.get_bytes(8, 5).is_err());
    }
}
