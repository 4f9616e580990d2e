//! Chunk encoding: how a run of samples becomes bytes, and back.
//!
//! Owns the bit-level format of one chunk. Knows nothing of sled, series or
//! windows: it turns timestamps and columns of `f64` into a byte string.
//!
//! ```text
//! chunk := version:u8(=1) ncols:u8 block_len:varint count:varint
//!          first_ts:zigzag-varint nruns:varint (delta:varint run:varint)*nruns
//!          (col_len:varint col_bytes)*ncols
//! ```
//!
//! Timestamps are run-length encoded deltas: a collector that ticks every
//! second for half an hour writes one run, `(1000, 1799)`, whatever the count
//! (Gorilla's delta-of-delta would still spend one bit a sample).
//!
//! Each column is a bit stream of blocks of `block_len` values (the last one
//! may be shorter). A block picks the cheapest of three modes, given the last
//! value of the block before it (`prev`, 0.0 at the start):
//!
//! ```text
//! 00                             repeat: every value is bit-identical to prev
//! 01 p:4 order:1 k:6 first        scaled integers: x = round(v * 10^p) is exact for
//!    [shift:5 codes...]          every value; residuals (first differences from
//!                                round(prev * 10^p), or second differences) are
//!                                zigzagged; the first is an exp-Golomb code of
//!                                order 0; k = 63 means every other residual is
//!                                zero and nothing follows; otherwise the others,
//!                                shifted right by the low zero bits they all
//!                                share, are exp-Golomb codes of order k
//! 10 gorilla...                  XOR with the previous value (Gorilla, VLDB 2015):
//!                                0 | 10 meaningful-bits | 11 lz:5 len-1:6 bits
//! ```
//!
//! Scaled integers are lossless: a block uses them only when `x / 10^p`
//! gives back the very same bits. Values that the store rounded to a
//! per-metric precision always qualify; noisy full-precision doubles fall
//! back to Gorilla.

use thiserror::Error;

mod bits;

use bits::{BitReader, BitWriter, empty, write_exp_golomb};
pub use bits::{get_varint, put_prefixed, put_varint, unzigzag, zigzag};

/// The chunk format written by this module.
pub const CHUNK_VERSION: u8 = 1;

const MODE_REPEAT: u64 = 0b00;
const MODE_INT: u64 = 0b01;
const MODE_XOR: u64 = 0b10;
const MAX_DECIMALS: usize = 9;
const ALL_ZERO_K: u32 = 63;
const POW10: [f64; MAX_DECIMALS + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Largest magnitude of a scaled integer: every such integer is exact in an f64.
const MAX_SCALED: f64 = 9_007_199_254_740_992.0; // 2^53
/// Most rows a chunk may claim; the store writes far fewer (a 30-minute
/// window at 1 s is 1,800). Bounds what corrupt bytes can make us allocate.
pub const MAX_CHUNK_ROWS: usize = 1 << 20;

/// Why bytes could not be decoded as a chunk.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("chunk ends early (truncated or corrupt)")]
    Truncated,
    #[error(
        "chunk format version {0} is not known to this build (it reads version {CHUNK_VERSION})"
    )]
    UnknownVersion(u8),
    #[error("chunk is corrupt: {0}")]
    Corrupt(&'static str),
}

// ---------------------------------------------------------------------------
// Value columns

fn scaled(v: f64, p: usize) -> Option<i64> {
    let s = (v * POW10[p]).round();
    (s.is_finite() && s.abs() < MAX_SCALED).then_some(s as i64)
}

fn unscaled(x: i64, p: usize) -> f64 {
    x as f64 / POW10[p]
}

/// The integer that `prev` stands for at scale `p`; both sides compute it the same way.
fn prev_scaled(prev: f64, p: usize) -> i64 {
    scaled(prev, p).unwrap_or(0)
}

/// Rounds `v` to `digits` decimal places, as the store does for a series
/// with a precision (beyond [`MAX_DECIMALS`] the value is kept as is).
pub fn round_to(v: f64, digits: u8) -> f64 {
    let p = usize::from(digits);
    if p > MAX_DECIMALS {
        return v;
    }
    match scaled(v, p) {
        Some(x) => unscaled(x, p),
        None => v,
    }
}

/// The smallest number of decimals at which every value is an exact scaled integer.
fn exact_decimals(values: &[f64]) -> Option<usize> {
    'p: for p in 0..=MAX_DECIMALS {
        for &v in values {
            match scaled(v, p) {
                Some(x) if unscaled(x, p).to_bits() == v.to_bits() => {}
                _ => continue 'p,
            }
        }
        return Some(p);
    }
    None
}

/// Zigzagged residuals of the scaled integers, first or second order.
fn residuals(xs: &[i64], prev: i64, order2: bool, out: &mut Vec<u64>) {
    out.clear();
    let mut last = prev;
    let mut last_d = 0i64;
    for &x in xs {
        let d = x.wrapping_sub(last);
        let r = if order2 { d.wrapping_sub(last_d) } else { d };
        out.push(zigzag(r));
        last = x;
        last_d = d;
    }
}

/// Low zero bits that every (zigzagged) residual shares, up to 31.
fn shared_shift(codes: &[u64]) -> u32 {
    let all = codes.iter().fold(0u64, |acc, &c| acc | unzigzag(c) as u64);
    all.trailing_zeros().min(31)
}

/// The exp-Golomb order that writes `codes >> shift` in the fewest bits, and that count.
fn best_k(codes: &[u64], shift: u32) -> (u32, u64) {
    if codes.iter().all(|&c| c == 0) {
        return (ALL_ZERO_K, 0);
    }
    let mut best = (0u32, u64::MAX);
    for k in 0..56u32 {
        let bits: u64 = codes
            .iter()
            .map(|&c| {
                let c = zigzag(unzigzag(c) >> shift);
                let n = 64 - (c + (1u64 << k)).leading_zeros();
                u64::from(2 * n - 1 - k)
            })
            .sum();
        if bits < best.1 {
            best = (k, bits);
        } else if bits > best.1 {
            // The cost is convex in k: past the minimum it only grows.
            break;
        }
    }
    best
}

fn encode_block(w: &mut BitWriter, values: &[f64], prev: f64, scratch: &mut Scratch) {
    if values.iter().all(|v| v.to_bits() == prev.to_bits()) {
        w.write(MODE_REPEAT, 2);
        return;
    }
    if let Some(p) = exact_decimals(values) {
        scratch.xs.clear();
        scratch
            .xs
            .extend(values.iter().map(|&v| scaled(v, p).unwrap_or(0)));
        let prev_x = prev_scaled(prev, p);
        residuals(&scratch.xs, prev_x, false, &mut scratch.r1);
        residuals(&scratch.xs, prev_x, true, &mut scratch.r2);
        // The first residual bridges from the block before, often at another
        // level: it gets its own code, so that the rest can be "all zero".
        // The others drop the low zero bits they all share (sectors of 512
        // bytes, pages of 4096).
        let s1 = shared_shift(&scratch.r1[1..]);
        let s2 = shared_shift(&scratch.r2[1..]);
        let (k1, c1) = best_k(&scratch.r1[1..], s1);
        let (k2, c2) = best_k(&scratch.r2[1..], s2);
        let (order2, k, shift, codes) = if c2 < c1 {
            (true, k2, s2, &scratch.r2)
        } else {
            (false, k1, s1, &scratch.r1)
        };
        w.write(MODE_INT, 2);
        w.write(p as u64, 4);
        w.write(u64::from(order2), 1);
        w.write(u64::from(k), 6);
        write_exp_golomb(w, codes[0], 0);
        if k != ALL_ZERO_K {
            w.write(u64::from(shift), 5);
            for &c in &codes[1..] {
                write_exp_golomb(w, zigzag(unzigzag(c) >> shift), k);
            }
        }
        return;
    }
    w.write(MODE_XOR, 2);
    let mut last = prev.to_bits();
    let mut window: Option<(u32, u32)> = None;
    for &v in values {
        let bits = v.to_bits();
        let x = bits ^ last;
        last = bits;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        match window {
            Some((wl, wt)) if lz >= wl && tz >= wt => {
                w.write(0b10, 2);
                w.write(x >> wt, 64 - wl - wt);
            }
            _ => {
                let len = 64 - lz - tz;
                w.write(0b11, 2);
                w.write(u64::from(lz), 5);
                w.write(u64::from(len - 1), 6);
                w.write(x >> tz, len);
                window = Some((lz, tz));
            }
        }
    }
}

fn decode_block(
    r: &mut BitReader<'_>,
    n: usize,
    prev: f64,
    out: &mut Vec<f64>,
) -> Result<(), CodecError> {
    match r.read_short(2)? {
        MODE_REPEAT => out.extend(std::iter::repeat_n(prev, n)),
        MODE_INT => {
            let p = r.read_short(4)? as usize;
            if p > MAX_DECIMALS {
                return Err(CodecError::Corrupt("decimal scale out of range"));
            }
            let order2 = r.read_bit()?;
            let k = r.read_short(6)? as u32;
            let mut last = prev_scaled(prev, p);
            let mut last_d = 0i64;
            let first = unzigzag(r.read_exp_golomb(0)?);
            let shift = if k == ALL_ZERO_K {
                0
            } else if k > 55 {
                return Err(CodecError::Corrupt("exp-Golomb order out of range"));
            } else {
                r.read_short(5)? as u32
            };
            for i in 0..n {
                let res = if i == 0 {
                    first
                } else if k == ALL_ZERO_K {
                    0
                } else {
                    unzigzag(r.read_exp_golomb(k)?).wrapping_shl(shift)
                };
                let d = if order2 {
                    last_d.wrapping_add(res)
                } else {
                    res
                };
                let x = last.wrapping_add(d);
                out.push(unscaled(x, p));
                last = x;
                last_d = d;
            }
        }
        MODE_XOR => {
            let mut last = prev.to_bits();
            let mut window = (0u32, 0u32);
            for _ in 0..n {
                if r.read_bit()? {
                    if r.read_bit()? {
                        let lz = r.read_short(5)? as u32;
                        let len = r.read_short(6)? as u32 + 1;
                        if lz + len > 64 {
                            return Err(CodecError::Corrupt("XOR window wider than 64 bits"));
                        }
                        window = (lz, 64 - lz - len);
                    }
                    let (lz, tz) = window;
                    let len = 64 - lz - tz;
                    let x = r.read(len)? << tz;
                    last ^= x;
                }
                out.push(f64::from_bits(last));
            }
        }
        _ => return Err(CodecError::Corrupt("unknown block mode")),
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    xs: Vec<i64>,
    r1: Vec<u64>,
    r2: Vec<u64>,
}

thread_local! {
    /// Block encoding's working space, reused so that encoding allocates nothing.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A growing column of values: complete blocks encoded, the last block raw.
#[derive(Debug, Clone)]
pub struct ColumnEncoder {
    bits: BitWriter,
    pending: Vec<f64>,
    prev: f64,
    block_len: usize,
}

impl ColumnEncoder {
    pub fn new(block_len: usize) -> Self {
        Self {
            bits: BitWriter::default(),
            pending: Vec::new(),
            prev: 0.0,
            block_len: block_len.max(1),
        }
    }

    pub fn push(&mut self, v: f64) {
        self.pending.push(v);
        if self.pending.len() == self.block_len {
            SCRATCH.with_borrow_mut(|scratch| {
                encode_block(&mut self.bits, &self.pending, self.prev, scratch);
            });
            self.prev = *self.pending.last().unwrap_or(&self.prev);
            self.pending.clear();
        }
    }

    /// Starts over; see [`ChunkEncoder::restart`] for `keep`.
    fn restart(&mut self, keep: bool) {
        self.bits.restart(keep);
        empty(&mut self.pending, keep);
        self.prev = 0.0;
    }

    /// Appends the whole column, the raw tail encoded as a final short
    /// block, to `out`, allocating nothing but what `out` grows by.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut bits = self.bits.continued_in(std::mem::take(out));
        if !self.pending.is_empty() {
            SCRATCH.with_borrow_mut(|scratch| {
                encode_block(&mut bits, &self.pending, self.prev, scratch)
            });
        }
        *out = bits.finish();
    }

    /// The whole column as bytes (see [`ColumnEncoder::write_to`]).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bits.heap_bytes() + self.pending.capacity() * 8
    }
}

/// Decodes `count` values of a column written in blocks of `block_len`.
pub fn decode_column(
    bytes: &[u8],
    count: usize,
    block_len: usize,
    out: &mut Vec<f64>,
) -> Result<(), CodecError> {
    if block_len == 0 {
        return Err(CodecError::Corrupt("block length 0"));
    }
    let mut r = BitReader::new(bytes);
    let mut prev = 0.0;
    let mut left = count;
    out.reserve(count);
    while left > 0 {
        let n = left.min(block_len);
        decode_block(&mut r, n, prev, out)?;
        prev = *out.last().unwrap_or(&prev);
        left -= n;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Timestamps

/// Timestamps as runs of equal deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampRuns {
    first: i64,
    last: i64,
    count: usize,
    runs: Vec<(u64, u64)>,
}

impl TimestampRuns {
    /// Appends a timestamp; it must be later than the last one.
    pub fn push(&mut self, ts: i64) {
        if self.count == 0 {
            self.first = ts;
        } else {
            let delta = (ts - self.last) as u64;
            match self.runs.last_mut() {
                Some((d, n)) if *d == delta => *n += 1,
                _ => self.runs.push((delta, 1)),
            }
        }
        self.last = ts;
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn first(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first)
    }

    pub fn last(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last)
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.count as u64);
        put_varint(out, zigzag(self.first));
        put_varint(out, self.runs.len() as u64);
        for &(d, n) in &self.runs {
            put_varint(out, d);
            put_varint(out, n);
        }
    }

    /// Starts over; see [`ChunkEncoder::restart`] for `keep`.
    fn restart(&mut self, keep: bool) {
        empty(&mut self.runs, keep);
        self.first = 0;
        self.last = 0;
        self.count = 0;
    }

    pub fn decode_into(&self, out: &mut Vec<i64>) {
        if self.count == 0 {
            return;
        }
        out.reserve(self.count);
        let mut t = self.first;
        out.push(t);
        for &(d, n) in &self.runs {
            for _ in 0..n {
                t += d as i64;
                out.push(t);
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.runs.capacity() * 16
    }

    fn read(buf: &[u8], pos: &mut usize) -> Result<Self, CodecError> {
        let count = get_varint(buf, pos)? as usize;
        let first = unzigzag(get_varint(buf, pos)?);
        let nruns = get_varint(buf, pos)? as usize;
        if nruns > buf.len() {
            return Err(CodecError::Corrupt("more timestamp runs than bytes"));
        }
        let mut runs = Vec::with_capacity(nruns);
        let mut total = 0u64;
        let mut last = first;
        for _ in 0..nruns {
            let d = get_varint(buf, pos)?;
            let n = get_varint(buf, pos)?;
            if d == 0 || n == 0 {
                return Err(CodecError::Corrupt("empty timestamp run"));
            }
            total = total.saturating_add(n);
            last = d
                .checked_mul(n)
                .and_then(|span| i64::try_from(span).ok())
                .and_then(|span| last.checked_add(span))
                .ok_or(CodecError::Corrupt("timestamps overflow"))?;
            runs.push((d, n));
        }
        if count == 0 || total + 1 != count as u64 {
            return Err(CodecError::Corrupt(
                "timestamp runs disagree with the count",
            ));
        }
        Ok(Self {
            first,
            last,
            count,
            runs,
        })
    }
}

// ---------------------------------------------------------------------------
// Chunks

/// Builds one chunk: timestamps and `N` value columns.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    ts: TimestampRuns,
    cols: Vec<ColumnEncoder>,
    block_len: usize,
}

impl ChunkEncoder {
    pub fn new(ncols: usize, block_len: usize) -> Self {
        Self {
            ts: TimestampRuns::default(),
            cols: (0..ncols).map(|_| ColumnEncoder::new(block_len)).collect(),
            block_len,
        }
    }

    /// Appends one row; `values` has one value per column and `ts` is later
    /// than every timestamp so far.
    pub fn push(&mut self, ts: i64, values: &[f64]) {
        self.ts.push(ts);
        for (col, &v) in self.cols.iter_mut().zip(values) {
            col.push(v);
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn first_ts(&self) -> Option<i64> {
        self.ts.first()
    }

    pub fn last_ts(&self) -> Option<i64> {
        self.ts.last()
    }

    /// Appends the chunk's bytes to `out`, allocating nothing but what `out`
    /// grows by: a seal writes every series' chunk into one buffer.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(CHUNK_VERSION);
        out.push(self.cols.len() as u8);
        put_varint(out, self.block_len as u64);
        self.ts.write(out);
        for col in &self.cols {
            put_prefixed(out, |out| col.write_to(out));
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Enough for the bytes held and the tail's block, in one allocation.
        let mut out = Vec::with_capacity(self.heap_bytes() + 32);
        self.write_to(&mut out);
        out
    }

    /// Empties the encoder for the next chunk. One that holds rows keeps its
    /// buffers, so that a series reporting steadily fills the same memory
    /// window after window rather than growing new buffers each time (and
    /// leaving the old ones as holes in the heap); one that was already empty
    /// gives its buffers back, so that a series that stopped reporting holds
    /// none.
    pub fn restart(&mut self) {
        let keep = !self.is_empty();
        self.ts.restart(keep);
        for col in &mut self.cols {
            col.restart(keep);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.ts.heap_bytes()
            + self
                .cols
                .iter()
                .map(ColumnEncoder::heap_bytes)
                .sum::<usize>()
    }

    /// Rebuilds an encoder holding the rows of an encoded chunk, so that it can grow.
    pub fn from_decoded(chunk: &DecodedChunk, block_len: usize) -> Self {
        let mut enc = Self::new(chunk.cols.len(), block_len);
        let mut row = vec![0.0; chunk.cols.len()];
        for (i, &ts) in chunk.ts.iter().enumerate() {
            for (slot, col) in row.iter_mut().zip(&chunk.cols) {
                *slot = col[i];
            }
            enc.push(ts, &row);
        }
        enc
    }

    /// Decodes the rows held so far.
    pub fn decode(&self) -> Result<DecodedChunk, CodecError> {
        decode_chunk(&self.to_bytes())
    }
}

/// The rows of a chunk: timestamps and one vector per column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedChunk {
    pub ts: Vec<i64>,
    pub cols: Vec<Vec<f64>>,
}

pub fn decode_chunk(bytes: &[u8]) -> Result<DecodedChunk, CodecError> {
    let version = *bytes.first().ok_or(CodecError::Truncated)?;
    if version != CHUNK_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let ncols = usize::from(*bytes.get(1).ok_or(CodecError::Truncated)?);
    let mut pos = 2;
    let block_len = get_varint(bytes, &mut pos)? as usize;
    let runs = TimestampRuns::read(bytes, &mut pos)?;
    let count = runs.len();
    // Every value costs at least a bit, or a block header of two: refuse
    // counts that the bytes cannot hold before allocating for them.
    if block_len == 0 || count > MAX_CHUNK_ROWS || count / block_len > bytes.len() * 4 {
        return Err(CodecError::Corrupt("count too large for the chunk"));
    }
    let mut chunk = DecodedChunk::default();
    runs.decode_into(&mut chunk.ts);
    for _ in 0..ncols {
        let len = get_varint(bytes, &mut pos)? as usize;
        let end = pos.checked_add(len).ok_or(CodecError::Truncated)?;
        let col_bytes = bytes.get(pos..end).ok_or(CodecError::Truncated)?;
        let mut col = Vec::new();
        decode_column(col_bytes, count, block_len, &mut col)?;
        chunk.cols.push(col);
        pos = end;
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests;
