//! Writing and checking lake files without a server: Parquet layout, rolling, determinism, manifest and verify.

use std::fs::File;
use std::path::Path;

use lake_core::{
    alerts_to_parquet, manifest_bytes, verify, Alert, BucketWriter, CompressionKind,
    CoverageSummary, FetchStats, MintCandles, PageStore, PartSettings, RunContents, RunManifest,
    SliceSpec, SourceSnapshot, WrittenFile, CREATED_BY, PAGE_ROWS,
};
use parquet::basic::{Compression, Encoding};
use parquet::file::reader::{FileReader, SerializedFileReader};

const T: i64 = 1_609_459_200_000;

fn series(mint: &str, n: usize, seed: u64) -> MintCandles {
    let mut c = MintCandles::new(mint);
    let mut price = 1.0 + seed as f64;
    for i in 0..n {
        price *= 1.0 + ((i as u64 * 2_654_435_761 + seed) % 1000) as f64 / 1e5 - 0.005;
        c.push(
            T + i as i64 * 60_000,
            [
                price,
                price * 1.01,
                price * 0.99,
                price * 1.001,
                (i % 97) as f64 * 3.5,
            ],
        );
    }
    c
}

fn settings(compression: CompressionKind, target_file_bytes: u64) -> PartSettings {
    PartSettings {
        compression,
        target_file_bytes,
        interval_s: 60,
    }
}

fn writer(dir: &Path, s: PartSettings) -> BucketWriter {
    BucketWriter::new(dir, "", s, PageStore::File(&dir.join(".spill"))).unwrap()
}

fn write_bucket(dir: &Path, series: &[MintCandles], s: PartSettings) -> Vec<WrittenFile> {
    let mut w = writer(dir, s);
    for c in series {
        w.write(0xaa, c).unwrap();
    }
    let files = w.finish().unwrap();
    assert!(!dir.join(".spill").exists(), "the spill file is gone");
    files
}

fn reader(path: &Path) -> SerializedFileReader<File> {
    SerializedFileReader::new(File::open(path).unwrap()).unwrap()
}

#[test]
fn each_compression_is_honoured_and_the_layout_is_as_designed() {
    for (kind, codec) in [
        (CompressionKind::Zstd, "ZSTD"),
        (CompressionKind::Snappy, "SNAPPY"),
        (CompressionKind::None, "UNCOMPRESSED"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let files = write_bucket(
            dir.path(),
            &[series("a", 500, 1), series("b", 300, 2)],
            settings(kind, 512 << 20),
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].rows, 800);
        let r = reader(&dir.path().join(&files[0].rel_path));
        let meta = r.metadata();
        assert_eq!(meta.file_metadata().created_by(), Some(CREATED_BY));
        assert!(meta
            .file_metadata()
            .key_value_metadata()
            .is_none_or(|kv| kv.iter().all(|k| k.key != "ARROW:schema")));
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "mint",
                "ts",
                "interval_s",
                "open",
                "high",
                "low",
                "close",
                "volume"
            ]
        );
        let ts_type = format!("{:?}", schema.column(1).logical_type_ref());
        assert!(
            ts_type.contains("MICROS") && ts_type.contains("is_adjusted_to_u_t_c: false"),
            "{ts_type}"
        );
        let rg = meta.row_group(0);
        let sorting = rg.sorting_columns().expect("sort order recorded");
        assert_eq!(
            sorting.iter().map(|s| s.column_idx).collect::<Vec<_>>(),
            [0, 1]
        );
        for col in rg.columns() {
            let want = match kind {
                CompressionKind::Zstd => matches!(col.compression(), Compression::ZSTD(_)),
                CompressionKind::Snappy => col.compression() == Compression::SNAPPY,
                CompressionKind::None => col.compression() == Compression::UNCOMPRESSED,
            };
            assert!(
                want,
                "{codec}: column {} is {:?}",
                col.column_path(),
                col.compression()
            );
            assert!(
                col.statistics().is_some(),
                "statistics on {}",
                col.column_path()
            );
        }
        let enc = |i: usize| rg.column(i).encodings().collect::<Vec<_>>();
        assert!(
            enc(0).contains(&Encoding::RLE_DICTIONARY),
            "mint is dictionary encoded"
        );
        assert!(enc(1).contains(&Encoding::DELTA_BINARY_PACKED));
        assert!(
            !enc(1).contains(&Encoding::RLE_DICTIONARY),
            "no dictionary on ts"
        );
        assert!(enc(3).contains(&Encoding::BYTE_STREAM_SPLIT));
    }
}

#[test]
fn rows_read_back_sorted_and_equal() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int32Type, TimestampMicrosecondType};
    let dir = tempfile::tempdir().unwrap();
    let input = [series("a", 20_000, 1), series("b", 5, 2)];
    let files = write_bucket(
        dir.path(),
        &input,
        settings(CompressionKind::Zstd, 512 << 20),
    );
    let file = File::open(dir.path().join(&files[0].rel_path)).unwrap();
    let batches: Vec<_> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push((
                b.column(0).as_string::<i32>().value(i).to_owned(),
                b.column(1)
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(i),
                b.column(2).as_primitive::<Int32Type>().value(i),
                b.column(6).as_primitive::<Float64Type>().value(i),
            ));
        }
    }
    let want: Vec<_> = input
        .iter()
        .flat_map(|c| {
            (0..c.len()).map(move |i| (c.mint.clone(), c.ts_ms[i] * 1000, 60, c.close[i]))
        })
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn files_roll_before_passing_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<MintCandles> = (0..6)
        .map(|k| series(&format!("m{k}"), 40_000, k))
        .collect();
    let target = 1 << 20;
    let files = write_bucket(dir.path(), &input, settings(CompressionKind::None, target));
    assert!(files.len() >= 4, "{} parts", files.len());
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.rel_path, format!("mint_bucket=aa/part-{i:04}.parquet"));
        assert!(f.bytes <= target, "part {i} has {} bytes", f.bytes);
        assert_eq!(
            reader(&dir.path().join(&f.rel_path))
                .metadata()
                .file_metadata()
                .num_rows() as u64,
            f.rows
        );
    }
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 240_000);
    assert!(
        files[0].bytes > target / 2,
        "parts are filled, not tiny ({} bytes)",
        files[0].bytes
    );
}

#[test]
fn same_rows_give_identical_bytes() {
    let input: Vec<MintCandles> = (0..3).map(|k| series(&format!("m{k}"), 3000, k)).collect();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let fa = write_bucket(a.path(), &input, settings(CompressionKind::Zstd, 512 << 20));
    let fb = write_bucket(b.path(), &input, settings(CompressionKind::Zstd, 512 << 20));
    assert_eq!(fa, fb, "same sizes and hashes");
    assert_eq!(
        std::fs::read(a.path().join(&fa[0].rel_path)).unwrap(),
        std::fs::read(b.path().join(&fb[0].rel_path)).unwrap()
    );
}

#[test]
fn bytes_do_not_depend_on_how_buckets_interleave() {
    // Bucket after bucket, or mint by mint across buckets (as an export reads them): the same files.
    let a_mints: Vec<MintCandles> = (0..4).map(|k| series(&format!("a{k}"), 9000, k)).collect();
    let b_mints: Vec<MintCandles> = (0..4)
        .map(|k| series(&format!("b{k}"), 7000, 10 + k))
        .collect();
    let s = settings(CompressionKind::Zstd, 512 << 20);
    let one = tempfile::tempdir().unwrap();
    let mut w = writer(one.path(), s);
    for c in &a_mints {
        w.write(0x01, c).unwrap();
    }
    for c in &b_mints {
        w.write(0x02, c).unwrap();
    }
    let sequential = w.finish().unwrap();
    let two = tempfile::tempdir().unwrap();
    let mut w = writer(two.path(), s);
    for (a, b) in a_mints.iter().zip(&b_mints) {
        w.write(0x02, b).unwrap();
        w.write(0x01, a).unwrap();
    }
    let interleaved = w.finish().unwrap();
    assert_eq!(sequential.len(), 2);
    assert_eq!(sequential, interleaved, "same paths, sizes and hashes");
    assert_eq!(
        sequential
            .iter()
            .map(|f| f.rel_path.as_str())
            .collect::<Vec<_>>(),
        [
            "mint_bucket=01/part-0000.parquet",
            "mint_bucket=02/part-0000.parquet"
        ]
    );
}

#[test]
fn large_buckets_get_several_row_groups_with_exact_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<MintCandles> = (0..3)
        .map(|k| series(&format!("m{k}"), 120_000, k))
        .collect();
    let files = write_bucket(
        dir.path(),
        &input,
        settings(CompressionKind::Zstd, 512 << 20),
    );
    assert_eq!(files.len(), 1);
    let r = reader(&dir.path().join(&files[0].rel_path));
    let meta = r.metadata();
    assert_eq!(
        meta.num_row_groups(),
        2,
        "262,144 rows per row group at most"
    );
    assert_eq!(meta.row_group(0).num_rows(), 262_144);
    assert_eq!(meta.file_metadata().num_rows(), 360_000);
    let ts_bounds = |g: usize| match meta.row_group(g).column(1).statistics() {
        Some(parquet::file::statistics::Statistics::Int64(s)) => {
            (*s.min_opt().unwrap(), *s.max_opt().unwrap())
        }
        other => panic!("ts statistics: {other:?}"),
    };
    // Row group 1 starts inside m2 (rows 262,144..): its first time is m2's row 22,144.
    assert_eq!(ts_bounds(1).0, (T + 22_144 * 60_000) * 1000);
    assert_eq!(ts_bounds(0).1, (T + 119_999 * 60_000) * 1000);
}

#[test]
fn every_page_but_a_row_groups_last_holds_page_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Mints of uneven lengths, so that pages end inside mints and the writer's calls must be cut there.
    let input: Vec<MintCandles> = [1_000, 1_439, 3_001, 777, 20_000, 5, 9_999, 300_000, 4_321]
        .iter()
        .enumerate()
        .map(|(k, &n)| series(&format!("m{k}"), n, k as u64))
        .collect();
    let total: usize = input.iter().map(MintCandles::len).sum();
    let files = write_bucket(
        dir.path(),
        &input,
        settings(CompressionKind::Zstd, 512 << 20),
    );
    assert_eq!(files.len(), 1);
    let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
        .with_page_index()
        .build();
    let file = File::open(dir.path().join(&files[0].rel_path)).unwrap();
    let r = SerializedFileReader::new_with_options(file, options).unwrap();
    let meta = r.metadata();
    let pages = meta.page_index().expect("a page index");
    assert_eq!(meta.num_row_groups(), 2);
    let mut rows_seen = 0;
    for g in 0..meta.num_row_groups() {
        let group_rows = meta.row_group(g).num_rows();
        rows_seen += group_rows as usize;
        for c in 0..meta.row_group(g).num_columns() {
            let column = pages
                .offset_index(g, c)
                .expect("an offset index per column");
            let starts: Vec<i64> = column
                .page_locations()
                .iter()
                .map(|p| p.first_row_index)
                .collect();
            let mut sizes: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
            sizes.push(group_rows - starts.last().unwrap());
            let (last, whole) = sizes.split_last().unwrap();
            assert!(
                whole.iter().all(|&n| n == PAGE_ROWS as i64),
                "row group {g}, column {c}: pages of {sizes:?} rows"
            );
            assert!(*last > 0 && *last <= PAGE_ROWS as i64);
        }
    }
    assert_eq!(rows_seen, total);
}

#[test]
fn empty_bucket_leaves_no_directory_and_order_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_bucket(
        dir.path(),
        &[MintCandles::new("a")],
        settings(CompressionKind::Zstd, 1 << 20),
    );
    assert!(files.is_empty());
    assert!(!dir.path().join("mint_bucket=aa").exists());
    let mut w = writer(dir.path(), settings(CompressionKind::Zstd, 1 << 20));
    w.write(0x10, &series("b", 3, 0)).unwrap();
    w.write(0x11, &series("a", 3, 0)).unwrap();
    assert!(
        w.write(0x10, &series("a", 3, 0)).is_err(),
        "mints of one bucket must come sorted"
    );
}

/// A sealed directory with two data files, written the way an export writes it.
fn sealed_run(dir: &Path) {
    let slices = dir.join("slices");
    std::fs::create_dir(&slices).unwrap();
    let files = {
        let mut w = BucketWriter::new(
            &slices,
            "slices",
            settings(CompressionKind::Zstd, 1 << 30),
            PageStore::File(&dir.join(".spill")),
        )
        .unwrap();
        w.write(0xaa, &series("a", 100, 1)).unwrap();
        w.finish().unwrap()
    };
    let table = |rel: &str, rows: u64| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let rows_of: Vec<Alert> = (0..rows)
            .map(|i| Alert {
                id: i.to_string(),
                mint: "m".into(),
                ts_ms: i as i64,
            })
            .collect();
        let bytes = alerts_to_parquet(&rows_of, CompressionKind::Zstd).unwrap();
        let d = lake_core::write_file(&path, &bytes).unwrap();
        WrittenFile {
            rel_path: rel.to_owned(),
            rows,
            bytes: d.bytes,
            sha256: d.sha256,
        }
    };
    let cov = table("outputs/coverage.parquet", 3);
    let alerts = table("inputs/alerts.parquet", 2);
    let manifest = RunManifest::new(RunContents {
        run_id: "r".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        source: SourceSnapshot::ClickHouse {
            cluster: "h:1".into(),
            database: "d".into(),
            table: "t".into(),
            as_of: "2026-01-01T00:00:00Z".into(),
        },
        slice_spec: SliceSpec::ohlcv("1m", "pre1_post1", "solana"),
        slice_dir: "slices".into(),
        alerts_file: alerts,
        coverage_file: cov,
        slice_files: files,
        coverage: CoverageSummary {
            min_required_pre: 1,
            target_total: 1,
            kept_events: 2,
            dropped_events: 0,
            strict: false,
        },
        stats: FetchStats::default(),
    })
    .to_sealed_json();
    std::fs::write(dir.join("manifest.json"), manifest_bytes(&manifest)).unwrap();
}

fn kinds(dir: &Path) -> Vec<&'static str> {
    verify(dir)
        .unwrap()
        .problems
        .iter()
        .map(|p| p.kind)
        .collect()
}

#[test]
fn verify_passes_an_intact_run_and_catches_every_change() {
    let dir = tempfile::tempdir().unwrap();
    sealed_run(dir.path());
    let report = verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.files_checked, 3);

    // A flipped byte in a data file.
    let part = dir.path().join("slices/mint_bucket=aa/part-0000.parquet");
    let original = std::fs::read(&part).unwrap();
    let mut flipped = original.clone();
    flipped[100] ^= 0x01;
    std::fs::write(&part, &flipped).unwrap();
    assert_eq!(kinds(dir.path()), ["hash"]);
    std::fs::write(&part, &original).unwrap();

    // A deleted file, then an extra one.
    std::fs::remove_file(&part).unwrap();
    assert_eq!(kinds(dir.path()), ["missing_file"]);
    std::fs::write(&part, &original).unwrap();
    std::fs::write(dir.path().join("slices/stray.parquet"), b"x").unwrap();
    assert_eq!(kinds(dir.path()), ["extra_file"]);
    std::fs::remove_file(dir.path().join("slices/stray.parquet")).unwrap();

    // An edited manifest field breaks the seal; editing created_at does not.
    let manifest_path = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        text.replace("\"chain\": \"solana\"", "\"chain\": \"ethereum\""),
    )
    .unwrap();
    assert_eq!(kinds(dir.path()), ["seal"]);
    std::fs::write(
        &manifest_path,
        text.replace("2026-01-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"),
    )
    .unwrap();
    assert!(verify(dir.path()).unwrap().ok());
    std::fs::write(&manifest_path, &text).unwrap();

    // A truncated file: size, hash and rows all differ.
    std::fs::write(&part, &original[..original.len() / 2]).unwrap();
    let k = kinds(dir.path());
    assert!(
        k.contains(&"size") && k.contains(&"hash") && k.contains(&"rows"),
        "{k:?}"
    );
    std::fs::write(&part, &original).unwrap();
    std::fs::remove_file(&manifest_path).unwrap();
    assert_eq!(kinds(dir.path()), ["missing_manifest"]);
}
