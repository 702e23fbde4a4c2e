//! The one place where Parquet writer settings are built, for every file the lake writes.

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::error::{LakeError, Result};

/// `created_by` of every file: fixed, so files carry no wall clock, host or library build string.
pub const CREATED_BY: &str = concat!("quantbot-lake ", env!("CARGO_PKG_VERSION"));

/// Rows per row group: small enough for row-group statistics to prune time ranges, large enough to compress well.
pub const ROW_GROUP_ROWS: usize = 262_144;

/// Rows per data page: every page of a row group but its last holds exactly this many (the bucket writer ends its
/// calls to the column writers at page ends: Parquet checks a page's size only between mini-batches of 1,024
/// values, and pages cut there ran to 5,119 rows, past the documented size). Every bucket file of an export is open
/// at once and each of its columns holds the page it is filling, unencoded: 256 buckets x ~48 bytes x this many
/// rows is the writer's memory, whatever the size of the export. Measured on the writer benchmark (10M rows, one
/// core): exact pages of 8,192 rows wrote 28.25 bytes/row in 130 MiB, of 4,096 rows 28.40 in 79 MiB, and the old
/// pages of 4,096 to 5,119 rows 28.31 in 121 MiB (a column's buffer grows to the next power of two), at the same
/// speed: 8,192 gives the smallest files for about the memory the old pages took.
pub const PAGE_ROWS: usize = 8192;

// Row groups end at a page end, so that every page but a file's last is whole.
const _: () = assert!(ROW_GROUP_ROWS.is_multiple_of(PAGE_ROWS));

/// zstd level. Pages are small (see [`PAGE_ROWS`]) and every page is compressed on its own, so the level matters
/// more than with large pages: on the benchmark's 10M rows, level 1 wrote 29.06 bytes/row, level 3 28.78, level 5
/// 28.55 at clearly more CPU, which the exporter cannot spare when it keeps pace with the server on one core.
const ZSTD_LEVEL: i32 = 3;

/// The codec of the data files (`compression`, docs/lake-format.md "Run config"), honoured exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CompressionKind {
    /// zstd, at the level [`CompressionKind::codec`] records (3).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// Uncompressed.
    None,
}

impl CompressionKind {
    /// Parses `zstd`, `snappy` or `none`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "zstd" => Ok(Self::Zstd),
            "snappy" => Ok(Self::Snappy),
            "none" => Ok(Self::None),
            other => Err(LakeError::invalid_config(format!(
                "invalid compression {other:?}: use \"zstd\", \"snappy\" or \"none\""
            ))),
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Snappy => "snappy",
            Self::None => "none",
        }
    }

    /// The Parquet codec recorded in the files' metadata.
    pub fn codec(self) -> Compression {
        match self {
            Self::Zstd => {
                Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"))
            }
            Self::Snappy => Compression::SNAPPY,
            Self::None => Compression::UNCOMPRESSED,
        }
    }
}

/// Compresses candle pages for [`crate::writer::page_spill`]: one context shared by every open column, with exactly the
/// codec and level of [`CompressionKind::codec`].
pub struct PageCodec {
    kind: CompressionKind,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    snappy: snap::raw::Encoder,
}

impl PageCodec {
    /// A codec for `kind`.
    pub fn new(kind: CompressionKind) -> Result<Self> {
        let zstd = match kind {
            CompressionKind::Zstd => {
                Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| {
                    LakeError::internal(format!("cannot create a zstd compressor: {e}"))
                })?)
            }
            _ => None,
        };
        Ok(Self {
            kind,
            zstd,
            snappy: snap::raw::Encoder::new(),
        })
    }

    /// `data` compressed as one Parquet page body.
    pub fn compress(&mut self, data: &[u8]) -> std::io::Result<bytes::Bytes> {
        Ok(match (self.kind, &mut self.zstd) {
            (CompressionKind::Zstd, Some(z)) => z.compress(data)?.into(),
            (CompressionKind::Snappy, _) => self.snappy.compress_vec(data)?.into(),
            _ => bytes::Bytes::copy_from_slice(data),
        })
    }
}

/// What a file holds, which decides its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Slice and corpus candle files, sorted by (`mint`, `ts`).
    Candles,
    /// Small tables (coverage, stored alerts): plain layout, dictionary on repeated strings.
    Table,
}

/// Writer properties for one file kind and codec.
///
/// Candle files: dictionary only on `mint` (few distinct values per file), delta encoding for `ts` and `interval_s`
/// (regular steps), byte-stream-split for the float columns (compresses prices and volumes far better), page
/// statistics on, and (`mint`, `ts`) recorded as the sort order.
pub fn writer_properties(kind: FileKind, compression: CompressionKind) -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_created_by(CREATED_BY.to_owned())
        .set_compression(compression.codec())
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS);
    match kind {
        FileKind::Table => builder.build(),
        FileKind::Candles => {
            let mut b = builder
                .set_dictionary_enabled(false)
                .set_column_dictionary_enabled(ColumnPath::from("mint"), true)
                .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
                .set_column_encoding(
                    ColumnPath::from("interval_s"),
                    Encoding::DELTA_BINARY_PACKED,
                )
                .set_sorting_columns(Some(vec![
                    SortingColumn {
                        column_idx: 0,
                        descending: false,
                        nulls_first: false,
                    },
                    SortingColumn {
                        column_idx: 1,
                        descending: false,
                        nulls_first: false,
                    },
                ]));
            // Prices and volumes keep row-group statistics but not per-page ones: readers prune by mint and time,
            // and page statistics of 2,000 open float columns are memory held until each file closes.
            for column in ["open", "high", "low", "close", "volume"] {
                b = b
                    .set_column_encoding(ColumnPath::from(column), Encoding::BYTE_STREAM_SPLIT)
                    .set_column_statistics_enabled(
                        ColumnPath::from(column),
                        EnabledStatistics::Chunk,
                    );
            }
            b.build()
        }
    }
}

/// Arrow writer options: no `ARROW:schema` blob (readers take the types from the Parquet schema).
pub fn arrow_writer_options(
    kind: FileKind,
    compression: CompressionKind,
) -> parquet::arrow::arrow_writer::ArrowWriterOptions {
    parquet::arrow::arrow_writer::ArrowWriterOptions::new()
        .with_properties(writer_properties(kind, compression))
        .with_skip_arrow_metadata(true)
}
