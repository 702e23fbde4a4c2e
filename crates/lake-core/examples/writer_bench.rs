//! The Parquet writer alone: N in-memory candle rows of 5,000 tokens into 256 bucket directories, handed over
//! mint by mint in mint order (as an export reads them), so every bucket is open at once.
//!
//! `cargo run --release -p lake-core --example writer_bench -- --rows 10000000 [--out DIR]`
//! prints one JSON line: rows, seconds, bytes, bytes per row, peak RSS.

use std::path::PathBuf;
use std::time::Instant;

use lake_core::{
    mint_bucket_index, BucketWriter, CompressionKind, MintCandles, PageStore, PartSettings,
};

const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let rows: usize = arg("--rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let tokens: usize = arg("--tokens").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let out = arg("--out").map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("writer-bench-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output directory");

    // Synthetic data: base58 addresses, 1m candles, a random walk per token; generated one mint at a time so the
    // input itself takes no memory.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let per_token = rows.div_ceil(tokens);
    let mut mints: Vec<String> = (0..tokens)
        .map(|_| {
            (0..44)
                .map(|_| ALPHABET[(rng.next() % 58) as usize] as char)
                .collect()
        })
        .collect();
    mints.sort();
    let settings = PartSettings {
        compression: CompressionKind::Zstd,
        target_file_bytes: 512 << 20,
        interval_s: 60,
    };
    let mut writer = BucketWriter::new(&out, "", settings, PageStore::File(&out.join(".spill")))
        .expect("writer");
    let started = Instant::now();
    let mut total_rows = 0;
    for mint in &mints {
        let mut c = MintCandles::new(mint.clone());
        let mut price = 0.001 + rng.unit() * 10.0;
        for i in 0..per_token {
            let open = price;
            price *= 1.0 + (rng.unit() - 0.5) * 0.02;
            let (hi, lo) = (
                open.max(price) * (1.0 + rng.unit() * 0.005),
                open.min(price) * (1.0 - rng.unit() * 0.005),
            );
            c.push(
                1_735_689_600_000 + i as i64 * 60_000,
                [open, hi, lo, price, (rng.unit() * 1e5).round() / 10.0],
            );
        }
        total_rows += c.len();
        writer.write(mint_bucket_index(mint), &c).expect("write");
    }
    let files = writer.finish().expect("finish");
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"rows\":{total_rows},\"seconds\":{seconds:.3},\"bytes\":{bytes},\"bytes_per_row\":{:.2},\"files\":{},\"peak_rss_mib\":{:.0}}}",
        bytes as f64 / total_rows as f64,
        files.len(),
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&out);
}
