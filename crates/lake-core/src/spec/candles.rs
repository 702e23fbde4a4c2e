//! Candles in memory and the slice/corpus file schema (docs/lake-format.md, "Candle files").

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The candles of one mint, sorted by time with no duplicate times; columns kept apart (no per-row objects).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MintCandles {
    /// The token address.
    pub mint: String,
    /// Candle open times, epoch milliseconds, strictly increasing.
    pub ts_ms: Vec<i64>,
    /// Open prices.
    pub open: Vec<f64>,
    /// High prices.
    pub high: Vec<f64>,
    /// Low prices.
    pub low: Vec<f64>,
    /// Close prices.
    pub close: Vec<f64>,
    /// Volumes.
    pub volume: Vec<f64>,
}

impl MintCandles {
    /// An empty series for a mint.
    pub fn new(mint: impl Into<String>) -> Self {
        Self {
            mint: mint.into(),
            ..Self::default()
        }
    }

    /// Number of candles.
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }

    /// True when there are no candles.
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }

    /// Appends one candle; the caller keeps times increasing.
    pub fn push(&mut self, ts_ms: i64, ohlcv: [f64; 5]) {
        self.ts_ms.push(ts_ms);
        self.open.push(ohlcv[0]);
        self.high.push(ohlcv[1]);
        self.low.push(ohlcv[2]);
        self.close.push(ohlcv[3]);
        self.volume.push(ohlcv[4]);
    }

    /// Appends the candles of `later`, whose times all come after these.
    pub fn append(&mut self, mut later: MintCandles) {
        self.ts_ms.append(&mut later.ts_ms);
        self.open.append(&mut later.open);
        self.high.append(&mut later.high);
        self.low.append(&mut later.low);
        self.close.append(&mut later.close);
        self.volume.append(&mut later.volume);
    }

    /// Index range of the candles with `start_ms <= ts < end_ms`.
    pub fn range(&self, start_ms: i64, end_ms: i64) -> std::ops::Range<usize> {
        let lo = self.ts_ms.partition_point(|&t| t < start_ms);
        let hi = self.ts_ms.partition_point(|&t| t < end_ms);
        lo..hi.max(lo)
    }

    /// A new series holding only the candles at the given sorted, disjoint index ranges.
    pub fn select(&self, ranges: &[std::ops::Range<usize>]) -> MintCandles {
        let mut out = MintCandles::new(self.mint.clone());
        for r in ranges {
            out.ts_ms.extend_from_slice(&self.ts_ms[r.clone()]);
            out.open.extend_from_slice(&self.open[r.clone()]);
            out.high.extend_from_slice(&self.high[r.clone()]);
            out.low.extend_from_slice(&self.low[r.clone()]);
            out.close.extend_from_slice(&self.close[r.clone()]);
            out.volume.extend_from_slice(&self.volume[r.clone()]);
        }
        out
    }
}

/// The Arrow schema of slice and corpus files: `mint`, `ts` (µs, no zone), `interval_s`, OHLCV.
pub fn candle_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("mint", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("interval_s", DataType::Int32, false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Float64, false),
    ]))
}
