//! The detector bank: a detector per scored series, each sample scored
//! against its models and the series' recent range, training on a budget.
//! Its models are kept across restarts (`kept.rs`); its anomalies are
//! grouped into the host's incident (`episode.rs`).

mod episode;
mod kept;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use ward_shared::incident::{Feedback, IncidentSource};
use ward_shared::{MetricKind, Sample, SeriesDesc, SeriesId, TimestampMs};

use super::{Detector, Params, Saved, SavedError};
use crate::store::{Collection, SharedStore};
use kept::Kept;

/// How live detection decides.
#[derive(Debug, Clone)]
pub struct DetectSettings {
    pub params: Params,
    /// Score at which a sample is an anomaly.
    pub threshold: f64,
    /// Series with anomalies within the group window that open an incident.
    pub min_series: usize,
    pub group_window_ms: i64,
    /// Time without anomalies after which the incident's condition is cleared.
    pub quiet_ms: i64,
    /// Most series scored; more are left unscored and counted. See
    /// [`DetectSettings::within`].
    pub max_series: usize,
    /// Most training time per second of samples; trainings past it wait.
    pub training_budget: Duration,
}

/// Most series scored whatever the memory budget: beyond it, scoring every
/// series every second would cost more CPU than the agent is meant to use.
const MAX_SCORED: usize = 2000;

impl DetectSettings {
    /// The defaults, scoring as many series as fit in half of the agent's
    /// memory budget once every detector's history is full (about 21 KB
    /// each, both views: 2,000 series fit in half of 100 MiB), and never
    /// more than 2,000.
    pub fn within(budget_rss: u64) -> Self {
        let params = Params::default();
        let each = (Detector::full_bytes(&params) + std::mem::size_of::<Watched>() + 256) as u64;
        let fits = usize::try_from(budget_rss / 2 / each).unwrap_or(usize::MAX);
        Self {
            max_series: fits.clamp(1, MAX_SCORED),
            params,
            ..Self::default()
        }
    }
}

impl Default for DetectSettings {
    fn default() -> Self {
        Self {
            params: Params::default(),
            threshold: 0.6,
            min_series: 3,
            group_window_ms: 30_000,
            quiet_ms: 120_000,
            max_series: MAX_SCORED,
            training_budget: Duration::from_millis(20),
        }
    }
}

/// What the bank knows of a series.
pub(in crate::detect) struct Watched {
    key: String,
    /// How a person names it ("disk writes on nvme0n1").
    human: String,
    unit: String,
    counter: bool,
    detector: Detector,
    last: Option<(TimestampMs, f64)>,
    /// Exponentially weighted mean and variance of the scored values.
    mean: f64,
    var: f64,
    seen: u64,
    /// What its values can be (see [`bounds`]): the expected range stays
    /// inside.
    bounds: (f64, f64),
}

/// One anomalous sample.
#[derive(Debug, Clone)]
struct Flag {
    ts: TimestampMs,
    series: SeriesId,
    score: f64,
    value: f64,
    expected: (f64, f64),
    /// Whether the slow view (the moving average) scored it.
    slow: bool,
}

/// Every detector of the node, and the grouping of their anomalies.
pub(in crate::detect) struct Bank {
    settings: DetectSettings,
    host: String,
    series: HashMap<SeriesId, Watched>,
    /// Anomalies of the group window, oldest first.
    flags: VecDeque<Flag>,
    /// The open episode: the strongest anomaly of each series in it.
    episode: Option<BTreeMap<SeriesId, Flag>>,
    /// Series keys whose threshold operator feedback has raised.
    desensitized: HashSet<String>,
    pub unscored: u64,
    rate: f64,
    /// The second being budgeted, and the training time spent in it.
    budget_second: i64,
    spent: Duration,
    pub trainings: u64,
    /// Rows that would have trained but were over the budget.
    pub over_budget: u64,
    /// Where models are kept across restarts.
    kept: Option<Kept>,
    /// The resource budget's word on training.
    shed: Option<Arc<crate::budget::Shed>>,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("series", &self.series.len())
            .field("flags", &self.flags.len())
            .finish_non_exhaustive()
    }
}

/// What a series' values can be, by its kind, name and unit: a counter's
/// rate, and an amount of bytes, time, energy, power, frequency or things,
/// is never negative; a utilization is a share of one.
fn bounds(desc: &SeriesDesc) -> (f64, f64) {
    let unit = desc.unit.as_str();
    if unit == "1" && desc.key.name.ends_with(".utilization") {
        return (0.0, 1.0);
    }
    let amount = matches!(unit, "By" | "By/s" | "s" | "ms" | "J" | "W" | "Hz")
        || (unit.starts_with('{') && unit.ends_with('}'));
    if desc.kind == MetricKind::Counter || amount {
        (0.0, f64::INFINITY)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
}

fn is_scored(desc: &SeriesDesc) -> bool {
    !desc.key.name.starts_with("ward.")
}

impl Bank {
    pub fn new(settings: DetectSettings, host: &str) -> Self {
        Self {
            settings,
            host: host.to_string(),
            series: HashMap::new(),
            flags: VecDeque::new(),
            episode: None,
            desensitized: HashSet::new(),
            unscored: 0,
            rate: 0.0,
            budget_second: 0,
            spent: Duration::ZERO,
            trainings: 0,
            over_budget: 0,
            kept: None,
            shed: None,
        }
    }

    /// Trains only while the resource budget allows it.
    pub fn with_shed(mut self, shed: Arc<crate::budget::Shed>) -> Self {
        self.shed = Some(shed);
        self
    }

    /// Keeps models in `store`'s data directory: read now, given to each
    /// series when it is first seen, written by [`Bank::save`].
    pub fn with_store(mut self, store: SharedStore) -> Self {
        self.kept = Some(Kept::load(store));
        self
    }

    /// Heap bytes held for the watched series: detectors and names.
    pub fn heap_bytes(&self) -> u64 {
        let each = self.series.values().map(|w| {
            w.key.capacity() + w.human.capacity() + w.unit.capacity() + w.detector.heap_bytes()
        });
        let table = self.series.capacity() * std::mem::size_of::<(SeriesId, Watched)>();
        (table + each.sum::<usize>()) as u64
    }

    /// Writes every detector's models (and those kept for series not seen
    /// since the start) to the models file, one detector at a time.
    pub fn save(&mut self) {
        let Some(kept) = &mut self.kept else {
            return;
        };
        let mut saved = 0;
        let detectors = self.series.values().filter_map(|w| {
            let state = w.detector.save()?;
            saved += 1;
            Some((w.key.as_bytes(), Cow::Owned(state.encode())))
        });
        let others = kept
            .unclaimed
            .iter()
            .map(|(k, v)| (k.as_bytes(), Cow::Borrowed(v.as_slice())));
        let written = kept.file.write(detectors.chain(others));
        match written {
            Ok(bytes) => debug!(detectors = saved, bytes, "detector models saved"),
            Err(e) => {
                warn!(error = %e, "could not save the detectors' models");
                return;
            }
        }
        if !kept.legacy.is_empty() {
            let mut st = kept.store.lock();
            while let Some(key) = kept.legacy.pop() {
                if let Err(e) = st.remove_doc(Collection::Models, key.as_bytes()) {
                    warn!(error = %e, "could not remove models an older agent kept in the store");
                    kept.legacy.push(key);
                    break;
                }
            }
        }
    }

    pub fn describe(&mut self, id: SeriesId, desc: &SeriesDesc) {
        if !is_scored(desc) || self.series.contains_key(&id) {
            return;
        }
        if self.series.len() >= self.settings.max_series {
            self.unscored += 1;
            return;
        }
        // Stagger trainings: series registered together must not all train
        // on the same tick.
        let mut params = self.settings.params.clone();
        params.warm_up += (id.0 as usize * 37) % params.retrain_every.max(1);
        let key = desc.key.to_string();
        let saved = self.kept.as_mut().and_then(|kept| {
            let bytes = kept.unclaimed.remove(&key)?;
            Saved::decode(&bytes)
                .inspect_err(|e| match e {
                    SavedError::OtherFormat(_) => {
                        debug!(series = %key, error = %e, "kept models discarded: relearning")
                    }
                    _ => warn!(series = %key, error = %e, "kept models unreadable: relearning"),
                })
                .ok()
        });
        let detector = match saved {
            Some(saved) => Detector::restore(params, &saved),
            None => Detector::new(params),
        };
        self.series.insert(
            id,
            Watched {
                key,
                human: super::names::human(&desc.key),
                unit: desc.unit.clone(),
                counter: desc.kind == MetricKind::Counter,
                detector,
                last: None,
                mean: 0.0,
                var: 0.0,
                seen: 0,
                bounds: bounds(desc),
            },
        );
    }

    /// Scores `samples`; anomalies are remembered for grouping.
    pub fn score(&mut self, samples: &[Sample]) {
        for s in samples {
            let Some(w) = self.series.get_mut(&s.series) else {
                continue;
            };
            let value = if w.counter {
                let prev = w.last.replace((s.ts, s.value));
                match prev {
                    Some((t, v)) if s.ts > t && s.value >= v => {
                        (s.value - v) * 1000.0 / (s.ts - t) as f64
                    }
                    // First sample, or a reset: no rate yet.
                    _ => continue,
                }
            } else {
                s.value
            };
            let expected = if w.seen >= 60 {
                let sd = w.var.sqrt();
                let (low, high) = w.bounds;
                (
                    (w.mean - 3.0 * sd).clamp(low, high),
                    (w.mean + 3.0 * sd).clamp(low, high),
                )
            } else {
                (f64::NEG_INFINITY, f64::INFINITY)
            };
            // Training time spent this second, against the budget.
            if s.ts / 1000 != self.budget_second {
                (self.budget_second, self.spent) = (s.ts / 1000, Duration::ZERO);
            }
            let may_train = self.spent < self.settings.training_budget
                && !self
                    .shed
                    .as_ref()
                    .is_some_and(|s| s.training.load(Ordering::Relaxed));
            let started = Instant::now();
            let waiting = w.detector.training_deferred();
            let (score, trained) = w.detector.score_at(s.ts, value, may_train);
            if trained {
                self.spent += started.elapsed();
                self.trainings += 1;
            } else if !waiting && w.detector.training_deferred() {
                self.over_budget += 1;
            }
            // About ten minutes of memory at one sample a second.
            let alpha = if w.seen == 0 {
                1.0
            } else {
                (1.0 / (w.seen as f64 + 1.0)).max(1.0 / 600.0)
            };
            let d = value - w.mean;
            w.mean += alpha * d;
            w.var = (1.0 - alpha) * (w.var + alpha * d * d);
            w.seen += 1;
            let threshold = if self.desensitized.contains(&w.key) {
                (self.settings.threshold + 1.0) / 2.0
            } else {
                self.settings.threshold
            };
            if score >= threshold {
                self.flags.push_back(Flag {
                    ts: s.ts,
                    series: s.series,
                    score,
                    value,
                    expected,
                    slow: w.detector.slow_led(),
                });
            }
        }
    }

    /// Feedback on anomaly incidents sets which series count less.
    pub fn apply_feedback(&mut self, incidents: &[ward_shared::incident::Incident]) {
        self.desensitized = incidents
            .iter()
            .filter(|i| i.source == IncidentSource::Anomaly)
            .filter(|i| {
                matches!(
                    i.feedback,
                    Some(Feedback::FalsePositive | Feedback::Expected)
                )
            })
            .flat_map(|i| i.signals.iter().map(|s| s.what.clone()))
            .collect();
    }

    /// How many series have a detector.
    pub fn scored(&self) -> usize {
        self.series.len()
    }
}
