//! A sealed corpus on disk as the candle source of a run-slice export: only the day and bucket files a window
//! touches are opened, and only the row groups whose statistics can hold a requested (mint, time) are read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use arrow_array::Array;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;

use crate::error::{ErrorCode, LakeError, Result};
use crate::lake::day_manifest::DayManifest;
use crate::lake::layout::{
    bucket_of_day_path, corpus_interval_dir, corpus_rel_dir, day_dir_name, day_label, MANIFEST_FILE,
};
use crate::lake::manifest::{DaySeal, SourceSnapshot, WrittenFile};
use crate::lake::manifest_reader::{read_manifest, Manifest};
use crate::source::fetched_mint::FetchedMint;
use crate::spec::fetch_plan::{BucketRequest, MintRanges};
use crate::task::cancel::CancelFlag;

const DAY_MS: i64 = 86_400_000;

/// The sealed days a run needs, indexed by bucket.
#[derive(Debug, Clone)]
pub struct CorpusSource {
    days: BTreeMap<NaiveDate, Day>,
    snapshot: SourceSnapshot,
}

#[derive(Debug, Clone)]
struct Day {
    start_ms: i64,
    files_by_bucket: BTreeMap<u8, Vec<PathBuf>>,
    manifest: DayManifest,
}

fn day_of(ms: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms.div_euclid(DAY_MS) * DAY_MS).map(|d| d.date_naive())
}

/// The UTC days the requested ranges touch.
pub fn days_touched(plan: &[MintRanges]) -> BTreeSet<NaiveDate> {
    let mut days = BTreeSet::new();
    for mr in plan {
        for &(s, e) in &mr.ranges {
            let (mut d, last) = (s.div_euclid(DAY_MS), (e - 1).div_euclid(DAY_MS));
            while d <= last {
                if let Some(day) = day_of(d * DAY_MS) {
                    days.insert(day);
                }
                d += 1;
            }
        }
    }
    days
}

impl CorpusSource {
    /// Opens the sealed manifests of the days the plan touches. A missing day, or one exported for another chain
    /// or with a mint filter, is `INVALID_CONFIG`: its absence of candles would be silently wrong.
    pub fn open(
        lake_root: &Path,
        interval_spec: &str,
        chain: &str,
        plan: &[MintRanges],
    ) -> Result<Self> {
        let interval_dir = corpus_interval_dir(lake_root, interval_spec);
        let mut days = BTreeMap::new();
        let mut seals = Vec::new();
        for day in days_touched(plan) {
            let dir = interval_dir.join(day_dir_name(day));
            let manifest = open_day(&dir, day, chain)?;
            seals.push(DaySeal {
                date: day_label(day),
                seal: manifest
                    .seal
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
                fingerprint: manifest
                    .source_fingerprint
                    .as_ref()
                    .map(|f| f.digest.clone()),
            });
            let start_ms = day
                .and_hms_opt(0, 0, 0)
                .map(|d| d.and_utc().timestamp_millis())
                .unwrap_or_default();
            days.insert(
                day,
                Day {
                    start_ms,
                    files_by_bucket: files_by_bucket(&dir, &manifest.files),
                    manifest,
                },
            );
        }
        Ok(Self {
            days,
            snapshot: SourceSnapshot::Corpus {
                path: corpus_rel_dir(interval_spec),
                days: seals,
            },
        })
    }

    /// The manifests of the days the run reads, by day.
    pub fn day_manifests(&self) -> impl Iterator<Item = (NaiveDate, &DayManifest)> {
        self.days.iter().map(|(d, day)| (*d, &day.manifest))
    }

    /// What the run manifest names as its source.
    pub fn snapshot(&self) -> SourceSnapshot {
        self.snapshot.clone()
    }

    /// The requested candles of one bucket's mints, exactly as the ClickHouse source would return them.
    pub fn fetch_bucket(
        &self,
        request: &BucketRequest,
        cancel: &CancelFlag,
    ) -> Result<Vec<FetchedMint>> {
        let mut reader = MintReader::new(&request.mints);
        for day in self.days.values() {
            let (lo, hi) = (day.start_ms, day.start_ms + DAY_MS);
            let wanted: Vec<&MintRanges> = request
                .mints
                .iter()
                .filter(|m| m.ranges.iter().any(|&(s, e)| s < hi && e > lo))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            for path in day
                .files_by_bucket
                .get(&request.bucket)
                .into_iter()
                .flatten()
            {
                cancel.check()?;
                reader.read(path, &wanted)?;
            }
        }
        Ok(reader.out)
    }
}

/// The requested candles of `request`'s mints (sorted) from a bucket's sealed files `paths` (in path order), in
/// request order, each mint handed back even when it has none.
pub(crate) fn read_mints(
    paths: &[PathBuf],
    request: &[MintRanges],
    cancel: &CancelFlag,
) -> Result<Vec<FetchedMint>> {
    let mut reader = MintReader::new(request);
    if !request.is_empty() {
        let wanted: Vec<&MintRanges> = request.iter().collect();
        for path in paths {
            cancel.check()?;
            reader.read(path, &wanted)?;
        }
    }
    Ok(reader.out)
}

/// The candles of a request's mints gathered from sealed bucket files, one file at a time.
struct MintReader<'a> {
    request: &'a [MintRanges],
    index: HashMap<&'a str, usize>,
    /// One per requested mint, in request order.
    out: Vec<FetchedMint>,
}

impl<'a> MintReader<'a> {
    fn new(request: &'a [MintRanges]) -> Self {
        Self {
            request,
            index: request
                .iter()
                .enumerate()
                .map(|(i, m)| (m.mint.as_str(), i))
                .collect(),
            out: request
                .iter()
                .map(|m| FetchedMint::empty(&m.mint))
                .collect(),
        }
    }

    /// Adds the candles of `wanted` (requested mints the file may hold) found in the file at `path`.
    fn read(&mut self, path: &Path, wanted: &[&MintRanges]) -> Result<()> {
        read_file(path, wanted, self.request, &self.index, &mut self.out)
    }
}

/// A sealed day's manifest, if it can stand for every mint of `chain` that day.
fn open_day(dir: &Path, day: NaiveDate, chain: &str) -> Result<DayManifest> {
    let manifest = match read_manifest(&dir.join(MANIFEST_FILE)) {
        Ok((_, Manifest::Day(m))) => m,
        _ => {
            return Err(LakeError::invalid_config(format!(
                "the corpus has no sealed day {day} at {}: export it first (exportCorpus / quantbot lake export-corpus), \
                 or read this run from ClickHouse",
                dir.display()
            )))
        }
    };
    if manifest.chain != chain {
        return Err(LakeError::invalid_config(format!(
            "corpus day {day} holds chain {:?}, not {chain:?}; export the corpus for {chain:?} or change chain",
            manifest.chain
        )));
    }
    if manifest.selection.mint_filter.is_some() {
        return Err(LakeError::invalid_config(format!(
            "corpus day {day} was exported with a mint filter, so it cannot stand for every mint; \
             export the day without mint_filter or read this run from ClickHouse"
        )));
    }
    Ok(manifest)
}

/// A day's files by bucket, each bucket's in path order; paths that would leave the day are ignored.
fn files_by_bucket(dir: &Path, files: &[WrittenFile]) -> BTreeMap<u8, Vec<PathBuf>> {
    let mut by_bucket: BTreeMap<u8, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        if f.rel_path.split('/').any(|s| s == "..") {
            continue;
        }
        if let Some(bucket) = bucket_of_day_path(&f.rel_path) {
            by_bucket
                .entry(bucket)
                .or_default()
                .push(dir.join(&f.rel_path));
        }
    }
    for files in by_bucket.values_mut() {
        files.sort();
    }
    by_bucket
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> LakeError {
    LakeError::new(
        ErrorCode::Io,
        format!("cannot read corpus file {}: {e}; run `quantbot lake verify` on its day and re-export it", path.display()),
    )
}

/// Whether a row group's statistics can hold any requested (mint, time).
fn row_group_may_match(rg: &RowGroupMetaData, wanted: &[&MintRanges]) -> bool {
    let mint_bounds = match rg.column(0).statistics() {
        Some(Statistics::ByteArray(s)) => s
            .min_opt()
            .zip(s.max_opt())
            .map(|(a, b)| (a.data().to_vec(), b.data().to_vec())),
        _ => None,
    };
    let ts_bounds = match rg.column(1).statistics() {
        Some(Statistics::Int64(s)) => s
            .min_opt()
            .zip(s.max_opt())
            .map(|(a, b)| (*a / 1000, *b / 1000)),
        _ => None,
    };
    wanted.iter().any(|m| {
        let mint_ok = mint_bounds.as_ref().is_none_or(|(lo, hi)| {
            lo.as_slice() <= m.mint.as_bytes() && m.mint.as_bytes() <= hi.as_slice()
        });
        let ts_ok =
            ts_bounds.is_none_or(|(lo, hi)| m.ranges.iter().any(|&(s, e)| s <= hi && e > lo));
        mint_ok && ts_ok
    })
}

/// Adds the requested candles of one file to `out`, counting each requested mint's rows read.
fn read_file(
    path: &Path,
    wanted: &[&MintRanges],
    requested: &[MintRanges],
    index: &HashMap<&str, usize>,
    out: &mut [FetchedMint],
) -> Result<()> {
    let file = File::open(path).map_err(|e| corrupt(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, rg)| row_group_may_match(rg, wanted))
        .map(|(i, _)| i)
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let reader = builder
        .with_row_groups(groups)
        .with_batch_size(8192)
        .build()
        .map_err(|e| corrupt(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(path, e))?;
        let (Some(mints), Some(ts)) = (
            batch.column(0).as_string_opt::<i32>(),
            batch
                .column(1)
                .as_primitive_opt::<TimestampMicrosecondType>(),
        ) else {
            return Err(corrupt(path, "unexpected column types"));
        };
        let f = |k: usize| {
            batch
                .column(3 + k)
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| corrupt(path, "unexpected column types"))
        };
        let (open, high, low, close, volume) = (f(0)?, f(1)?, f(2)?, f(3)?, f(4)?);
        let mut current: Option<(usize, &str)> = None;
        for i in 0..batch.num_rows() {
            if mints.is_null(i) {
                continue;
            }
            let mint = mints.value(i);
            let idx = match current {
                Some((idx, m)) if m == mint => Some(idx),
                _ => {
                    let found = index.get(mint).copied();
                    current = found.map(|idx| (idx, mint));
                    found
                }
            };
            let Some(idx) = idx else { continue };
            let ts_ms = ts.value(i).div_euclid(1000);
            out[idx].rows_fetched += 1;
            let series = &mut out[idx].candles;
            if requested[idx].contains(ts_ms)
                && series.ts_ms.last().is_none_or(|&last| last < ts_ms)
            {
                series.push(
                    ts_ms,
                    [
                        open.value(i),
                        high.value(i),
                        low.value(i),
                        close.value(i),
                        volume.value(i),
                    ],
                );
            }
        }
    }
    Ok(())
}
