//! Writing candles into the `mint_bucket=<bb>/part-NNNN.parquet` files of a run or corpus day
//! (docs/lake-format.md, "Candle files").
//!
//! Candles arrive mint by mint in the order the source reads them (the table's key order), so the buckets
//! interleave and every bucket file is open at once. Each bucket keeps only the pages its columns are filling;
//! finished pages wait in one spill file ([`crate::writer::page_spill`]) until their row group is complete, then are
//! copied into the bucket's part file. Memory is therefore flat in the size of the export, and the bytes of a
//! file depend only on the rows of its bucket, never on how buckets interleaved. A writer fed one bucket at a
//! time (a parked corpus day, a refresh's rebuilt buckets) keeps those pages in memory instead: one row group's.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::arrow::ArrowSchemaConverter;
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescPtr;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::hashed_file::{sync_files, HashingWriter, UnsyncedFile};
use crate::lake::layout::{bucket_dir_name, part_file_name};
use crate::lake::manifest::WrittenFile;
use crate::spec::candles::{candle_schema, MintCandles};
use crate::spec::mint_bucket::bucket_name;
use crate::writer::page_spill::{
    ChunkPages, PageStore, SharedChunk, SharedSpill, SpillFile, SpillPageWriter, SpilledChunk,
};
use crate::writer::settings::{
    writer_properties, CompressionKind, FileKind, PageCodec, PAGE_ROWS, ROW_GROUP_ROWS,
};

/// Room kept for the footer when deciding to roll.
const FOOTER_RESERVE: u64 = 64 * 1024;
/// Bytes of one candle row in a file before a bucket has written a page to learn from (measured: ~28).
const FIRST_GUESS_ROW_BYTES: u64 = 32;

/// How part files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSettings {
    /// Codec of the files.
    pub compression: CompressionKind,
    /// Files roll to the next part before they would pass this many bytes.
    pub target_file_bytes: u64,
    /// Value of the `interval_s` column.
    pub interval_s: u32,
}

/// What every bucket of one writer shares: schema, properties, the spill file and the page codec.
struct Shared {
    schema: SchemaDescPtr,
    encode_props: WriterPropertiesPtr,
    file_props: WriterPropertiesPtr,
    compression: CompressionKind,
    spill: SharedSpill,
    codec: Arc<Mutex<PageCodec>>,
}

impl Shared {
    /// Empties the page store when no row group is open: a writer that fills one bucket at a time then holds
    /// one row group's pages at most. Every open group's page writers hold the store, so it is idle exactly
    /// when this is its only holder.
    fn release_pages_if_idle(&self) -> Result<()> {
        if Arc::strong_count(&self.spill) == 1 {
            self.spill
                .lock()
                .map_err(|_| poisoned())?
                .clear()
                .map_err(|e| LakeError::io("cannot empty", Path::new("the page spill"), &e))?;
        }
        Ok(())
    }
}

/// The row group a bucket is filling: one column writer per column, their pages in the spill file.
struct OpenGroup {
    columns: Vec<ColumnWriter<'static>>,
    chunks: Vec<SharedChunk>,
    rows: u64,
}

impl OpenGroup {
    fn new(shared: &Shared) -> Self {
        let mut columns = Vec::with_capacity(shared.schema.num_columns());
        let mut chunks = Vec::with_capacity(shared.schema.num_columns());
        for descr in shared.schema.columns() {
            let chunk = SharedChunk::default();
            let pages =
                SpillPageWriter::new(shared.spill.clone(), shared.codec.clone(), chunk.clone());
            columns.push(get_column_writer(
                descr.clone(),
                shared.encode_props.clone(),
                Box::new(pages),
            ));
            chunks.push(chunk);
        }
        Self {
            columns,
            chunks,
            rows: 0,
        }
    }

    /// Bytes of the finished pages so far.
    fn spilled_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| c.lock().map(|c| c.len()).unwrap_or(0))
            .sum()
    }
}

/// The part file a bucket is writing.
struct OpenPart {
    writer: SerializedFileWriter<HashingWriter>,
    rel_path: String,
    rows: u64,
}

/// One bucket's files.
struct Bucket {
    dir: PathBuf,
    rel_dir: String,
    last_mint: Option<String>,
    group: Option<OpenGroup>,
    part: Option<OpenPart>,
    files: Vec<WrittenFile>,
    /// Finished part files not yet known to be on disk: synced together when the writer finishes.
    unsynced: Vec<UnsyncedFile>,
    /// Bytes per row seen in this bucket's finished pages, for the rolling estimate.
    row_bytes: u64,
}

impl Bucket {
    fn part_bytes(&self) -> u64 {
        self.part
            .as_ref()
            .map_or(0, |p| p.writer.bytes_written() as u64)
    }

    fn group_bytes(&self) -> u64 {
        self.group.as_ref().map_or(0, OpenGroup::spilled_bytes)
    }

    fn rows_in_part(&self) -> u64 {
        self.part.as_ref().map_or(0, |p| p.rows) + self.group.as_ref().map_or(0, |g| g.rows)
    }

    /// Closes the open row group and copies its pages from the spill file into the part file.
    fn close_group(&mut self, shared: &Shared) -> Result<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        if group.rows == 0 {
            return Ok(());
        }
        let mut closed: Vec<(ColumnCloseResult, ChunkPages)> = Vec::new();
        for (column, chunk) in group.columns.into_iter().zip(group.chunks) {
            let mut result = column
                .close()
                .map_err(|e| parquet_error(&self.rel_dir, e))?;
            // The column writers encode without a codec; the spill page writer compressed every page.
            result.metadata = result
                .metadata
                .into_builder()
                .set_compression(shared.compression.codec())
                .build()
                .map_err(|e| parquet_error(&self.rel_dir, e))?;
            let pages = std::mem::take(&mut *chunk.lock().map_err(|_| poisoned())?);
            closed.push((result, pages));
        }
        let written: u64 = closed.iter().map(|(_, p)| p.len()).sum();
        self.row_bytes = written.div_ceil(group.rows).max(1);
        let part = self.open_part(shared)?;
        let mut row_group = part
            .writer
            .next_row_group()
            .map_err(|e| parquet_error(&part.rel_path, e))?;
        for (result, pages) in closed {
            row_group
                .append_column(&SpilledChunk::new(shared.spill.clone(), pages), result)
                .map_err(|e| parquet_error(&part.rel_path, e))?;
        }
        row_group
            .close()
            .map_err(|e| parquet_error(&part.rel_path, e))?;
        part.rows += group.rows;
        Ok(())
    }

    fn open_part(&mut self, shared: &Shared) -> Result<&mut OpenPart> {
        if self.part.is_none() {
            if self.files.is_empty() {
                // Not create_dir_all: if the export was abandoned and its staging removed, this fails instead
                // of growing a stray directory tree.
                match std::fs::create_dir(&self.dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(LakeError::io("cannot create directory", &self.dir, &e)),
                }
            }
            let name = part_file_name(self.files.len());
            let sink = HashingWriter::create(&self.dir.join(&name))?;
            let rel_path = format!("{}/{name}", self.rel_dir);
            let writer = SerializedFileWriter::new(
                sink,
                shared.schema.root_schema_ptr(),
                shared.file_props.clone(),
            )
            .map_err(|e| parquet_error(&rel_path, e))?;
            self.part = Some(OpenPart {
                writer,
                rel_path,
                rows: 0,
            });
        }
        self.part
            .as_mut()
            .ok_or_else(|| LakeError::internal("a part file did not open"))
    }

    /// Closes the row group and the part file: footer, fsync, hash.
    fn close_part(&mut self, shared: &Shared) -> Result<()> {
        self.close_group(shared)?;
        let Some(part) = self.part.take() else {
            return Ok(());
        };
        let sink = part
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&part.rel_path, e))?;
        let (unsynced, digest) = sink.finish_unsynced()?;
        self.unsynced.push(unsynced);
        self.files.push(WrittenFile {
            rel_path: part.rel_path,
            rows: part.rows,
            bytes: digest.bytes,
            sha256: digest.sha256,
        });
        Ok(())
    }
}

/// Column values of one batch, reused from batch to batch.
#[derive(Default)]
struct Scratch {
    mints: MintValues,
    ts_us: Vec<i64>,
    interval: Vec<i32>,
}

/// The `mint` column's values: one mint repeated once per row, as the column writer takes them.
///
/// Every row's value shares one buffer. Cloning a `ByteArray` per row costs an atomic increment, and dropping it a
/// decrement: measured on the writer benchmark, a tenth of the writer's CPU. The repeated values are bitwise
/// copies of `value` instead, which are never dropped and so hold no count of their own.
#[derive(Default)]
struct MintValues {
    /// Owns the shared buffer. Replaced only after `copies` is emptied.
    value: Option<ByteArray>,
    /// Bitwise copies of `value`. `ManuallyDrop`: clearing them releases nothing.
    copies: Vec<ManuallyDrop<ByteArray>>,
}

impl MintValues {
    /// `mint` repeated `n` times.
    fn repeated(&mut self, mint: &str, n: usize) -> &[ByteArray] {
        if self.value.as_ref().map(ByteArray::data) != Some(mint.as_bytes()) {
            self.copies.clear();
            // An owner-backed buffer: its clones count on the owner and never change the value they are cloned
            // from (a vector-backed one moves its buffer to a shared one on the first clone, through the value
            // cloned), so a clone made from any copy is an ordinary counted clone of `value`.
            self.value = Some(ByteArray::from(Bytes::from_owner(mint.as_bytes().to_vec())));
        }
        let value = self.value.as_ref().expect("set above");
        while self.copies.len() < n {
            // SAFETY: the copy is only read through shared references (the column writer gets `&[ByteArray]`,
            // reads bytes and clones values it keeps), it never outlives `value` (cleared before `value` is
            // replaced; `value` drops first and the copies drop as nothing), and it is never dropped, so the
            // buffer's count is `value`'s plus the writer's own clones.
            self.copies
                .push(ManuallyDrop::new(unsafe { std::ptr::read(value) }));
        }
        // SAFETY: `ManuallyDrop<T>` is `repr(transparent)` over `T`, and `n <= len`.
        unsafe { std::slice::from_raw_parts(self.copies.as_ptr().cast::<ByteArray>(), n) }
    }
}

/// Writes the candles of every bucket of one run (or corpus day) under one directory.
pub struct BucketWriter {
    root: PathBuf,
    rel_root: String,
    settings: PartSettings,
    interval_s: i32,
    shared: Shared,
    buckets: Vec<Option<Bucket>>,
    scratch: Scratch,
}

impl BucketWriter {
    /// A writer for the buckets under `root` (which must exist), whose path relative to the run or day root is
    /// `rel_root` (empty for the root itself). Finished pages wait in `pages` (a new file, or memory).
    pub fn new(
        root: &Path,
        rel_root: &str,
        settings: PartSettings,
        pages: PageStore<'_>,
    ) -> Result<Self> {
        crate::platform::heap::limit_heaps();
        let interval_s = i32::try_from(settings.interval_s)
            .map_err(|_| LakeError::internal("interval does not fit in int32"))?;
        let schema = ArrowSchemaConverter::new()
            .convert(&candle_schema())
            .map_err(|e| LakeError::internal(format!("the candle schema: {e}")))?;
        let shared = Shared {
            schema: Arc::new(schema),
            encode_props: Arc::new(writer_properties(FileKind::Candles, CompressionKind::None)),
            file_props: Arc::new(writer_properties(FileKind::Candles, settings.compression)),
            compression: settings.compression,
            spill: Arc::new(Mutex::new(SpillFile::for_store(pages)?)),
            codec: Arc::new(Mutex::new(PageCodec::new(settings.compression)?)),
        };
        Ok(Self {
            root: root.to_owned(),
            rel_root: rel_root.to_owned(),
            settings,
            interval_s,
            shared,
            buckets: (0..256).map(|_| None).collect(),
            scratch: Scratch::default(),
        })
    }

    /// Appends a mint's candles to its bucket; within a bucket, mints must come in strictly increasing order.
    pub fn write(&mut self, bucket: u8, candles: &MintCandles) -> Result<()> {
        if candles.is_empty() {
            return Ok(());
        }
        let slot = &mut self.buckets[usize::from(bucket)];
        let b = slot.get_or_insert_with(|| {
            let name = bucket_dir_name(bucket);
            Bucket {
                dir: self.root.join(&name),
                rel_dir: if self.rel_root.is_empty() {
                    name
                } else {
                    format!("{}/{name}", self.rel_root)
                },
                last_mint: None,
                group: None,
                part: None,
                files: Vec::new(),
                unsynced: Vec::new(),
                row_bytes: FIRST_GUESS_ROW_BYTES,
            }
        });
        if let Some(last) = &b.last_mint {
            if last.as_str() >= candles.mint.as_str() {
                return Err(LakeError::internal(format!(
                    "mints reached bucket {} out of order: {last:?} then {:?}",
                    bucket_name(bucket),
                    candles.mint
                )));
            }
        }
        b.last_mint = Some(candles.mint.clone());
        let mut start = 0;
        while start < candles.len() {
            let in_group = b.group.as_ref().map_or(0, |g| g.rows as usize);
            // Each call ends where its page does: Parquet closes a page only at the end of a mini-batch (1,024
            // values from the start of a call), so a call across the boundary would make a longer page.
            let page_room = PAGE_ROWS - in_group % PAGE_ROWS;
            let end = (start + page_room.min(ROW_GROUP_ROWS - in_group)).min(candles.len());
            let n = (end - start) as u64;
            let target = self.settings.target_file_bytes;
            if b.rows_in_part() > 0
                && b.part_bytes() + b.group_bytes() + n * b.row_bytes + FOOTER_RESERVE > target
            {
                b.close_part(&self.shared)?;
            }
            let group = b.group.get_or_insert_with(|| OpenGroup::new(&self.shared));
            write_batch(
                group,
                &mut self.scratch,
                candles,
                start..end,
                self.interval_s,
            )
            .map_err(|e| parquet_error(&b.rel_dir, e))?;
            group.rows += n;
            // Small targets: end the row group early so the size estimate rests on real compressed bytes.
            if group.rows >= ROW_GROUP_ROWS as u64 || group.spilled_bytes() >= target / 4 {
                b.close_group(&self.shared)?;
                self.shared.release_pages_if_idle()?;
                // A full row group frees one bucket's page buffers while the other buckets keep growing theirs:
                // hand the freed pages back, or the heap fragments. Not at the end, where every bucket closes and
                // trimming 256 times would cost more than it saves.
                crate::platform::heap::release_free_heap();
            }
            start = end;
        }
        Ok(())
    }

    /// Closes one bucket's files now (no more of its mints will come), releasing what it held.
    pub fn close_bucket(&mut self, bucket: u8) -> Result<()> {
        if let Some(b) = self.buckets[usize::from(bucket)].as_mut() {
            b.close_part(&self.shared)?;
            // Drop the bucket's writers and buffers, keeping its files for `finish`.
            b.group = None;
        }
        self.shared.release_pages_if_idle()
    }

    /// Closes every bucket's files; returns them sorted by path.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        let mut files = Vec::new();
        let mut unsynced = Vec::new();
        for bucket in self.buckets.iter_mut().flatten() {
            bucket.close_part(&self.shared)?;
            files.append(&mut bucket.files);
            unsynced.append(&mut bucket.unsynced);
        }
        sync_files(unsynced)?;
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(files)
    }
}

fn write_batch(
    group: &mut OpenGroup,
    scratch: &mut Scratch,
    c: &MintCandles,
    r: std::ops::Range<usize>,
    interval_s: i32,
) -> parquet::errors::Result<()> {
    let n = r.len();
    // One writer has one interval: the column only grows.
    if scratch.interval.len() < n {
        scratch.interval.resize(n, interval_s);
    }
    scratch.ts_us.clear();
    for &ms in &c.ts_ms[r.clone()] {
        scratch.ts_us.push(ms.checked_mul(1000).ok_or_else(|| {
            parquet::errors::ParquetError::General(format!(
                "candle time {ms} ms does not fit in microseconds"
            ))
        })?);
    }
    let floats = [&c.open, &c.high, &c.low, &c.close, &c.volume];
    let mints = scratch.mints.repeated(&c.mint, n);
    for (i, column) in group.columns.iter_mut().enumerate() {
        match (i, column) {
            (0, ColumnWriter::ByteArrayColumnWriter(w)) => w.write_batch(mints, None, None),
            (1, ColumnWriter::Int64ColumnWriter(w)) => w.write_batch(&scratch.ts_us, None, None),
            (2, ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(&scratch.interval[..n], None, None)
            }
            (3..=7, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&floats[i - 3][r.clone()], None, None)
            }
            _ => Err(parquet::errors::ParquetError::General(
                "the candle schema and its column writers disagree".into(),
            )),
        }?;
    }
    Ok(())
}

fn poisoned() -> LakeError {
    LakeError::internal("a page list lock was poisoned by an earlier failure")
}

/// A Parquet write failure: almost always the disk (full, removed), so it is `IO`.
pub fn parquet_error(rel_path: &str, err: parquet::errors::ParquetError) -> LakeError {
    LakeError::new(
        ErrorCode::Io,
        format!("cannot write {rel_path}: {err}; check free disk space and permissions"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_mints_are_the_mint_and_clones_of_them_outlive_the_buffer() {
        let mut values = MintValues::default();
        let kept: Vec<ByteArray> = {
            let a = values.repeated("mintA", 3);
            assert_eq!(a.len(), 3);
            assert!(a.iter().all(|v| v.data() == b"mintA"));
            vec![a[0].clone(), a[2].clone()]
        };
        // A shorter run reuses the copies; a new mint replaces them all.
        assert_eq!(values.repeated("mintA", 2).len(), 2);
        let b = values.repeated("mintB-longer", 5);
        assert!(b.iter().all(|v| v.data() == b"mintB-longer"));
        let kept_b = b[4].clone();
        drop(values);
        // Clones the column writer kept (dictionary, statistics) own their bytes after the buffer's owner is gone.
        assert!(kept.iter().all(|v| v.data() == b"mintA"));
        assert_eq!(kept_b.data(), b"mintB-longer");
    }

    fn write_one_bucket_at_a_time(dir: &Path, pages: PageStore<'_>) -> Vec<WrittenFile> {
        let settings = PartSettings {
            compression: CompressionKind::Zstd,
            // Small files: row groups close inside a bucket, and the store is emptied there too.
            target_file_bytes: 96 * 1024,
            interval_s: 60,
        };
        let mut w = BucketWriter::new(dir, "", settings, pages).unwrap();
        for bucket in 0..3u8 {
            for m in 0..4 {
                let mut c = MintCandles::new(format!("m{bucket}-{m}"));
                for i in 0..9_000i64 {
                    let v = ((i * 7919 + m) % 1013) as f64 / 7.0;
                    c.push(i * 60_000, [v, v + 1.0, v - 1.0, v * 0.5, v * 3.0]);
                }
                w.write(bucket, &c).unwrap();
            }
            w.close_bucket(bucket).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn pages_kept_in_memory_make_the_same_files_as_pages_spilled() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let spilled = write_one_bucket_at_a_time(a.path(), PageStore::File(&a.path().join("s")));
        let kept = write_one_bucket_at_a_time(b.path(), PageStore::Memory);
        assert!(spilled.len() > 3, "several parts per bucket: {spilled:?}");
        assert_eq!(spilled, kept, "same paths, sizes and hashes");
    }
}
