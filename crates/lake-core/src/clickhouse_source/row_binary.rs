//! Streaming RowBinary decoder for candle rows, straight into per-mint column vectors.
//!
//! Each row starts with a marker byte the query selects. ClickHouse 18.16 reports an exception raised after
//! the first rows as plain text appended to a 200 answer (newer servers add their own framing); both start at
//! a row boundary, so a missing marker there is how such an error is told apart from data. Every row is also
//! checked against the request (known mint, in order, inside a requested range), so a garbled stream can
//! never turn into candles.

use std::collections::HashMap;

use crate::candles::MintCandles;
use crate::fetch_plan::MintRanges;

/// The first byte of every row (`toUInt8(165)` in the query).
pub const ROW_MARKER: u8 = 0xA5;
/// Fixed bytes of a row after the mint: u32 seconds + five f64.
const FIXED_TAIL: usize = 4 + 5 * 8;
/// Longest mint accepted, in bytes; anything longer is garbage.
const MAX_MINT_BYTES: u64 = 1024;
/// How much exception text is kept for the error message.
const MAX_EXCEPTION_TEXT: usize = 64 * 1024;

/// How a stream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The server appended an exception; the text as received.
    Exception(String),
    /// The bytes are not what the query asked for.
    Garbled(String),
}

/// Decodes the answers for a list of requested mints in the order the queries return them (by bucket, then
/// mint, then time), possibly over several queries, and hands out each mint as soon as the stream has moved past
/// it, in pieces that each belong to one bucket.
pub struct CandleDecoder<'a> {
    requested: &'a [MintRanges],
    bucket_of: Vec<u8>,
    index: HashMap<&'a [u8], usize>,
    out: Vec<MintCandles>,
    counts: Vec<(u64, u64)>,
    emitted: usize,
    current: Option<usize>,
    buf: Vec<u8>,
    exception: Option<Vec<u8>>,
    rows_fetched: u64,
    duplicates_dropped: u64,
}

/// Finished mints of one bucket: a whole bucket, or consecutive mints of it (later pieces follow directly).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBucket {
    /// Bucket index.
    pub bucket: u8,
    /// One series per requested mint of the bucket, in order (possibly empty).
    pub mints: Vec<MintCandles>,
    /// Rows received for the bucket.
    pub rows_fetched: u64,
    /// Duplicate rows dropped in the bucket.
    pub duplicates_dropped: u64,
}

/// What a finished stream produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// One entry per requested mint, in request order (empty series for mints without candles).
    pub mints: Vec<MintCandles>,
    /// Rows received.
    pub rows_fetched: u64,
    /// Rows dropped because their (mint, ts) came already.
    pub duplicates_dropped: u64,
}

impl<'a> CandleDecoder<'a> {
    /// A decoder for rows of the given mints, sorted by mint, all in one bucket.
    pub fn new(requested: &'a [MintRanges]) -> Self {
        Self::with_buckets(requested, vec![0; requested.len()])
    }

    /// A decoder for mints sorted by (bucket, mint), with the bucket of each.
    pub fn with_buckets(requested: &'a [MintRanges], bucket_of: Vec<u8>) -> Self {
        Self {
            requested,
            bucket_of,
            index: requested
                .iter()
                .enumerate()
                .map(|(i, m)| (m.mint.as_bytes(), i))
                .collect(),
            out: requested
                .iter()
                .map(|m| MintCandles::new(m.mint.clone()))
                .collect(),
            counts: vec![(0, 0); requested.len()],
            emitted: 0,
            current: None,
            buf: Vec::new(),
            exception: None,
            rows_fetched: 0,
            duplicates_dropped: 0,
        }
    }

    /// Consumes the next piece of the stream.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if let Some(text) = &mut self.exception {
            let room = MAX_EXCEPTION_TEXT.saturating_sub(text.len());
            text.extend_from_slice(&chunk[..chunk.len().min(room)]);
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        let mut pos = 0;
        while pos < self.buf.len() {
            if self.buf[pos] != ROW_MARKER {
                let rest = self.buf[pos..].to_vec();
                self.exception = Some(rest);
                self.buf.clear();
                return Ok(());
            }
            match self.decode_row(pos)? {
                Some(next) => pos = next,
                None => break,
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// Ends one query's answer (more may follow for later mints): an exception or a cut-off row is an error.
    pub fn end_of_answer(&mut self) -> Result<(), DecodeError> {
        if let Some(text) = self.exception.take() {
            return Err(DecodeError::Exception(
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
        if !self.buf.is_empty() {
            return Err(DecodeError::Garbled(format!(
                "the answer ended in the middle of a row ({} bytes left over)",
                self.buf.len()
            )));
        }
        Ok(())
    }

    /// The mints before `upto` not handed out yet, as consecutive pieces of one bucket each.
    pub fn drain(&mut self, upto: usize) -> Vec<DecodedBucket> {
        let mut out = Vec::new();
        while self.emitted < upto {
            let bucket = self.bucket_of[self.emitted];
            let mut end = self.emitted;
            while end < upto && self.bucket_of[end] == bucket {
                end += 1;
            }
            let (rows, dups) = self.counts[self.emitted..end]
                .iter()
                .fold((0, 0), |(r, d), &(a, b)| (r + a, d + b));
            out.push(DecodedBucket {
                bucket,
                mints: self.out[self.emitted..end]
                    .iter_mut()
                    .map(std::mem::take)
                    .collect(),
                rows_fetched: rows,
                duplicates_dropped: dups,
            });
            self.emitted = end;
        }
        out
    }

    /// Mints no later row can touch: those before the mint being received. Handing them out at once keeps only
    /// one mint per stream in memory.
    pub fn completed(&mut self) -> Vec<DecodedBucket> {
        let upto = self.current.unwrap_or(0);
        self.drain(upto)
    }

    /// Ends the stream: an exception or a cut-off row is an error, never data.
    pub fn finish(mut self) -> Result<Decoded, DecodeError> {
        self.end_of_answer()?;
        Ok(Decoded {
            mints: self.out,
            rows_fetched: self.rows_fetched,
            duplicates_dropped: self.duplicates_dropped,
        })
    }

    /// Decodes the row at `pos` (its marker already checked); `None` when the row is not complete yet.
    fn decode_row(&mut self, pos: usize) -> Result<Option<usize>, DecodeError> {
        let buf = &self.buf;
        let Some((len, p)) = read_length(buf, pos + 1)? else {
            return Ok(None);
        };
        if len > MAX_MINT_BYTES {
            return Err(DecodeError::Garbled(format!("a mint of {len} bytes")));
        }
        let mint_end = p + len as usize;
        let row_end = mint_end + FIXED_TAIL;
        if buf.len() < row_end {
            return Ok(None);
        }
        let mint = &buf[p..mint_end];
        let idx = match self.current {
            Some(i) if self.requested[i].mint.as_bytes() == mint => i,
            current => {
                let Some(&i) = self.index.get(mint) else {
                    return Err(DecodeError::Garbled(format!(
                        "a row for mint {:?}, which was not asked for",
                        String::from_utf8_lossy(mint)
                    )));
                };
                if current.is_some_and(|c| c >= i) || i < self.emitted {
                    return Err(DecodeError::Garbled("rows are not in mint order".into()));
                }
                self.current = Some(i);
                i
            }
        };
        let fixed = &buf[mint_end..row_end];
        let secs = u32::from_le_bytes(fixed[0..4].try_into().expect("4 bytes"));
        let f = |k: usize| {
            f64::from_le_bytes(fixed[4 + 8 * k..12 + 8 * k].try_into().expect("8 bytes"))
        };
        let ohlcv = [f(0), f(1), f(2), f(3), f(4)];
        let ts_ms = i64::from(secs) * 1000;
        self.rows_fetched += 1;
        self.counts[idx].0 += 1;
        // The query's time blocks round windows outwards: rows just outside a window are expected and dropped.
        if !self.requested[idx].contains(ts_ms) {
            return Ok(Some(row_end));
        }
        let series = &mut self.out[idx];
        match series.ts_ms.last() {
            Some(&last) if last == ts_ms => {
                self.duplicates_dropped += 1;
                self.counts[idx].1 += 1;
            }
            Some(&last) if last > ts_ms => {
                return Err(DecodeError::Garbled("rows are not in time order".into()));
            }
            _ => series.push(ts_ms, ohlcv),
        }
        Ok(Some(row_end))
    }
}

/// A RowBinary string length (LEB128) at `p`: the length and the position after it, or `None` when the bytes
/// end first.
fn read_length(buf: &[u8], mut p: usize) -> Result<Option<(u64, usize)>, DecodeError> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let Some(&b) = buf.get(p) else {
            return Ok(None);
        };
        p += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(Some((len, p)));
        }
        shift += 7;
        if shift > 63 {
            return Err(DecodeError::Garbled(
                "a string length is not valid LEB128".into(),
            ));
        }
    }
}

/// Decodes a whole answer of `(marker, String)` rows; a missing marker at a row start is an appended exception.
pub fn decode_marked_strings(body: &[u8]) -> Result<Vec<String>, DecodeError> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        if body[p] != ROW_MARKER {
            return Err(DecodeError::Exception(
                String::from_utf8_lossy(&body[p..]).into_owned(),
            ));
        }
        p += 1;
        let (len, next) = read_length(body, p)?.ok_or_else(|| {
            DecodeError::Garbled("the answer ended inside a string length".into())
        })?;
        p = next;
        if len > MAX_MINT_BYTES || p + len as usize > body.len() {
            return Err(DecodeError::Garbled(
                "the answer ended inside a string".into(),
            ));
        }
        let end = p + len as usize;
        out.push(
            String::from_utf8(body[p..end].to_vec())
                .map_err(|_| DecodeError::Garbled("a mint is not UTF-8".into()))?,
        );
        p = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mint: &str, secs: u32, v: f64) -> Vec<u8> {
        let mut out = vec![ROW_MARKER, mint.len() as u8];
        out.extend_from_slice(mint.as_bytes());
        out.extend_from_slice(&secs.to_le_bytes());
        for _ in 0..5 {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn request() -> Vec<MintRanges> {
        vec![
            MintRanges::new("a", vec![(0, 1_000_000)]),
            MintRanges::new("b", vec![(0, 1_000_000)]),
        ]
    }

    #[test]
    fn decodes_across_any_chunk_boundaries() {
        let req = request();
        let mut stream = row("a", 60, 1.0);
        stream.extend(row("a", 120, 2.0));
        stream.extend(row("a", 120, 9.0));
        stream.extend(row("b", 60, 3.0));
        for cut in 1..stream.len() {
            let mut d = CandleDecoder::new(&req);
            d.feed(&stream[..cut]).unwrap();
            d.feed(&stream[cut..]).unwrap();
            let out = d.finish().unwrap();
            assert_eq!(out.rows_fetched, 4);
            assert_eq!(out.duplicates_dropped, 1);
            assert_eq!(out.mints[0].ts_ms, vec![60_000, 120_000]);
            assert_eq!(
                out.mints[0].close,
                vec![1.0, 2.0],
                "the first of a duplicate pair wins"
            );
            assert_eq!(out.mints[1].ts_ms, vec![60_000]);
        }
    }

    #[test]
    fn buckets_are_handed_out_once_the_stream_moves_past_them() {
        let req = vec![
            MintRanges::new("a", vec![(0, 1_000_000)]),
            MintRanges::new("b", vec![(0, 1_000_000)]),
            MintRanges::new("c", vec![(0, 1_000_000)]),
        ];
        let mut d = CandleDecoder::with_buckets(&req, vec![3, 3, 9]);
        d.feed(&row("a", 60, 1.0)).unwrap();
        assert!(d.completed().is_empty(), "a may still get rows");
        d.feed(&row("b", 60, 1.0)).unwrap();
        d.feed(&row("b", 60, 2.0)).unwrap();
        let first = d.completed();
        assert_eq!(
            (
                first.len(),
                first[0].bucket,
                first[0].mints[0].mint.as_str()
            ),
            (1, 3, "a")
        );
        d.feed(&row("c", 60, 1.0)).unwrap();
        let done = d.completed();
        assert_eq!(done.len(), 1);
        assert_eq!(
            (
                done[0].bucket,
                done[0].mints.len(),
                done[0].rows_fetched,
                done[0].duplicates_dropped
            ),
            (3, 1, 2, 1)
        );
        d.end_of_answer().unwrap();
        let rest = d.drain(3);
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].bucket, rest[0].mints[0].len()), (9, 1));
        // A row for a bucket already handed out is out of order.
        assert!(matches!(
            d.feed(&row("a", 120, 1.0)),
            Err(DecodeError::Garbled(_))
        ));
    }

    #[test]
    fn appended_exception_is_an_error_not_rows() {
        let req = request();
        let mut stream = row("a", 60, 1.0);
        stream.extend_from_slice(b"Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero");
        let mut d = CandleDecoder::new(&req);
        d.feed(&stream).unwrap();
        match d.finish() {
            Err(DecodeError::Exception(text)) => assert!(text.starts_with("Code: 395")),
            other => panic!("expected an exception, got {other:?}"),
        }
    }

    #[test]
    fn truncated_and_garbled_streams_fail() {
        let req = request();
        let full = row("a", 60, 1.0);
        let mut d = CandleDecoder::new(&req);
        d.feed(&full[..full.len() - 1]).unwrap();
        assert!(matches!(d.finish(), Err(DecodeError::Garbled(_))));

        let mut d = CandleDecoder::new(&req);
        assert!(matches!(
            d.feed(&row("zzz", 60, 1.0)),
            Err(DecodeError::Garbled(_))
        ));

        let mut d = CandleDecoder::new(&req);
        let mut s = row("b", 60, 1.0);
        s.extend(row("a", 60, 1.0));
        assert!(
            matches!(d.feed(&s), Err(DecodeError::Garbled(_))),
            "mint order"
        );

        let mut d = CandleDecoder::new(&req);
        d.feed(&row("a", 2_000, 1.0)).unwrap();
        let out = d.finish().unwrap();
        assert_eq!(
            (out.rows_fetched, out.mints[0].len()),
            (1, 0),
            "a row outside the windows is counted, not kept"
        );
    }

    #[test]
    fn marked_strings() {
        let mut body = vec![ROW_MARKER, 1, b'a', ROW_MARKER, 2, b'b', b'c'];
        assert_eq!(decode_marked_strings(&body).unwrap(), vec!["a", "bc"]);
        body.extend_from_slice(b"Code: 1, e.displayText() = DB::Exception: boom");
        assert!(
            matches!(decode_marked_strings(&body), Err(DecodeError::Exception(t)) if t.starts_with("Code: 1"))
        );
        assert!(matches!(
            decode_marked_strings(&[ROW_MARKER, 5, b'a']),
            Err(DecodeError::Garbled(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let req = request();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let mut d = CandleDecoder::new(&req);
            let len = (seed % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(3) {
                        ROW_MARKER
                    } else {
                        seed as u8
                    }
                })
                .collect();
            if d.feed(&bytes).is_ok() {
                let _ = d.finish();
            }
        }
    }
}
