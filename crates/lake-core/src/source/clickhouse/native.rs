//! Streaming decoder of candle answers in ClickHouse's Native format, straight into per-mint column vectors.
//!
//! Native is columnar and costs the server less than RowBinary (measured on 18.16, one core: 5.1–5.9 s against
//! 6.1–6.3 s for 10M rows). An answer is a sequence of blocks: `columns` and `rows` as LEB128, then per column
//! its name, its type and its values. Every block header is checked against the query's exact column names
//! and types, so an exception that a server appends to a 200 answer (18.16: plain `Code: …` text; current
//! releases: an `__exception__` frame) can never be read as rows: it starts where a block header should, and
//! its first byte is not the column count. A block cut off by the end of the answer is an error too.
//!
//! Rows are then checked against what was asked: a known mint, mints ascending, times ascending within a mint,
//! inside the requested ranges (rows just outside are counted and dropped). A server that was trusted to send
//! its key order without `ORDER BY` and did not is reported as [`DecodeError::Unordered`], so the caller can
//! ask again with `ORDER BY` rather than write a wrong file.

use std::collections::{HashMap, VecDeque};

use crate::source::fetched_mint::FetchedMint;
use crate::spec::alert::MAX_MINT_BYTES;
use crate::spec::fetch_plan::MintRanges;

/// Names and Native types of the columns every candle query selects, in order.
pub const CANDLE_COLUMNS: [(&str, &str); 7] = [
    ("q_mint", "String"),
    ("q_ts", "UInt32"),
    ("q_open", "Float64"),
    ("q_high", "Float64"),
    ("q_low", "Float64"),
    ("q_close", "Float64"),
    ("q_volume", "Float64"),
];
/// The column a query that fingerprints its rows selects after the candle columns: each row's version.
pub const VERSION_COLUMN: (&str, &str) = ("q_version", "UInt32");
/// Most rows one block may claim (servers send 65,536 by default); more is garbage.
const MAX_BLOCK_ROWS: u64 = 1 << 24;
/// How much exception text is kept for the error message.
const MAX_EXCEPTION_TEXT: usize = 64 * 1024;

/// How a stream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The server appended an exception; the text as received.
    Exception(String),
    /// The bytes are not what the query asked for.
    Garbled(String),
    /// Rows came out of key order from a server trusted to send key order without `ORDER BY`.
    Unordered(String),
}

/// Which rows an answer may hold.
#[derive(Debug, Clone)]
pub enum Expected<'a> {
    /// Exactly these mints (sorted, unique), each within its ranges; every one is handed out, even when empty.
    Mints(&'a [MintRanges]),
    /// Any mint, times within `[start_ms, end_ms)`; mints are handed out as they appear.
    Range(i64, i64),
}

/// Decodes one answer (or consecutive answers for consecutive requests) and hands out finished mints.
pub struct CandleDecoder<'a> {
    expected: Expected<'a>,
    index: HashMap<&'a [u8], usize>,
    /// Whether a row out of order means the server broke a trusted order (else: a garbled answer).
    trusted_order: bool,
    buf: Vec<u8>,
    exception: Option<Vec<u8>>,
    current: Option<(usize, FetchedMint)>,
    /// Requested mints before this one are handed out (in `Mints` mode).
    next_requested: usize,
    ready: VecDeque<FetchedMint>,
    last_mint: Option<Vec<u8>>,
    /// How far the block at the start of `buf` has been scanned (blocks arrive in many pieces).
    scan: Scan,
    /// Whether rows carry [`VERSION_COLUMN`], counted per day into [`FetchedMint::day_rows`].
    versions: bool,
}

impl<'a> CandleDecoder<'a> {
    /// A decoder for rows as `expected` says; `trusted_order` when the query had no `ORDER BY`.
    pub fn new(expected: Expected<'a>, trusted_order: bool) -> Self {
        let index = match &expected {
            Expected::Mints(list) => list
                .iter()
                .enumerate()
                .map(|(i, m)| (m.mint.as_bytes(), i))
                .collect(),
            Expected::Range(..) => HashMap::new(),
        };
        Self {
            expected,
            index,
            trusted_order,
            buf: Vec::new(),
            exception: None,
            current: None,
            next_requested: 0,
            ready: VecDeque::new(),
            last_mint: None,
            scan: Scan::default(),
            versions: false,
        }
    }

    /// Expects [`VERSION_COLUMN`] after the candle columns and counts each mint's rows per day with it.
    pub fn with_versions(mut self) -> Self {
        self.versions = true;
        self
    }

    fn columns(&self) -> usize {
        CANDLE_COLUMNS.len() + usize::from(self.versions)
    }

    /// Consumes the next piece of the answer.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if let Some(text) = &mut self.exception {
            let room = MAX_EXCEPTION_TEXT.saturating_sub(text.len());
            text.extend_from_slice(&chunk[..chunk.len().min(room)]);
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        let mut pos = 0;
        while pos < self.buf.len() {
            if usize::from(self.buf[pos]) != self.columns() {
                // Not a block header: the server's exception text follows (only ever at a block boundary).
                self.exception = Some(self.buf[pos..].to_vec());
                self.buf.clear();
                return Ok(());
            }
            match parse_block(&self.buf, pos, &mut self.scan, self.versions)? {
                Some(block) => {
                    self.scan = Scan::default();
                    let end = block.end;
                    self.decode_block(&block)?;
                    pos = end;
                }
                None => break,
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// Finished mints, in order.
    pub fn take_ready(&mut self) -> impl Iterator<Item = FetchedMint> + '_ {
        self.ready.drain(..)
    }

    /// Ends the answer: an exception or a cut-off block is an error; the last mint (and, when a list was
    /// requested, every requested mint that got no rows) is handed out.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(text) = self.exception.take() {
            return Err(DecodeError::Exception(
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
        if !self.buf.is_empty() {
            return Err(DecodeError::Garbled(format!(
                "the answer ended in the middle of a block ({} bytes left over)",
                self.buf.len()
            )));
        }
        if let Some((_, done)) = self.current.take() {
            self.ready.push_back(done);
        }
        if let Expected::Mints(list) = self.expected {
            self.emit_requested_before(list.len(), list);
        }
        Ok(())
    }

    /// Hands out the requested mints before index `upto` that are not handed out yet (they had no rows).
    fn emit_requested_before(&mut self, upto: usize, list: &[MintRanges]) {
        while self.next_requested < upto {
            self.ready
                .push_back(FetchedMint::empty(&list[self.next_requested].mint));
            self.next_requested += 1;
        }
    }

    /// Makes `mint` the current mint: hands out the previous one and checks the order.
    fn switch_to(&mut self, mint: &[u8]) -> Result<(), DecodeError> {
        if let Some(last) = &self.last_mint {
            if last.as_slice() >= mint {
                return Err(out_of_order(self.trusted_order, "mint"));
            }
        }
        if let Some((_, done)) = self.current.take() {
            self.ready.push_back(done);
        }
        let name = std::str::from_utf8(mint)
            .map_err(|_| DecodeError::Garbled("a mint is not UTF-8".into()))?;
        let idx = match self.expected {
            Expected::Mints(list) => {
                let Some(&i) = self.index.get(mint) else {
                    return Err(DecodeError::Garbled(format!(
                        "a row for mint {name:?}, which was not asked for"
                    )));
                };
                self.emit_requested_before(i, list);
                self.next_requested = i + 1;
                i
            }
            Expected::Range(..) => 0,
        };
        self.last_mint = Some(mint.to_vec());
        self.current = Some((idx, FetchedMint::empty(name)));
        Ok(())
    }

    fn decode_block(&mut self, block: &Block) -> Result<(), DecodeError> {
        let buf = std::mem::take(&mut self.buf);
        let outcome = self.decode_rows(&buf, block);
        self.buf = buf;
        outcome
    }

    fn decode_rows(&mut self, buf: &[u8], block: &Block) -> Result<(), DecodeError> {
        let ts_at = |i: usize| {
            let p = block.fixed[0] + 4 * i;
            i64::from(u32::from_le_bytes(
                buf[p..p + 4].try_into().expect("4 bytes"),
            )) * 1000
        };
        let f64_at = |c: usize, i: usize| {
            let p = block.fixed[1 + c] + 8 * i;
            f64::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"))
        };
        let versions = self.versions;
        let version_at = |i: usize| {
            let p = block.fixed[6] + 4 * i;
            u32::from_le_bytes(buf[p..p + 4].try_into().expect("4 bytes"))
        };
        let trusted = self.trusted_order;
        let rows = block.mints.len();
        let mut i = 0;
        while i < rows {
            let (start, end) = block.mints[i];
            let mint = &buf[start..end];
            // The run of rows of this mint in the block.
            let mut j = i + 1;
            while j < rows && {
                let (s, e) = block.mints[j];
                &buf[s..e] == mint
            } {
                j += 1;
            }
            if self.last_mint.as_deref() != Some(mint) {
                self.switch_to(mint)?;
            }
            let (idx, fetched) = self.current.as_mut().expect("a current mint");
            fetched.rows_fetched += (j - i) as u64;
            let (first, last) = (ts_at(i), ts_at(j - 1));
            let range = match self.expected {
                Expected::Mints(list) => list[*idx].range_of(first),
                Expected::Range(lo, hi) => (lo <= first).then_some((lo, hi)),
            };
            let after_previous = fetched.candles.ts_ms.last().is_none_or(|&t| t < first);
            let increasing = (i + 1..j).all(|k| ts_at(k - 1) < ts_at(k));
            if after_previous && increasing && range.is_some_and(|(_, hi)| last < hi) {
                // The common case: the whole run is new, in order and inside one range: copy it as columns.
                if versions {
                    for r in i..j {
                        fetched.note_row((ts_at(r) / 1000) as u32, version_at(r));
                    }
                }
                let c = &mut fetched.candles;
                c.ts_ms.extend((i..j).map(ts_at));
                for (k, column) in [
                    &mut c.open,
                    &mut c.high,
                    &mut c.low,
                    &mut c.close,
                    &mut c.volume,
                ]
                .into_iter()
                .enumerate()
                {
                    column.extend((i..j).map(|r| f64_at(k, r)));
                }
            } else {
                for r in i..j {
                    let ts_ms = ts_at(r);
                    let inside = match self.expected {
                        Expected::Mints(list) => list[*idx].contains(ts_ms),
                        Expected::Range(lo, hi) => (lo..hi).contains(&ts_ms),
                    };
                    // Queries bound each mint by its covering range; rows between its windows are dropped here.
                    if !inside {
                        continue;
                    }
                    if versions {
                        fetched.note_row((ts_ms / 1000) as u32, version_at(r));
                    }
                    match fetched.candles.ts_ms.last() {
                        Some(&last) if last == ts_ms => fetched.duplicates_dropped += 1,
                        Some(&last) if last > ts_ms => return Err(out_of_order(trusted, "time")),
                        _ => fetched.candles.push(
                            ts_ms,
                            [
                                f64_at(0, r),
                                f64_at(1, r),
                                f64_at(2, r),
                                f64_at(3, r),
                                f64_at(4, r),
                            ],
                        ),
                    }
                }
            }
            i = j;
        }
        Ok(())
    }
}

fn out_of_order(trusted: bool, what: &str) -> DecodeError {
    if trusted {
        DecodeError::Unordered(format!("rows came out of {what} order"))
    } else {
        DecodeError::Garbled(format!("rows are not in {what} order"))
    }
}

/// Where the values of one complete block lie in the buffer.
struct Block {
    /// Byte range of each row's mint.
    mints: Vec<(usize, usize)>,
    /// Start of the `q_ts` values, then of the five float columns, then of the versions (when read).
    fixed: [usize; 7],
    /// Position after the block.
    end: usize,
}

/// A LEB128 number at `p`: the value and the position after it, or `None` when the bytes end first.
fn read_varint(buf: &[u8], mut p: usize) -> Result<Option<(u64, usize)>, DecodeError> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let Some(&b) = buf.get(p) else {
            return Ok(None);
        };
        p += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(Some((value, p)));
        }
        shift += 7;
        if shift > 63 {
            return Err(DecodeError::Garbled("a length is not valid LEB128".into()));
        }
    }
}

/// A byte range `(start, end)` in the buffer, and the position after it.
type Span = ((usize, usize), usize);

/// A LEB128-prefixed string at `p`: its byte range, or `None` when the bytes end first.
fn read_string(buf: &[u8], p: usize, max: u64) -> Result<Option<Span>, DecodeError> {
    let Some((len, p)) = read_varint(buf, p)? else {
        return Ok(None);
    };
    if len > max {
        return Err(DecodeError::Garbled(format!("a string of {len} bytes")));
    }
    let end = p + len as usize;
    Ok((end <= buf.len()).then_some(((p, end), end)))
}

/// How far a block that arrived in pieces has been scanned, relative to its start: a block of 65,536 rows
/// spans hundreds of network pieces, and rescanning its mints from the start for each would be quadratic.
#[derive(Debug, Default)]
struct Scan {
    rows: usize,
    /// Byte range of each mint scanned so far.
    mints: Vec<(usize, usize)>,
    /// Offset after the last mint scanned (or after the first column's header), once that header is read.
    next: Option<usize>,
}

/// Checks that the column name and type at `p` are `want`; the position after them, or `None` if cut off.
fn read_column_header(
    buf: &[u8],
    mut p: usize,
    c: usize,
    want: (&str, &str),
) -> Result<Option<usize>, DecodeError> {
    for want in [want.0, want.1] {
        let Some(((s, e), next)) = read_string(buf, p, 256)? else {
            return Ok(None);
        };
        if &buf[s..e] != want.as_bytes() {
            return Err(DecodeError::Garbled(format!(
                "column {} of the answer is {:?}, not {want:?}",
                c + 1,
                String::from_utf8_lossy(&buf[s..e])
            )));
        }
        p = next;
    }
    Ok(Some(p))
}

/// Parses the block at `pos` (its first byte already checked), resuming `scan`: `None` until all of it is in
/// `buf`. `versions`: the block ends with [`VERSION_COLUMN`].
fn parse_block(
    buf: &[u8],
    pos: usize,
    scan: &mut Scan,
    versions: bool,
) -> Result<Option<Block>, DecodeError> {
    let columns_wanted = CANDLE_COLUMNS.len() + usize::from(versions);
    if scan.next.is_none() {
        let Some((columns, p)) = read_varint(buf, pos)? else {
            return Ok(None);
        };
        if columns != columns_wanted as u64 {
            return Err(DecodeError::Garbled(format!(
                "a block of {columns} columns"
            )));
        }
        let Some((rows, p)) = read_varint(buf, p)? else {
            return Ok(None);
        };
        if rows > MAX_BLOCK_ROWS {
            return Err(DecodeError::Garbled(format!("a block of {rows} rows")));
        }
        let Some(p) = read_column_header(buf, p, 0, CANDLE_COLUMNS[0])? else {
            return Ok(None);
        };
        scan.rows = rows as usize;
        scan.mints.reserve(scan.rows);
        scan.next = Some(p - pos);
    }
    let mut p = pos + scan.next.unwrap_or_default();
    while scan.mints.len() < scan.rows {
        let Some(((s, e), next)) = read_string(buf, p, MAX_MINT_BYTES as u64)? else {
            scan.next = Some(p - pos);
            return Ok(None);
        };
        scan.mints.push((s - pos, e - pos));
        p = next;
    }
    scan.next = Some(p - pos);
    let rows = scan.rows;
    let mut fixed = [0usize; 7];
    let version = versions.then_some(&VERSION_COLUMN);
    for (c, (name, ty)) in CANDLE_COLUMNS.iter().chain(version).enumerate().skip(1) {
        let Some(next) = read_column_header(buf, p, c, (name, ty))? else {
            return Ok(None);
        };
        p = next;
        {
            let width = if *ty == "UInt32" { 4 } else { 8 };
            fixed[c - 1] = p;
            p += width * rows;
            if p > buf.len() {
                return Ok(None);
            }
        }
    }
    Ok(Some(Block {
        mints: scan
            .mints
            .iter()
            .map(|&(s, e)| (pos + s, pos + e))
            .collect(),
        fixed,
        end: p,
    }))
}

/// Decodes a whole answer of one `String` column named `name` (e.g. a list of mints), failing on an appended
/// exception or a cut-off block.
pub fn decode_strings(body: &[u8], name: &str) -> Result<Vec<String>, DecodeError> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        if body[p] != 1 {
            return Err(DecodeError::Exception(
                String::from_utf8_lossy(&body[p..body.len().min(p + MAX_EXCEPTION_TEXT)])
                    .into_owned(),
            ));
        }
        let cut = || DecodeError::Garbled("the answer ended in the middle of a block".into());
        let (_, q) = read_varint(body, p)?.ok_or_else(cut)?;
        let (rows, mut q) = read_varint(body, q)?.ok_or_else(cut)?;
        for want in [name, "String"] {
            let ((s, e), next) = read_string(body, q, 256)?.ok_or_else(cut)?;
            if &body[s..e] != want.as_bytes() {
                return Err(DecodeError::Garbled(format!(
                    "the answer's column is {:?}, not {want:?}",
                    String::from_utf8_lossy(&body[s..e])
                )));
            }
            q = next;
        }
        for _ in 0..rows {
            let ((s, e), next) = read_string(body, q, MAX_MINT_BYTES as u64)?.ok_or_else(cut)?;
            out.push(
                String::from_utf8(body[s..e].to_vec())
                    .map_err(|_| DecodeError::Garbled("a mint is not UTF-8".into()))?,
            );
            q = next;
        }
        p = q;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn put_str(out: &mut Vec<u8>, s: &[u8]) {
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s);
    }

    /// A Native block of candle rows `(mint, seconds, value for all five floats)`.
    pub(crate) fn block(rows: &[(&str, u32, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, CANDLE_COLUMNS.len() as u64);
        put_varint(&mut out, rows.len() as u64);
        for (c, (name, ty)) in CANDLE_COLUMNS.iter().enumerate() {
            put_str(&mut out, name.as_bytes());
            put_str(&mut out, ty.as_bytes());
            for &(mint, secs, v) in rows {
                match c {
                    0 => put_str(&mut out, mint.as_bytes()),
                    1 => out.extend_from_slice(&secs.to_le_bytes()),
                    _ => out.extend_from_slice(&(v + c as f64).to_le_bytes()),
                }
            }
        }
        out
    }

    fn request() -> Vec<MintRanges> {
        vec![
            MintRanges::new("a", vec![(0, 1_000_000)]),
            MintRanges::new("b", vec![(0, 1_000_000)]),
            MintRanges::new("c", vec![(0, 1_000_000)]),
        ]
    }

    fn decode(
        expected: Expected<'_>,
        trusted: bool,
        pieces: &[&[u8]],
    ) -> Result<Vec<FetchedMint>, DecodeError> {
        let mut d = CandleDecoder::new(expected, trusted);
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p)?;
            out.extend(d.take_ready());
        }
        d.finish()?;
        out.extend(d.take_ready());
        Ok(out)
    }

    #[test]
    fn decodes_across_any_chunk_boundaries_and_hands_out_every_requested_mint() {
        let req = request();
        let mut stream = block(&[("a", 60, 1.0), ("a", 120, 2.0), ("a", 120, 9.0)]);
        stream.extend(block(&[("c", 60, 3.0)]));
        for cut in 1..stream.len() {
            let out = decode(
                Expected::Mints(&req),
                true,
                &[&stream[..cut], &stream[cut..]],
            )
            .unwrap();
            let names: Vec<&str> = out.iter().map(|m| m.candles.mint.as_str()).collect();
            assert_eq!(
                names,
                ["a", "b", "c"],
                "b had no rows and is still handed out"
            );
            assert_eq!(out[0].candles.ts_ms, vec![60_000, 120_000]);
            assert_eq!(
                out[0].candles.close,
                vec![6.0, 7.0],
                "the first of a duplicate pair wins"
            );
            assert_eq!((out[0].rows_fetched, out[0].duplicates_dropped), (3, 1));
            assert!(out[1].candles.is_empty());
            assert_eq!(out[2].candles.open, vec![5.0]);
        }
    }

    #[test]
    fn mints_are_handed_out_as_soon_as_the_answer_moves_past_them() {
        let req = request();
        let mut d = CandleDecoder::new(Expected::Mints(&req), true);
        d.feed(&block(&[("a", 60, 1.0)])).unwrap();
        assert_eq!(d.take_ready().count(), 0, "a may still get rows");
        d.feed(&block(&[("c", 60, 1.0)])).unwrap();
        let ready: Vec<String> = d.take_ready().map(|m| m.candles.mint).collect();
        assert_eq!(ready, ["a", "b"]);
    }

    #[test]
    fn an_appended_exception_is_an_error_not_rows() {
        let req = request();
        let mut stream = block(&[("a", 60, 1.0)]);
        stream.extend_from_slice(
            b"Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero",
        );
        match decode(Expected::Mints(&req), true, &[&stream]) {
            Err(DecodeError::Exception(text)) => assert!(text.starts_with("Code: 395")),
            other => panic!("expected an exception, got {other:?}"),
        }
        // The framing of current releases starts at a block boundary too.
        let mut framed = block(&[("a", 60, 1.0)]);
        framed.extend_from_slice(b"__exception__ABCDEFGHIJKLMNOP\nCode: 241. DB::Exception: Memory limit\n43 ABCDEFGHIJKLMNOP__exception__\n");
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&framed]),
            Err(DecodeError::Exception(t)) if t.contains("Memory limit")
        ));
    }

    #[test]
    fn truncated_garbled_and_unexpected_answers_fail() {
        let req = request();
        let full = block(&[("a", 60, 1.0)]);
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&full[..full.len() - 1]]),
            Err(DecodeError::Garbled(_))
        ));
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&block(&[("zzz", 60, 1.0)])]),
            Err(DecodeError::Garbled(_))
        ));
        let mut wrong_type = block(&[("a", 60, 1.0)]);
        let at = wrong_type.windows(6).position(|w| w == b"UInt32").unwrap();
        wrong_type[at..at + 6].copy_from_slice(b"UInt64");
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&wrong_type]),
            Err(DecodeError::Garbled(m)) if m.contains("UInt64")
        ));
        let out = decode(Expected::Mints(&req), true, &[&block(&[("a", 2_000, 1.0)])]).unwrap();
        assert_eq!(
            (out[0].rows_fetched, out[0].candles.len()),
            (1, 0),
            "a row outside the ranges is counted, not kept"
        );
    }

    #[test]
    fn order_breaks_are_unordered_when_trusted_and_garbled_when_ordered_by() {
        let req = request();
        let backwards = block(&[("b", 60, 1.0), ("a", 60, 1.0)]);
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&backwards]),
            Err(DecodeError::Unordered(_))
        ));
        assert!(matches!(
            decode(Expected::Mints(&req), false, &[&backwards]),
            Err(DecodeError::Garbled(_))
        ));
        let time_back = block(&[("a", 120, 1.0), ("a", 60, 1.0)]);
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&time_back]),
            Err(DecodeError::Unordered(_))
        ));
        // A mint coming back after another one is a break even across blocks.
        let mut split = block(&[("a", 60, 1.0), ("b", 60, 1.0)]);
        split.extend(block(&[("a", 120, 1.0)]));
        assert!(matches!(
            decode(Expected::Mints(&req), true, &[&split]),
            Err(DecodeError::Unordered(_))
        ));
    }

    #[test]
    fn a_run_across_two_ranges_keeps_only_what_lies_inside() {
        // Two windows of mint `a` read together: rows between them are fetched, counted and dropped.
        let req = [MintRanges::new(
            "a",
            vec![(60_000, 180_000), (600_000, 720_000)],
        )];
        let rows: Vec<(&str, u32, f64)> = (1..13).map(|m| ("a", m * 60, f64::from(m))).collect();
        let out = decode(Expected::Mints(&req), true, &[&block(&rows)]).unwrap();
        assert_eq!(out[0].rows_fetched, 12);
        assert_eq!(
            out[0].candles.ts_ms,
            vec![60_000, 120_000, 600_000, 660_000]
        );
        assert_eq!(out[0].candles.volume, vec![7.0, 8.0, 16.0, 17.0]);
    }

    #[test]
    fn range_mode_takes_any_mint_within_the_range() {
        let stream = block(&[("x", 60, 1.0), ("x", 7_200, 1.0), ("y", 120, 1.0)]);
        let out = decode(Expected::Range(0, 3_600_000), true, &[&stream]).unwrap();
        let got: Vec<(&str, usize)> = out
            .iter()
            .map(|m| (m.candles.mint.as_str(), m.candles.len()))
            .collect();
        assert_eq!(got, [("x", 1), ("y", 1)]);
        assert!(decode(Expected::Range(0, 1), true, &[]).unwrap().is_empty());
    }

    #[test]
    fn strings() {
        let mut body = Vec::new();
        put_varint(&mut body, 1);
        put_varint(&mut body, 2);
        put_str(&mut body, b"m");
        put_str(&mut body, b"String");
        put_str(&mut body, b"a");
        put_str(&mut body, b"bc");
        assert_eq!(decode_strings(&body, "m").unwrap(), vec!["a", "bc"]);
        body.extend_from_slice(b"Code: 1, e.displayText() = DB::Exception: boom");
        assert!(
            matches!(decode_strings(&body, "m"), Err(DecodeError::Exception(t)) if t.starts_with("Code: 1"))
        );
        assert!(matches!(
            decode_strings(&body[..body.len() - 60], "m"),
            Err(DecodeError::Garbled(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let req = request();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let valid = block(&[("a", 60, 1.0), ("b", 120, 2.0)]);
        for round in 0..3000 {
            let mut bytes = valid.clone();
            let flips = 1 + (seed % 4) as usize;
            for _ in 0..flips {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            if round % 3 == 0 {
                bytes.truncate((seed as usize) % bytes.len());
            }
            let _ = decode(Expected::Mints(&req), true, &[&bytes]);
            let _ = decode(Expected::Range(0, i64::MAX), false, &[&bytes]);
        }
    }

    #[test]
    fn versions_are_counted_per_day_with_duplicates_and_only_inside_the_ranges() {
        const DAY: u32 = 86_400;
        let rows = [
            ("a", DAY - 60, 7u32),
            ("a", DAY, 3),
            ("a", DAY, 9),
            ("a", DAY + 60, 5),
            ("a", 3 * DAY, 4),
            ("b", DAY + 120, 2),
        ];
        let mut body = block(&rows.map(|(m, t, _)| (m, t, 1.0)));
        // The same block with the version column appended: the header counts 8 columns.
        body[0] = 8;
        body.extend_from_slice(&[9]);
        body.extend_from_slice(b"q_version");
        body.extend_from_slice(&[6]);
        body.extend_from_slice(b"UInt32");
        for (_, _, v) in rows {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let req = vec![
            MintRanges::new("a", vec![(0, 2 * i64::from(DAY) * 1000)]),
            MintRanges::new("b", vec![(0, 2 * i64::from(DAY) * 1000)]),
        ];
        let mut d = CandleDecoder::new(Expected::Mints(&req), false).with_versions();
        for piece in body.chunks(7) {
            d.feed(piece).unwrap();
        }
        d.finish().unwrap();
        let out: Vec<FetchedMint> = d.take_ready().collect();
        let days = |m: &FetchedMint| {
            m.day_rows
                .iter()
                .map(|r| (r.day, r.rows, r.max_version))
                .collect::<Vec<_>>()
        };
        // Day 3 lies outside the request: neither kept nor counted. The duplicate counts, and its version too.
        assert_eq!(days(&out[0]), vec![(0, 1, 7), (1, 3, 9)]);
        assert_eq!(out[0].candles.len(), 3);
        assert_eq!(days(&out[1]), vec![(1, 1, 2)]);
        // Without the flag, an 8-column answer is not what was asked for.
        let mut plain = CandleDecoder::new(Expected::Mints(&req), false);
        assert!(plain.feed(&body).is_ok() && plain.finish().is_err());
    }
}
