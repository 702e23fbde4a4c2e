//! Writing one bucket's candles into `part-NNNN.parquet` files that roll before they pass the target size.

use std::path::{Path, PathBuf};

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, TimestampMicrosecondArray};
use parquet::arrow::ArrowWriter;
use std::sync::Arc;

use crate::candles::{candle_schema, MintCandles};
use crate::error::{LakeError, Result};
use crate::hashing_writer::HashingWriter;
use crate::parquet_settings::{arrow_writer_options, CompressionKind, FileKind};

/// Rows per Arrow batch handed to the Parquet writer: also the granularity of the rolling decision.
const BATCH_ROWS: usize = 8192;
/// Room kept for the footer and the last page headers when deciding to roll.
const FOOTER_RESERVE: u64 = 64 * 1024;
/// Uncompressed bytes of one candle row, used before a file has real compressed sizes to learn from.
const RAW_ROW_BYTES: u64 = 60;

/// A data file the lake wrote: where, how many rows, how big, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Path relative to the run (or corpus day) root, with `/` separators.
    pub rel_path: String,
    /// Data rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

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

struct OpenPart {
    writer: ArrowWriter<HashingWriter>,
    rel_path: String,
    rows: u64,
}

/// Column buffers for the next batch; filled from consecutive mints so small mints share batches.
struct BatchBuffer {
    mint: StringBuilder,
    ts_us: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
}

impl BatchBuffer {
    fn new() -> Self {
        Self {
            mint: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 44),
            ts_us: Vec::with_capacity(BATCH_ROWS),
            open: Vec::with_capacity(BATCH_ROWS),
            high: Vec::with_capacity(BATCH_ROWS),
            low: Vec::with_capacity(BATCH_ROWS),
            close: Vec::with_capacity(BATCH_ROWS),
            volume: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn len(&self) -> usize {
        self.ts_us.len()
    }

    fn extend(&mut self, c: &MintCandles, r: std::ops::Range<usize>) -> Result<()> {
        for &ms in &c.ts_ms[r.clone()] {
            self.ts_us.push(ms.checked_mul(1000).ok_or_else(|| {
                LakeError::internal(format!("candle time {ms} ms does not fit in microseconds"))
            })?);
            self.mint.append_value(&c.mint);
        }
        self.open.extend_from_slice(&c.open[r.clone()]);
        self.high.extend_from_slice(&c.high[r.clone()]);
        self.low.extend_from_slice(&c.low[r.clone()]);
        self.close.extend_from_slice(&c.close[r.clone()]);
        self.volume.extend_from_slice(&c.volume[r]);
        Ok(())
    }

    fn take(&mut self, interval_s: i32) -> Result<RecordBatch> {
        let n = self.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.mint.finish()),
            Arc::new(TimestampMicrosecondArray::from(std::mem::take(
                &mut self.ts_us,
            ))),
            Arc::new(Int32Array::from(vec![interval_s; n])),
            Arc::new(Float64Array::from(std::mem::take(&mut self.open))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.high))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.low))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.close))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.volume))),
        ];
        RecordBatch::try_new(candle_schema(), columns)
            .map_err(|e| LakeError::internal(format!("building a candle batch: {e}")))
    }
}

/// Writes the candles of one bucket, mint by mint in sorted order, into rolling part files under one directory.
/// The directory is created only when the first row arrives, so an empty bucket leaves nothing behind; its
/// parent must exist.
pub struct PartWriter {
    dir: PathBuf,
    rel_dir: String,
    settings: PartSettings,
    interval_s: i32,
    buffer: BatchBuffer,
    open: Option<OpenPart>,
    files: Vec<WrittenFile>,
    last_mint: Option<String>,
}

impl PartWriter {
    /// A writer for `dir`, whose path relative to the run root is `rel_dir`.
    pub fn new(dir: &Path, rel_dir: &str, settings: PartSettings) -> Result<Self> {
        let interval_s = i32::try_from(settings.interval_s)
            .map_err(|_| LakeError::internal("interval does not fit in int32"))?;
        Ok(Self {
            dir: dir.to_owned(),
            rel_dir: rel_dir.to_owned(),
            settings,
            interval_s,
            buffer: BatchBuffer::new(),
            open: None,
            files: Vec::new(),
            last_mint: None,
        })
    }

    /// Appends a mint's candles; mints must come in strictly increasing order.
    pub fn write(&mut self, candles: &MintCandles) -> Result<()> {
        if candles.is_empty() {
            return Ok(());
        }
        if let Some(last) = &self.last_mint {
            if last.as_str() >= candles.mint.as_str() {
                return Err(LakeError::internal(format!(
                    "mints reached the writer out of order: {last:?} then {:?}",
                    candles.mint
                )));
            }
        }
        self.last_mint = Some(candles.mint.clone());
        let mut start = 0;
        while start < candles.len() {
            let take = (BATCH_ROWS - self.buffer.len()).min(candles.len() - start);
            self.buffer.extend(candles, start..start + take)?;
            start += take;
            if self.buffer.len() == BATCH_ROWS {
                self.write_buffer()?;
            }
        }
        Ok(())
    }

    /// Flushes and closes the last part; returns every file written, in part order.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if self.buffer.len() > 0 {
            self.write_buffer()?;
        }
        self.close_part()?;
        Ok(self.files)
    }

    fn write_buffer(&mut self) -> Result<()> {
        let rows = self.buffer.len() as u64;
        if let Some(part) = &self.open {
            if part.rows > 0
                && self.estimated_size(part) + self.estimated_batch(part, rows)
                    > self.settings.target_file_bytes
            {
                self.close_part()?;
            }
        }
        if self.open.is_none() {
            self.open_part()?;
        }
        let batch = self.buffer.take(self.interval_s)?;
        let target = self.settings.target_file_bytes;
        let part = self.open.as_mut().expect("a part is open");
        part.writer
            .write(&batch)
            .map_err(|e| parquet_error(&part.rel_path, e))?;
        part.rows += rows;
        // Buffered rows are counted uncompressed; ending the row group early turns that guess into real bytes,
        // so small targets still fill their files.
        if part.writer.in_progress_size() as u64 >= target / 4 {
            part.writer
                .flush()
                .map_err(|e| parquet_error(&part.rel_path, e))?;
        }
        Ok(())
    }

    fn estimated_size(&self, part: &OpenPart) -> u64 {
        (part.writer.bytes_written() + part.writer.in_progress_size()) as u64 + FOOTER_RESERVE
    }

    fn estimated_batch(&self, part: &OpenPart, rows: u64) -> u64 {
        let flushed_rows: i64 = part
            .writer
            .flushed_row_groups()
            .iter()
            .map(|g| g.num_rows())
            .sum();
        if flushed_rows > 0 {
            let per_row = (part.writer.bytes_written() as u64).div_ceil(flushed_rows as u64);
            rows * per_row.max(1)
        } else {
            rows * RAW_ROW_BYTES
        }
    }

    fn open_part(&mut self) -> Result<()> {
        if self.files.is_empty() {
            // Not create_dir_all: if the export was abandoned and its staging removed, this fails instead of
            // growing a stray directory tree.
            match std::fs::create_dir(&self.dir) {
                Ok(()) => {}
                // A staging directory made for exactly this bucket.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(LakeError::io("cannot create directory", &self.dir, &e)),
            }
        }
        let name = format!("part-{:04}.parquet", self.files.len());
        let path = self.dir.join(&name);
        let sink = HashingWriter::create(&path)?;
        let rel_path = format!("{}/{}", self.rel_dir, name);
        let writer = ArrowWriter::try_new_with_options(
            sink,
            candle_schema(),
            arrow_writer_options(FileKind::Candles, self.settings.compression),
        )
        .map_err(|e| parquet_error(&rel_path, e))?;
        self.open = Some(OpenPart {
            writer,
            rel_path,
            rows: 0,
        });
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.open.take() else {
            return Ok(());
        };
        let sink = part
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&part.rel_path, e))?;
        let digest = sink.finish()?;
        self.files.push(WrittenFile {
            rel_path: part.rel_path,
            rows: part.rows,
            bytes: digest.bytes,
            sha256: digest.sha256,
        });
        Ok(())
    }
}

/// A Parquet write failure: almost always the disk (full, removed), so it is `IO`.
pub fn parquet_error(rel_path: &str, err: parquet::errors::ParquetError) -> LakeError {
    LakeError::new(
        crate::error::ErrorCode::Io,
        format!("cannot write {rel_path}: {err}; check free disk space and permissions"),
    )
}
