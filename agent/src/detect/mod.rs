//! Anomaly detection: a streaming, causal detector per series.
//!
//! Owns scoring and training; it reads values and emits scores, and never
//! touches the store or incidents.
//!
//! The design starts from Netdata's per-series detector and applies what the
//! NAB notes (../shared/datasets/nab/NOTES.md) measured to help:
//!
//! - Features per row: the first difference smoothed over 3 samples, at the
//!   current and 5 earlier lags (6 dimensions: the *shape* of the last few
//!   changes), plus a *level* feature, the value itself (so level shifts and
//!   slow drifts are visible too).
//! - Models: k-means with k = 2 (linfa-clustering) trained on the trailing
//!   [`Params::train_window`] vectors, retrained every [`Params::retrain_every`]
//!   rows, the last [`Params::models`] kept. Each model measures in the range
//!   of the values it was trained on: differences divided by that range, the
//!   level placed within it (weighted by [`Params::level_weight`]), so a model
//!   scores new rows on the scale it learned, whatever came since (one early
//!   spike used to squash every later row's features for good). A vector's
//!   distance to its nearest centroid, divided by the 99th percentile of the
//!   training distances, is its surprise; the minimum over the kept models
//!   compares it with a long history of normal.
//! - Score: continuous, never clipped to a plateau, squashed into [0, 1) by
//!   `s / (s + r)`, where `r` is at least 1 and otherwise the surprise of the
//!   last few rows (a decaying record), so ranks are kept and a burst does
//!   not score its every row in full. A rising-edge filter turns bursts into
//!   events: a score counts in full only when it beats every score of the
//!   last [`Params::edge_window`] rows, and is damped otherwise.
//! - Two views: the samples themselves, and their moving average over
//!   [`Params::slow_window`] rows, each with its own models and record. The
//!   slow view sees changes spread over many samples (a level that sags for
//!   hours, a daily peak that fails to come) that the sample-to-sample shape
//!   hides in noise; a row's raw score is the higher of the two, and one
//!   rising-edge filter turns both into events.
//!
//! The defaults are those that scored best on the NAB subset beside the
//! repository (`cargo run --release -p ward-benches --bin nab`), the set the
//! README's figures come from: tuned and measured on the same files.
//!
//! Causal: the score of a row uses only that row and the rows before it.

mod bank;
pub mod csv;
pub mod live;
pub mod names;

pub use bank::DetectSettings;

use std::collections::VecDeque;

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array2, ArrayView1};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

const LAGS: usize = 6;
const DIM: usize = LAGS + 1;
/// Clusters of each model's k-means.
const K: usize = 2;

/// How the detector learns and scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Rows before the first model is trained.
    pub warm_up: usize,
    /// Vectors a model is trained on (the most recent ones).
    pub train_window: usize,
    /// Rows between trainings.
    pub retrain_every: usize,
    /// Models kept; the score is the minimum over them.
    pub models: usize,
    /// Rows a score must beat to count in full.
    pub edge_window: usize,
    /// Weight of the level feature against the shape features.
    pub level_weight: f64,
    /// Factor applied to scores that do not beat the edge window.
    pub damping: f64,
    /// Per-row decay of the record surprise that a surprise is measured against.
    pub record_decay: f64,
    /// Rows averaged for the slow view; 0 scores the samples alone.
    pub slow_window: usize,
    /// Weight of the level feature in the slow view.
    pub slow_level_weight: f64,
}

impl Params {
    /// What a model's meaning depends on: saved models trained otherwise are
    /// not used. (Warm-up, scoring and retraining pace do not change a model.)
    pub fn model_shape(&self) -> String {
        format!(
            "k-means k=2, {DIM} features (shape lags {LAGS}, level weight {}) in each model's training range, window {}; slow view of {} rows (level weight {})",
            self.level_weight, self.train_window, self.slow_window, self.slow_level_weight
        )
    }

    /// The slow view's parameters: the same, but for its level weight, and
    /// with no slow view of its own.
    fn slow(&self) -> Option<Params> {
        (self.slow_window > 0).then(|| Params {
            level_weight: self.slow_level_weight,
            slow_window: 0,
            ..self.clone()
        })
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            warm_up: 300,
            train_window: 1440,
            retrain_every: 360,
            models: 18,
            edge_window: 200,
            level_weight: 2.0,
            damping: 0.3,
            record_decay: 0.98,
            slow_window: 36,
            slow_level_weight: 1.5,
        }
    }
}

/// One trained model: its centroids and the scale of its training distances.
/// Held inline: a detector keeps up to [`Params::models`] of them a view for
/// hours, and one allocation each would only scatter them over the heap.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub centroids: [[f64; DIM]; K],
    /// 99th percentile of training vectors' distance to their nearest centroid.
    pub scale: f64,
    /// Rows seen when it was trained, and how many vectors it was trained on.
    pub trained_at: u64,
    pub trained_on: usize,
    /// When it was trained (Unix ms; 0 offline, where rows have no clock).
    pub trained_ts: i64,
    /// The range it measures in: the lowest value it was trained on, and
    /// the spread of those values (never 0).
    pub lo: f64,
    pub range: f64,
}

/// What a detector keeps across restarts: its models and the state they
/// are read with. The vectors are not kept: new ones gather after a restart
/// while the kept models score. Stored in the binary form of
/// [`Saved::encode`]: the store holds one for every scored series, rewrites
/// them as models are added, and caches the pages they sit in.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// [`SAVED_FORMAT`] of the build that wrote it.
    pub format: u32,
    /// The parameters the models were trained with; others discard them.
    pub params: String,
    pub rows: u64,
    pub record: f64,
    pub models: Vec<Model>,
    /// The slow view's, where there is one.
    pub slow: Option<Box<Saved>>,
}

/// Version of [`Saved`] and of its encoding. 4: binary (3 and before were
/// JSON, about three times the size).
pub const SAVED_FORMAT: u32 = 4;

/// Bytes of one encoded [`Model`]: its centroids, then scale, trained_at,
/// trained_on, trained_ts, lo and range, 8 bytes each.
const MODEL_BYTES: usize = (K * DIM + 6) * 8;

/// Why stored models could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SavedError {
    /// Written by another version of the detector (JSON before format 4):
    /// discarded, as models of other parameters are.
    #[error("models of format {0}, this build reads {SAVED_FORMAT}")]
    OtherFormat(u32),
    #[error("models cut short: {0}")]
    Truncated(&'static str),
    #[error("models malformed: {0}")]
    Malformed(&'static str),
}

impl Saved {
    /// The stored form, little-endian: format u32, the parameters (u16
    /// length, UTF-8), rows u64, record f64, the model count u16 and
    /// [`MODEL_BYTES`] for each, then 1 and the slow view's `Saved` (without
    /// a format of its own), or 0.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&SAVED_FORMAT.to_le_bytes());
        self.encode_body(&mut out);
        out
    }

    fn encoded_len(&self) -> usize {
        4 + 2
            + self.params.len()
            + 16
            + 2
            + self.models.len() * MODEL_BYTES
            + 1
            + self.slow.as_ref().map_or(0, |s| s.encoded_len() - 4)
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        let params = self.params.as_bytes();
        let params = &params[..params.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(params.len() as u16).to_le_bytes());
        out.extend_from_slice(params);
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.record.to_le_bytes());
        let models = &self.models[..self.models.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(models.len() as u16).to_le_bytes());
        for m in models {
            for v in m.centroids.iter().flatten() {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&m.scale.to_le_bytes());
            out.extend_from_slice(&m.trained_at.to_le_bytes());
            out.extend_from_slice(&(m.trained_on as u64).to_le_bytes());
            out.extend_from_slice(&m.trained_ts.to_le_bytes());
            out.extend_from_slice(&m.lo.to_le_bytes());
            out.extend_from_slice(&m.range.to_le_bytes());
        }
        match &self.slow {
            Some(slow) => {
                out.push(1);
                slow.encode_body(out);
            }
            None => out.push(0),
        }
    }

    /// Reads what [`Saved::encode`] wrote; anything else is an error that
    /// says what is wrong, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, SavedError> {
        // Formats 1 to 3 were JSON objects.
        if bytes.first() == Some(&b'{') {
            return Err(SavedError::OtherFormat(3));
        }
        let mut r = Bytes(bytes);
        let format = u32::from_le_bytes(r.array("format")?);
        if format != SAVED_FORMAT {
            return Err(SavedError::OtherFormat(format));
        }
        let saved = Self::decode_body(&mut r, 0)?;
        if !r.0.is_empty() {
            return Err(SavedError::Malformed("bytes after the end"));
        }
        Ok(saved)
    }

    fn decode_body(r: &mut Bytes<'_>, depth: u8) -> Result<Self, SavedError> {
        let len = usize::from(u16::from_le_bytes(r.array("parameters")?));
        let params = std::str::from_utf8(r.take(len, "parameters")?)
            .map_err(|_| SavedError::Malformed("parameters are not UTF-8"))?
            .to_string();
        let rows = u64::from_le_bytes(r.array("rows")?);
        let record = r.f64("record")?;
        // An infinite record would squash every later surprise to 0: the
        // series could never look anomalous again.
        if !(record.is_finite() && record >= 0.0) {
            return Err(SavedError::Malformed(
                "the record is not a finite, non-negative number",
            ));
        }
        let count = usize::from(u16::from_le_bytes(r.array("model count")?));
        let mut body = Bytes(r.take(count * MODEL_BYTES, "models")?);
        let mut models = Vec::with_capacity(count);
        for _ in 0..count {
            let mut centroids = [[0.0; DIM]; K];
            for v in centroids.iter_mut().flatten() {
                *v = body.f64("models")?;
            }
            let scale = body.f64("models")?;
            let trained_at = u64::from_le_bytes(body.array("models")?);
            let trained_on = usize::try_from(u64::from_le_bytes(body.array("models")?))
                .map_err(|_| SavedError::Malformed("a model's row count"))?;
            let trained_ts = i64::from_le_bytes(body.array("models")?);
            let lo = body.f64("models")?;
            let range = body.f64("models")?;
            if !(scale.is_finite() && scale > 0.0 && range.is_finite() && range > 0.0) {
                return Err(SavedError::Malformed(
                    "a model's scale or range is not a positive number",
                ));
            }
            // A NaN centroid or level would make every row look normal to
            // the model, an infinite scale too.
            if !centroids.iter().flatten().all(|v| v.is_finite()) || !lo.is_finite() {
                return Err(SavedError::Malformed(
                    "a model's centroids or level are not finite",
                ));
            }
            models.push(Model {
                centroids,
                scale,
                trained_at,
                trained_on,
                trained_ts,
                lo,
                range,
            });
        }
        let slow = match r.take(1, "slow view")?[0] {
            0 => None,
            // One slow view at most: it has none of its own.
            1 if depth == 0 => Some(Box::new(Self::decode_body(r, depth + 1)?)),
            _ => return Err(SavedError::Malformed("slow view marker")),
        };
        Ok(Self {
            format: SAVED_FORMAT,
            params,
            rows,
            record,
            models,
            slow,
        })
    }
}

/// A cursor over stored bytes.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SavedError> {
        if self.0.len() < n {
            return Err(SavedError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SavedError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, SavedError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }
}

impl Model {
    /// A row's features, as they read in this model's range (the level
    /// weighted by `level_weight`, one of the parameters the model was
    /// trained with: see [`Params::model_shape`]).
    fn measure(&self, raw: &[f64; DIM], level_weight: f64) -> [f64; DIM] {
        let mut v = raw.map(|d| d / self.range);
        v[LAGS] = level_weight * (raw[LAGS] - self.lo) / self.range;
        v
    }

    /// How far a row lies from this model's normal, in units of its
    /// training rows' 99th-percentile distance.
    fn surprise(&self, raw: &[f64; DIM], level_weight: f64) -> f64 {
        self.distance(&self.measure(raw, level_weight)) / self.scale
    }

    fn distance(&self, v: &[f64; DIM]) -> f64 {
        self.centroids
            .iter()
            .map(|c| c.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .fold(f64::INFINITY, f64::min)
            .sqrt()
    }
}

/// Values a row's features reach back over: 6 smoothed differences of 3
/// differences each.
const SPAN: usize = LAGS + 3;

/// The rows (smoothed differences at 6 lags, then the value) that the kept
/// `values` (relative to `origin`) make: one for each value with 8 before it.
fn rows(values: &VecDeque<f32>, origin: f64) -> impl Iterator<Item = [f64; DIM]> + '_ {
    let value = move |j: usize| f64::from(values[j]);
    let smoothed = move |k: usize| (value(k) - value(k - 3)) / 3.0;
    (SPAN - 1..values.len()).map(move |t| {
        let mut row = [0.0; DIM];
        for (lag, slot) in row[..LAGS].iter_mut().enumerate() {
            *slot = smoothed(t - lag);
        }
        row[LAGS] = value(t) + origin;
        row
    })
}

/// Trains a model on the rows of `values` (relative to `origin`), in the
/// range of those values.
fn train(
    values: &VecDeque<f32>,
    origin: f64,
    level_weight: f64,
    seed: u64,
    trained_at: u64,
) -> Option<Model> {
    let n = values.len().checked_sub(SPAN - 1).filter(|&n| n > 0)?;
    let levels = || values.iter().skip(SPAN - 1).map(|&v| f64::from(v) + origin);
    let lo = levels().fold(f64::INFINITY, f64::min);
    let hi = levels().fold(f64::NEG_INFINITY, f64::max);
    // A flat window still measures: any change from it is large.
    let range = if hi > lo {
        hi - lo
    } else {
        (hi.abs() * 1e-3).max(1e-9)
    };
    let mut model = Model {
        centroids: [[0.0; DIM]; K],
        scale: 1.0,
        trained_at,
        trained_on: n,
        trained_ts: 0,
        lo,
        range,
    };
    let flat: Vec<f64> = rows(values, origin)
        .flat_map(|r| model.measure(&r, level_weight))
        .collect();
    let data = Array2::from_shape_vec((n, DIM), flat).ok()?;
    let dataset = DatasetBase::from(data);
    let fitted = KMeans::params_with_rng(2, Xoshiro256Plus::seed_from_u64(seed))
        .max_n_iterations(50)
        .tolerance(1e-6)
        .fit(&dataset)
        .ok()?;
    let as_row = |r: ArrayView1<f64>| {
        let mut c = [0.0; DIM];
        for (slot, v) in c.iter_mut().zip(r.iter()) {
            *slot = *v;
        }
        c
    };
    let fitted = fitted.centroids();
    if fitted.nrows() != K {
        return None;
    }
    for (slot, r) in model.centroids.iter_mut().zip(fitted.rows()) {
        *slot = as_row(r);
    }
    let mut d: Vec<f64> = dataset
        .records()
        .rows()
        .into_iter()
        .map(|r| model.distance(&as_row(r)))
        .collect();
    d.sort_by(f64::total_cmp);
    let q99 = d[((n as f64 * 0.99) as usize).min(n - 1)];
    model.scale = if q99 > 0.0 {
        q99
    } else {
        d.last().copied().filter(|&m| m > 0.0).unwrap_or(1.0)
    };
    Some(model)
}

/// The detector of one series.
#[derive(Debug, Clone)]
pub struct Detector {
    params: Params,
    rows: u64,
    last: Option<f64>,
    diffs: VecDeque<f64>,
    smoothed: VecDeque<f64>,
    /// The first value since start: kept values are relative to it, so
    /// single precision loses little even on large values.
    origin: Option<f64>,
    /// The last values (relative to `origin`, in single precision) that the
    /// next model's rows are made from: most of a detector's memory.
    values: VecDeque<f32>,
    models: VecDeque<Model>,
    recent: VecDeque<f64>,
    /// The largest surprise so far, decaying.
    record: f64,
    /// Whether this row may train (the caller's CPU budget), and whether a
    /// training was put off for it.
    may_train: bool,
    deferred: bool,
    /// The slow view (see [`Params::slow_window`]): a detector of the moving
    /// average, and the values it averages.
    slow: Option<Box<Detector>>,
    window: VecDeque<f64>,
    /// Whether the slow view gave the last row its score.
    slow_led: bool,
}

impl Detector {
    pub fn new(params: Params) -> Self {
        Self {
            rows: 0,
            last: None,
            diffs: VecDeque::with_capacity(4),
            smoothed: VecDeque::with_capacity(LAGS + 1),
            origin: None,
            // Values and scores fill as rows arrive (see `push_bounded`),
            // models with the first training (see `keep`): a detector's
            // memory follows the history it holds.
            values: VecDeque::new(),
            models: VecDeque::new(),
            recent: VecDeque::new(),
            record: 0.0,
            may_train: true,
            deferred: false,
            slow: params.slow().map(|p| Box::new(Detector::new(p))),
            window: VecDeque::new(),
            slow_led: false,
            params,
        }
    }

    /// Heap bytes held now (histories and models; see [`Detector::full_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f32>()
            + self.recent.capacity() * std::mem::size_of::<f64>()
            + self.models.capacity() * std::mem::size_of::<Model>()
            + (self.diffs.capacity() + self.smoothed.capacity() + self.window.capacity())
                * std::mem::size_of::<f64>()
            + self
                .slow
                .as_ref()
                .map_or(0, |d| std::mem::size_of::<Self>() + d.heap_bytes())
    }

    /// The models of the samples' view.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.iter()
    }

    /// The models of the slow view (none without one).
    pub fn slow_models(&self) -> impl Iterator<Item = &Model> {
        self.slow.iter().flat_map(|d| d.models.iter())
    }

    /// Whether the last row's score came from the slow view.
    pub fn slow_led(&self) -> bool {
        self.slow_led
    }

    /// Heap bytes a detector holds once its history is full: what the agent
    /// budgets per scored series.
    pub fn full_bytes(params: &Params) -> usize {
        // One view: its values, models and last few differences.
        let view = |p: &Params| {
            (p.train_window + SPAN) * std::mem::size_of::<f32>()
                + (p.models + 1) * std::mem::size_of::<Model>()
                + 16 * std::mem::size_of::<f64>()
                + std::mem::size_of::<Self>()
        };
        // The scores the rising edge is judged against are kept once.
        view(params)
            + (params.edge_window + 1) * std::mem::size_of::<f64>()
            + params.slow().map_or(0, |slow| {
                (params.slow_window + 1) * std::mem::size_of::<f64>() + view(&slow)
            })
    }

    /// The newest row as seen (smoothed differences, then the value), once
    /// there are enough rows for one; each model measures it in its range.
    fn features(&mut self, value: f64) -> Option<[f64; DIM]> {
        let diff = self.last.map(|l| value - l);
        self.last = Some(value);
        let diff = diff?;
        self.diffs.push_back(diff);
        if self.diffs.len() > 3 {
            self.diffs.pop_front();
        }
        self.smoothed
            .push_back(self.diffs.iter().sum::<f64>() / self.diffs.len() as f64);
        if self.smoothed.len() > LAGS {
            self.smoothed.pop_front();
        }
        if self.smoothed.len() < LAGS {
            return None;
        }
        let mut v = [value; DIM];
        for (slot, s) in v.iter_mut().zip(self.smoothed.iter().rev()) {
            *slot = *s;
        }
        Some(v)
    }

    /// What to keep across a restart; `None` before the first model.
    pub fn save(&self) -> Option<Saved> {
        (!self.models.is_empty()).then(|| Saved {
            format: SAVED_FORMAT,
            params: self.params.model_shape(),
            rows: self.rows,
            record: self.record,
            models: self.models.iter().cloned().collect(),
            slow: self.slow.as_ref().and_then(|d| d.save()).map(Box::new),
        })
    }

    /// A detector that goes on from `saved`, if it was written by this
    /// format with these parameters; a fresh one otherwise.
    pub fn restore(params: Params, saved: &Saved) -> Self {
        let mut d = Self::new(params);
        if saved.format == SAVED_FORMAT && saved.params == d.params.model_shape() {
            d.rows = saved.rows;
            d.record = saved.record;
            for m in &saved.models {
                d.keep(m.clone());
            }
            if let (Some(slow), Some(kept)) = (d.slow.as_mut(), saved.slow.as_deref()) {
                **slow = Self::restore(slow.params.clone(), kept);
            }
        }
        d
    }

    /// Adds a model, dropping the oldest past [`Params::models`]. The list
    /// takes its full size with the first model: it is full within hours
    /// and kept for good, and growing it by doubling on the way would step
    /// the agent's memory and leave the smaller buffers behind in the heap.
    fn keep(&mut self, m: Model) {
        if self.models.capacity() == 0 {
            self.models.reserve_exact(self.params.models + 1);
        }
        self.models.push_back(m);
        if self.models.len() > self.params.models {
            self.models.pop_front();
        }
    }

    /// [`Detector::score`], with the sample's time recorded on the models it
    /// trains; a training due while `may_train` is false waits for the next
    /// row that may. Returns the score and whether a model was trained.
    pub fn score_at(&mut self, ts: i64, value: f64, may_train: bool) -> (f64, bool) {
        let newest = |d: &Self| d.models.back().map(|m| m.trained_at);
        let before = (newest(self), self.slow.as_deref().and_then(newest));
        self.may_train = may_train;
        let score = self.score(value);
        self.may_train = true;
        let mut trained = self.stamp_new_model(before.0, ts);
        if let Some(slow) = self.slow.as_mut() {
            trained |= slow.stamp_new_model(before.1, ts);
        }
        (score, trained)
    }

    /// Records `ts` on the newest model if it is newer than `before`.
    fn stamp_new_model(&mut self, before: Option<u64>, ts: i64) -> bool {
        match self.models.back_mut() {
            Some(m) if Some(m.trained_at) != before => {
                m.trained_ts = ts;
                true
            }
            _ => false,
        }
    }

    /// Whether a training is waiting for a row that may train.
    pub fn training_deferred(&self) -> bool {
        self.deferred || self.slow.as_ref().is_some_and(|d| d.deferred)
    }

    /// Scores the next value in [0, 1): the higher, the less like the past.
    pub fn score(&mut self, value: f64) -> f64 {
        let mut raw = self.raw_score(value);
        self.slow_led = false;
        if let Some(slow) = self.slow.as_mut()
            && value.is_finite()
        {
            push_bounded(&mut self.window, value, self.params.slow_window);
            let mean = self.window.iter().sum::<f64>() / self.window.len() as f64;
            slow.may_train = self.may_train;
            let r = slow.raw_score(mean);
            slow.may_train = true;
            if r > raw {
                (raw, self.slow_led) = (r, true);
            }
        }
        let peak = self.recent.iter().copied().fold(0.0, f64::max);
        push_bounded(&mut self.recent, raw, self.params.edge_window);
        if raw > peak {
            raw
        } else {
            raw * self.params.damping
        }
    }

    /// A row's surprise against this view's models, squashed into [0, 1)
    /// against the view's record; trains when due.
    fn raw_score(&mut self, value: f64) -> f64 {
        self.rows += 1;
        if !value.is_finite() {
            return 0.0;
        }
        let origin = *self.origin.get_or_insert(value);
        push_bounded(
            &mut self.values,
            (value - origin) as f32,
            self.params.train_window + SPAN - 1,
        );
        let Some(v) = self.features(value) else {
            return 0.0;
        };
        let surprise = self
            .models
            .iter()
            .map(|m| m.surprise(&v, self.params.level_weight))
            .fold(f64::INFINITY, f64::min);
        // After a restart the kept models score while new rows gather: no
        // model is trained on fewer than half a warm-up of them.
        let rows = self.values.len().saturating_sub(SPAN - 1);
        let due = self.rows as usize >= self.params.warm_up
            && rows * 2 >= self.params.warm_up.min(self.params.train_window)
            && (self.models.is_empty()
                || self.deferred
                || self.rows.is_multiple_of(self.params.retrain_every as u64));
        // Over the CPU budget: keep the training for a later row.
        self.deferred = due && !self.may_train;
        if due
            && self.may_train
            && let Some(m) = train(
                &self.values,
                origin,
                self.params.level_weight,
                self.rows,
                self.rows,
            )
        {
            self.keep(m);
        }
        // Against the series' own decaying record: a new record scores at least
        // 0.5 whatever the series' scale, so one threshold fits every series.
        // A surprise some 2^53 times the record rounds to 1: kept below it.
        if surprise.is_finite() {
            let reference = self.record.max(1.0);
            self.record = (self.record * self.params.record_decay).max(surprise);
            (surprise / (surprise + reference)).min(BELOW_ONE)
        } else {
            0.0
        }
    }
}

/// The largest double below 1: the highest score.
const BELOW_ONE: f64 = 1.0 - f64::EPSILON / 2.0;

/// Appends to a history of at most `max` items, growing its buffer by
/// doubling but never past `max + 1` (a plain push would round it up to the
/// next power of two: 2,048 for 1,441).
fn push_bounded<T>(history: &mut VecDeque<T>, item: T, max: usize) {
    if history.len() == history.capacity() {
        let room = (max + 1).saturating_sub(history.capacity());
        history.reserve_exact(history.capacity().max(16).min(room.max(1)));
    }
    history.push_back(item);
    if history.len() > max {
        history.pop_front();
    }
}

#[cfg(test)]
mod tests;
