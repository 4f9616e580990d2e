//! What the store holds in memory for one series: its raw head, its rollup
//! accumulators and the rollup chunks being built, and how that state is
//! snapshotted so that a restart picks up where the last seal left off.
//!
//! Owns no I/O: the store decides when to write what this module encodes.

use ward_shared::{MetricKind, SeriesDesc, TimestampMs};

use super::codec::{
    ChunkEncoder, CodecError, decode_chunk, get_varint, put_prefixed, put_varint, unzigzag, zigzag,
};

/// Values per block in raw chunks.
pub const RAW_BLOCK: usize = 128;
/// Values per block in rollup chunks (one point a minute or an hour: small
/// blocks keep the unencoded tail small).
pub const ROLLUP_BLOCK: usize = 16;
/// Rollup columns, in order.
pub const ROLLUP_COLS: usize = 6;
const SNAPSHOT_VERSION: u8 = 1;

/// A chunk whose window is over (raw, tier 0, or a rollup), ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedChunk {
    pub tier: u8,
    pub window: i64,
    pub first_ts: i64,
    pub bytes: Vec<u8>,
}

/// A rollup tier: points of `width_ms`, stored in chunks of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub id: u8,
    pub width_ms: i64,
    pub window_ms: i64,
}

pub const TIER_1M: Tier = Tier {
    id: 1,
    width_ms: 60_000,
    window_ms: 6 * 3_600_000,
};
pub const TIER_1H: Tier = Tier {
    id: 2,
    width_ms: 3_600_000,
    window_ms: 7 * 86_400_000,
};
pub const ROLLUP_TIERS: [Tier; 2] = [TIER_1M, TIER_1H];

pub fn floor_to(ts: i64, width: i64) -> i64 {
    ts - ts.rem_euclid(width)
}

/// Aggregate of the samples in one interval. For counters `sum` is the
/// increase over the interval (a decrease counts as a reset) and `span_ms`
/// the time that increase covers; for gauges `sum` is the sum of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub start: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: f64,
    pub last: f64,
    pub span_ms: f64,
}

impl Agg {
    pub fn of_sample(ts: i64, value: f64, sum: f64, span_ms: f64) -> Self {
        Self {
            start: ts,
            min: value,
            max: value,
            sum,
            count: 1.0,
            last: value,
            span_ms,
        }
    }

    /// Folds `later` (covering a later interval) into `self`.
    pub fn merge(&mut self, later: &Agg) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.last = later.last;
        self.span_ms += later.span_ms;
    }

    pub fn row(&self) -> [f64; ROLLUP_COLS] {
        [
            self.min,
            self.max,
            self.sum,
            self.count,
            self.last,
            self.span_ms,
        ]
    }

    pub fn from_row(start: i64, row: &[f64]) -> Self {
        Self {
            start,
            min: row[0],
            max: row[1],
            sum: row[2],
            count: row[3],
            last: row[4],
            span_ms: row[5],
        }
    }
}

/// A rollup tier of one series: the chunk being built and the open interval.
#[derive(Debug, Clone)]
pub struct TierState {
    pub tier: Tier,
    /// Start of the tier window that `enc` belongs to.
    pub window: i64,
    pub enc: ChunkEncoder,
    pub acc: Option<Agg>,
}

impl TierState {
    fn new(tier: Tier) -> Self {
        Self {
            tier,
            window: i64::MIN,
            enc: ChunkEncoder::new(ROLLUP_COLS, ROLLUP_BLOCK),
            acc: None,
        }
    }

    /// Adds a finished point; a chunk whose window it leaves goes to `done`.
    fn push_point(&mut self, point: &Agg, done: &mut Vec<FinishedChunk>) {
        let window = floor_to(point.start, self.tier.window_ms);
        if window != self.window {
            self.hand_over(done);
            self.window = window;
        }
        self.enc.push(point.start, &point.row());
    }

    /// Merges `agg` into the open interval; returns the interval it closes.
    fn accumulate(&mut self, agg: &Agg) -> Option<Agg> {
        let bucket = floor_to(agg.start, self.tier.width_ms);
        let closed = match &self.acc {
            Some(acc) if acc.start != bucket => self.acc.take(),
            _ => None,
        };
        match &mut self.acc {
            Some(acc) => acc.merge(agg),
            None => {
                self.acc = Some(Agg {
                    start: bucket,
                    ..*agg
                })
            }
        }
        closed
    }

    /// Closes the open interval if it ends by `until`.
    fn close_before(&mut self, until: i64) -> Option<Agg> {
        match &self.acc {
            Some(acc) if acc.start + self.tier.width_ms <= until => self.acc.take(),
            _ => None,
        }
    }

    /// Hands the chunk over if its window ends by `until`.
    fn finish_window(&mut self, until: i64, done: &mut Vec<FinishedChunk>) {
        if self.window + self.tier.window_ms <= until {
            self.hand_over(done);
        }
    }

    /// Moves the chunk being built, if any, to `done`.
    fn hand_over(&mut self, done: &mut Vec<FinishedChunk>) {
        if let Some(first_ts) = self.enc.first_ts() {
            done.push(FinishedChunk {
                tier: self.tier.id,
                window: self.window,
                first_ts,
                bytes: self.enc.to_bytes(),
            });
        }
        self.enc.restart();
    }
}

/// A raw chunk of `enc`'s samples, filed under `window`, if it has any.
fn raw_piece(enc: &ChunkEncoder, window: i64) -> Option<FinishedChunk> {
    enc.first_ts().map(|first_ts| FinishedChunk {
        tier: 0,
        window,
        first_ts,
        bytes: enc.to_bytes(),
    })
}

/// Everything in memory for one series.
#[derive(Debug, Clone)]
pub struct SeriesState {
    pub desc: SeriesDesc,
    /// Raw samples not yet sealed.
    pub head: ChunkEncoder,
    pub last_ts: Option<TimestampMs>,
    /// The newest value accepted since the store opened.
    pub last_value: Option<f64>,
    /// Last raw sample of a counter, to compute increases across intervals.
    prev: Option<(i64, f64)>,
    pub tiers: [TierState; 2],
}

impl SeriesState {
    pub fn new(desc: SeriesDesc) -> Self {
        Self {
            desc,
            head: ChunkEncoder::new(1, RAW_BLOCK),
            last_ts: None,
            last_value: None,
            prev: None,
            tiers: [TierState::new(TIER_1M), TierState::new(TIER_1H)],
        }
    }

    pub fn is_counter(&self) -> bool {
        self.desc.kind == MetricKind::Counter
    }

    /// Appends a sample that is later than every sample so far.
    pub fn push(&mut self, ts: i64, value: f64, done: &mut Vec<FinishedChunk>) {
        self.head.push(ts, &[value]);
        self.last_ts = Some(ts);
        self.last_value = Some(value);
        let agg = if self.is_counter() {
            let (inc, span) = match self.prev {
                Some((pts, pv)) => (counter_increase(pv, value), (ts - pts) as f64),
                None => (0.0, 0.0),
            };
            self.prev = Some((ts, value));
            Agg::of_sample(ts, value, inc, span)
        } else {
            Agg::of_sample(ts, value, value, 0.0)
        };
        if let Some(minute) = self.tiers[0].accumulate(&agg) {
            self.close_minute(&minute, done);
        }
    }

    fn close_minute(&mut self, minute: &Agg, done: &mut Vec<FinishedChunk>) {
        self.tiers[0].push_point(minute, done);
        if let Some(hour) = self.tiers[1].accumulate(minute) {
            self.tiers[1].push_point(&hour, done);
        }
    }

    /// Closes every interval and rollup window that ends by `until`.
    pub fn close_rollups(&mut self, until: i64, done: &mut Vec<FinishedChunk>) {
        if let Some(minute) = self.tiers[0].close_before(until) {
            self.close_minute(&minute, done);
        }
        if let Some(hour) = self.tiers[1].close_before(until) {
            self.tiers[1].push_point(&hour, done);
        }
        for tier in &mut self.tiers {
            tier.finish_window(until, done);
        }
    }

    /// Moves the head, as raw chunks, to `done`: one for each window it has
    /// samples in, so that every chunk lies within the window it is filed
    /// under, where reads look for it. A head spans windows only when the
    /// series reported late for a window the clock had already left (the
    /// next window opens with the first sample to come, from any series);
    /// that head is decoded and cut. The head itself is left as it is.
    pub fn close_head(
        &self,
        window_ms: i64,
        done: &mut Vec<FinishedChunk>,
    ) -> Result<(), CodecError> {
        let (Some(first), Some(last)) = (self.head.first_ts(), self.head.last_ts()) else {
            return Ok(());
        };
        let window = floor_to(first, window_ms);
        if floor_to(last, window_ms) == window {
            done.extend(raw_piece(&self.head, window));
            return Ok(());
        }
        let decoded = self.head.decode()?;
        let values = decoded.cols.first().ok_or(CodecError::Truncated)?;
        let mut piece = ChunkEncoder::new(1, RAW_BLOCK);
        let mut at = window;
        for (&ts, &value) in decoded.ts.iter().zip(values) {
            let w = floor_to(ts, window_ms);
            if w != at {
                done.extend(raw_piece(&piece, at));
                piece = ChunkEncoder::new(1, RAW_BLOCK);
                at = w;
            }
            piece.push(ts, &[value]);
        }
        done.extend(raw_piece(&piece, at));
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        self.head.heap_bytes() + self.tiers.iter().map(|t| t.enc.heap_bytes()).sum::<usize>()
    }

    /// Appends the state a restart needs besides the sealed chunks to `out`.
    pub fn write_snapshot(&self, out: &mut Vec<u8>) {
        out.push(SNAPSHOT_VERSION);
        put_opt_ts(out, self.last_ts);
        match self.prev {
            Some((ts, v)) => {
                out.push(1);
                put_varint(out, zigzag(ts));
                out.extend_from_slice(&v.to_le_bytes());
            }
            None => out.push(0),
        }
        for tier in &self.tiers {
            put_varint(out, zigzag(tier.window));
            put_prefixed(out, |out| {
                if !tier.enc.is_empty() {
                    tier.enc.write_to(out);
                }
            });
            match &tier.acc {
                Some(acc) => {
                    out.push(1);
                    put_varint(out, zigzag(acc.start));
                    for v in acc.row() {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                None => out.push(0),
            }
        }
    }

    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let mut pos = 0;
        let version = *bytes.first().ok_or(CodecError::Truncated)?;
        if version != SNAPSHOT_VERSION {
            return Err(CodecError::UnknownVersion(version));
        }
        pos += 1;
        self.last_ts = get_opt_ts(bytes, &mut pos)?;
        self.prev = match take(bytes, &mut pos, 1)?[0] {
            0 => None,
            _ => {
                let ts = unzigzag(get_varint(bytes, &mut pos)?);
                Some((ts, get_f64(bytes, &mut pos)?))
            }
        };
        for tier in &mut self.tiers {
            tier.window = unzigzag(get_varint(bytes, &mut pos)?);
            let len = get_varint(bytes, &mut pos)? as usize;
            let chunk = take(bytes, &mut pos, len)?;
            tier.enc = if chunk.is_empty() {
                ChunkEncoder::new(ROLLUP_COLS, ROLLUP_BLOCK)
            } else {
                ChunkEncoder::from_decoded(&decode_chunk(chunk)?, ROLLUP_BLOCK)
            };
            tier.acc = match take(bytes, &mut pos, 1)?[0] {
                0 => None,
                _ => {
                    let start = unzigzag(get_varint(bytes, &mut pos)?);
                    let mut row = [0.0; ROLLUP_COLS];
                    for slot in &mut row {
                        *slot = get_f64(bytes, &mut pos)?;
                    }
                    Some(Agg::from_row(start, &row))
                }
            };
        }
        Ok(())
    }
}

/// The increase from `prev` to `value` of a counter; a decrease is a reset
/// to zero, after which the counter counted up to `value`.
pub fn counter_increase(prev: f64, value: f64) -> f64 {
    if value >= prev { value - prev } else { value }
}

fn put_opt_ts(out: &mut Vec<u8>, ts: Option<i64>) {
    match ts {
        Some(ts) => {
            out.push(1);
            put_varint(out, zigzag(ts));
        }
        None => out.push(0),
    }
}

fn get_opt_ts(bytes: &[u8], pos: &mut usize) -> Result<Option<i64>, CodecError> {
    Ok(match take(bytes, pos, 1)?[0] {
        0 => None,
        _ => Some(unzigzag(get_varint(bytes, pos)?)),
    })
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], CodecError> {
    let end = pos.checked_add(n).ok_or(CodecError::Truncated)?;
    let out = bytes.get(*pos..end).ok_or(CodecError::Truncated)?;
    *pos = end;
    Ok(out)
}

fn get_f64(bytes: &[u8], pos: &mut usize) -> Result<f64, CodecError> {
    let raw: [u8; 8] = take(bytes, pos, 8)?
        .try_into()
        .map_err(|_| CodecError::Truncated)?;
    Ok(f64::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_shared::{Labels, SeriesKey};

    fn state(kind: MetricKind) -> SeriesState {
        let key = SeriesKey::new("test.metric", Labels::default()).unwrap();
        let mut desc = SeriesDesc::gauge(key, "1");
        desc.kind = kind;
        SeriesState::new(desc)
    }

    #[test]
    fn minutes_and_hours_roll_up_as_the_samples_arrive() {
        let mut s = state(MetricKind::Gauge);
        let mut done = Vec::new();
        for i in 0..(2 * 3600) {
            s.push(i * 1000, (i % 60) as f64, &mut done);
        }
        s.close_rollups(2 * 3_600_000, &mut done);
        let minutes = s.tiers[0].enc.decode().unwrap();
        assert_eq!(minutes.ts.len(), 120);
        assert_eq!(minutes.cols[0][5], 0.0); // min
        assert_eq!(minutes.cols[1][5], 59.0); // max
        assert_eq!(minutes.cols[2][5], (0..60).sum::<i64>() as f64); // sum
        assert_eq!(minutes.cols[3][5], 60.0); // count
        let hours = s.tiers[1].enc.decode().unwrap();
        assert_eq!(hours.ts, vec![0, 3_600_000]);
        assert_eq!(hours.cols[3], vec![3600.0, 3600.0]);
        assert!(done.is_empty(), "no rollup window ended");
    }

    #[test]
    fn counter_rollups_hold_increases_across_resets() {
        let mut s = state(MetricKind::Counter);
        let mut done = Vec::new();
        // 10/s for 30 s, a reset to 0, then 10/s again.
        for i in 0..60 {
            let v = if i < 30 { i * 10 } else { (i - 30) * 10 };
            s.push(i * 1000, v as f64, &mut done);
        }
        s.close_rollups(60_000, &mut done);
        let minutes = s.tiers[0].enc.decode().unwrap();
        // 29 increases of 10, the reset sample counts as 0, then 29 of 10.
        assert_eq!(minutes.cols[2], vec![580.0]);
        assert_eq!(minutes.cols[5], vec![59_000.0]);
    }

    #[test]
    fn a_snapshot_restores_the_open_intervals() {
        let mut a = state(MetricKind::Counter);
        let mut done = Vec::new();
        for i in 0..150 {
            a.push(i * 1000, (i * 3) as f64, &mut done);
        }
        let mut b = state(MetricKind::Counter);
        let mut snapshot = Vec::new();
        a.write_snapshot(&mut snapshot);
        b.restore(&snapshot).unwrap();
        for s in [&mut a, &mut b] {
            for i in 150..400 {
                s.push(i * 1000, (i * 3) as f64, &mut done);
            }
            s.close_rollups(400_000, &mut done);
        }
        assert_eq!(a.tiers[0].enc.decode(), b.tiers[0].enc.decode());
        assert_eq!(a.tiers[1].acc, b.tiers[1].acc);
        assert!(b.restore(&[9]).is_err());
    }
}
