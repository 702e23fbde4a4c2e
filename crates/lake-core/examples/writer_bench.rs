//! The Parquet writer alone: N in-memory candle rows of 5,000 tokens into 256 bucket directories.
//!
//! `cargo run --release -p lake-core --example writer_bench -- --rows 10000000 [--threads 2] [--out DIR]`
//! prints one JSON line: rows, seconds, bytes, bytes per row.

use std::path::PathBuf;
use std::time::Instant;

use lake_core::candles::MintCandles;
use lake_core::mint_bucket::{bucket_name, mint_bucket_index};
use lake_core::parquet_settings::CompressionKind;
use lake_core::part_writer::{PartSettings, PartWriter};

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

fn main() {
    let rows: usize = arg("--rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let tokens: usize = arg("--tokens").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let threads: usize = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(1);
    let out = arg("--out").map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("writer-bench-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output directory");

    // Synthetic data: base58 addresses, 1m candles, a random walk per token.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let per_token = rows.div_ceil(tokens);
    let mut buckets: Vec<Vec<MintCandles>> = (0..256).map(|_| Vec::new()).collect();
    for _ in 0..tokens {
        let mint: String = (0..44)
            .map(|_| ALPHABET[(rng.next() % 58) as usize] as char)
            .collect();
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
        buckets[mint_bucket_index(&mint) as usize].push(c);
    }
    for b in &mut buckets {
        b.sort_by(|x, y| x.mint.cmp(&y.mint));
    }
    let total_rows: usize = buckets.iter().flatten().map(|c| c.len()).sum();
    let settings = PartSettings {
        compression: CompressionKind::Zstd,
        target_file_bytes: 512 << 20,
        interval_s: 60,
    };

    let started = Instant::now();
    let write = |ids: Vec<usize>| -> u64 {
        let mut bytes = 0;
        for id in ids {
            if buckets[id].is_empty() {
                continue;
            }
            let name = format!("mint_bucket={}", bucket_name(id as u8));
            let mut w = PartWriter::new(&out.join(&name), &name, settings).expect("writer");
            for c in &buckets[id] {
                w.write(c).expect("write");
            }
            bytes += w
                .finish()
                .expect("finish")
                .iter()
                .map(|f| f.bytes)
                .sum::<u64>();
        }
        bytes
    };
    let bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ids: Vec<usize> = (0..256).filter(|b| b % threads == t).collect();
                s.spawn(move || write(ids))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"rows\":{total_rows},\"threads\":{threads},\"seconds\":{seconds:.3},\"bytes\":{bytes},\"bytes_per_row\":{:.2}}}",
        bytes as f64 / total_rows as f64
    );
    let _ = std::fs::remove_dir_all(&out);
}
