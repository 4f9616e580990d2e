//! Detection in the running agent: a detector per series, fed with every
//! sample the collectors store, on a thread of its own so that training
//! never delays collection; anomalies that start close together become one
//! incident; the host anomaly rate is a series of its own.
//!
//! - Every numeric series is scored, counters as their per-second rate,
//!   except the agent's own (`ward.*`), which would mostly measure Ward.
//! - A sample whose score reaches the series' threshold is an anomaly.
//!   Anomalies of at least [`DetectSettings::min_series`] series within
//!   [`DetectSettings::group_window_ms`] open the host's anomaly incident
//!   (key `anomaly:HOST`); later ones join it while it lasts; after
//!   [`DetectSettings::quiet_ms`] without any, its condition is cleared (and
//!   the incident book resolves it after its quiet period).
//! - Each signal names the series, its value against the range expected from
//!   its recent past (exponentially weighted mean +/- 3 sigma over about ten
//!   minutes), and the model that fired: the k-means models kept, when the
//!   newest was trained and on how many rows.
//! - Operator feedback is sensitivity: a series in an anomaly incident marked
//!   "false positive" or "expected" needs a higher score to count again
//!   (halfway from its threshold to 1), for as long as that feedback stands;
//!   changing the feedback to "confirmed" gives the threshold back.
//! - Training runs on the detection thread, at most
//!   [`DetectSettings::training_budget`] of it per second of samples; a
//!   training due past it waits for a later sample (counted).
//! - `ward.anomaly.rate{host.name}`: the share of scored series with an
//!   anomaly in the last 10 s, smoothed over about a minute, once a second.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use ward_shared::incident::{Feedback, IncidentContext, IncidentSource, Severity, Signal};
use ward_shared::{MetricKind, Sample, SeriesDesc, SeriesId, TimestampMs};

use super::{Detector, Params, SAVED_FORMAT, Saved, SavedError};
use crate::incidents::{Raise, SharedIncidents};
use crate::store::SharedStore;
use crate::store::{Collection, ModelFile};

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
struct Watched {
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

/// How often the detectors' models are written to the store.
const SAVE_EVERY_MS: i64 = 10 * 60_000;

/// What was going on at the time, for an incident's context.
pub type ContextFn = Box<dyn Fn() -> IncidentContext + Send>;

/// Where the detectors' models are kept, and what was read back.
struct Kept {
    file: ModelFile,
    store: SharedStore,
    /// Models read at start whose series has not been seen since: written
    /// back with the others, so that a series gone for a while keeps them.
    unclaimed: HashMap<String, Vec<u8>>,
    /// Keys of models an older agent kept in the store's documents, removed
    /// once the file holds them.
    legacy: Vec<String>,
}

impl Kept {
    /// Reads what is kept: the models file, or else (an agent that kept
    /// them in the store before) the store's documents.
    fn load(store: SharedStore) -> Self {
        let (file, docs) = {
            let st = store.lock();
            let docs = st
                .docs(Collection::Models, b"")
                .inspect_err(|e| warn!(error = %e, "could not read models kept in the store"))
                .unwrap_or_default();
            (st.model_file(), docs)
        };
        let docs: Vec<(String, Vec<u8>)> = docs
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect();
        let legacy = docs.iter().map(|(k, _)| k.clone()).collect();
        let unclaimed = match file.read() {
            Ok(Some(entries)) => entries
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect(),
            Ok(None) => docs.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "kept models unreadable: relearning");
                HashMap::new()
            }
        };
        Self {
            file,
            store,
            unclaimed,
            legacy,
        }
    }
}

/// Every detector of the node, and the grouping of their anomalies.
pub struct Bank {
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
                (w.mean - 3.0 * sd, w.mean + 3.0 * sd)
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

    /// Groups the anomalies up to `now`: opens, updates or clears the host's
    /// incident; returns the anomaly rate to record.
    pub fn group(
        &mut self,
        now: TimestampMs,
        incidents: &SharedIncidents,
        context: &dyn Fn() -> IncidentContext,
    ) -> f64 {
        let window = self.settings.group_window_ms;
        while self.flags.front().is_some_and(|f| f.ts < now - window) {
            self.flags.pop_front();
        }
        let recent: HashSet<SeriesId> = self
            .flags
            .iter()
            .filter(|f| f.ts >= now - 10_000)
            .map(|f| f.series)
            .collect();
        let share = recent.len() as f64 / self.series.len().max(1) as f64;
        self.rate += (share - self.rate) / 60.0;
        let in_window: HashSet<SeriesId> = self.flags.iter().map(|f| f.series).collect();
        let key = format!("anomaly:{}", self.host);
        let grows = match &self.episode {
            None => in_window.len() >= self.settings.min_series,
            Some(seen) => self.flags.iter().any(|f| {
                seen.get(&f.series)
                    .is_none_or(|old| f.score > old.score && f.ts > old.ts)
            }),
        };
        if grows {
            let seen = self.episode.get_or_insert_with(BTreeMap::new);
            for f in &self.flags {
                let keep = seen.get(&f.series).is_none_or(|old| f.score >= old.score);
                if keep {
                    seen.insert(f.series, f.clone());
                }
            }
            let raise = self.describe_episode(&key, context());
            if let Err(e) = incidents.lock().raise(raise, now) {
                warn!(error = %e, "could not record the anomaly incident");
            }
        } else if let Some(seen) = &self.episode {
            let last = seen.values().map(|f| f.ts).max().unwrap_or(now);
            let latest = self.flags.back().map_or(last, |f| f.ts.max(last));
            if now - latest >= self.settings.quiet_ms {
                self.episode = None;
                let quiet = self.settings.quiet_ms / 1000;
                if let Err(e) =
                    incidents
                        .lock()
                        .clear(&key, &format!("no anomaly for {quiet} s"), now)
                {
                    warn!(error = %e, "could not clear the anomaly incident");
                }
            }
        }
        self.rate
    }

    fn describe_episode(&self, key: &str, context: IncidentContext) -> Raise {
        let mut flags: Vec<&Flag> = self
            .episode
            .as_ref()
            .map(|s| s.values().collect())
            .unwrap_or_default();
        flags.sort_by(|a, b| b.score.total_cmp(&a.score));
        let total: f64 = flags.iter().map(|f| f.score).sum::<f64>().max(1e-9);
        let signals: Vec<Signal> = flags
            .iter()
            .filter_map(|f| {
                let w = self.series.get(&f.series)?;
                let (models, view): (Vec<_>, String) = if f.slow {
                    (
                        w.detector.slow_models().collect(),
                        format!(
                            "the {}-sample moving average",
                            self.settings.params.slow_window
                        ),
                    )
                } else {
                    (w.detector.models().collect(), "the samples".to_string())
                };
                let newest = models.last();
                Some(Signal {
                    what: w.key.clone(),
                    observed: f.value,
                    expected_low: f.expected.0.is_finite().then_some(f.expected.0),
                    expected_high: f.expected.1.is_finite().then_some(f.expected.1),
                    unit: if w.counter { format!("{}/s", w.unit) } else { w.unit.clone() },
                    contribution: f.score / total,
                    model: match newest {
                        Some(m) => format!(
                            "k-means (k=2) on the shape and level of {view}, score {:.2}; {} models kept, the newest trained {} on the {} samples before it (model format {SAVED_FORMAT})",
                            f.score,
                            models.len(),
                            if m.trained_ts > 0 {
                                format!("at {} (row {})", ward_shared::time::utc(m.trained_ts), m.trained_at)
                            } else {
                                format!("at row {}", m.trained_at)
                            },
                            m.trained_on
                        ),
                        None => format!("k-means (k=2) on {view}, score {:.2}", f.score),
                    },
                })
            })
            // The twenty that explain most.
            .take(20)
            .collect();
        let share = flags.len() as f64 / self.series.len().max(1) as f64;
        // "disk writes on nvme0n1 with iowait and 3 more unusual on db-7, since 14:32"
        let mut names: Vec<&str> = Vec::new();
        for f in &flags {
            if let Some(w) = self.series.get(&f.series)
                && !names.contains(&w.human.as_str())
            {
                names.push(&w.human);
            }
        }
        let lead = match names.as_slice() {
            [] => "?".to_string(),
            [one] => one.to_string(),
            [one, two] => format!("{one} with {two}"),
            [one, two, rest @ ..] => format!("{one} with {two} and {} more", rest.len()),
        };
        let since = flags.iter().map(|f| f.ts).min().unwrap_or(0);
        Raise {
            key: key.to_string(),
            title: format!(
                "{lead} unusual on {}, since {} ({} series)",
                self.host,
                &ward_shared::time::utc(since)[11..16],
                flags.len()
            ),
            severity: if share >= 0.25 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            source: IncidentSource::Anomaly,
            signals,
            context,
        }
    }
}

/// Messages to the detection thread.
#[derive(Debug)]
pub enum Msg {
    Describe(SeriesId, SeriesDesc),
    Samples(Vec<Sample>),
}

/// How detection is doing, for the agent's status.
#[derive(Debug, Default)]
pub struct DetectStats {
    /// Series with a detector.
    pub series: AtomicU64,
    /// Batches the detection thread was too busy to take.
    pub dropped: AtomicU64,
    /// The host anomaly rate, as f64 bits.
    pub rate: AtomicU64,
    pub trainings: AtomicU64,
    /// Trainings put off by the CPU budget (each retried on a later row).
    pub deferred: AtomicU64,
    /// Series left unscored: more than `max_series`.
    pub unscored: AtomicU64,
    pub max_series: AtomicU64,
    /// Heap bytes the detectors hold, as last counted.
    pub memory: AtomicU64,
}

/// The collectors' side: hands samples over without ever waiting.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: SyncSender<Msg>,
    pub stats: Arc<DetectStats>,
}

impl Feed {
    pub fn send(&self, msg: Msg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Starts the detection thread; it ends when every [`Feed`] is dropped.
pub fn start(
    settings: DetectSettings,
    host: &str,
    store: SharedStore,
    shed: Arc<crate::budget::Shed>,
    incidents: SharedIncidents,
    context: ContextFn,
    rate: impl FnMut(TimestampMs, f64) + Send + 'static,
) -> std::io::Result<(Feed, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let stats = Arc::new(DetectStats::default());
    stats
        .max_series
        .store(settings.max_series as u64, Ordering::Relaxed);
    let bank = Bank::new(settings, host).with_store(store).with_shed(shed);
    let shared = stats.clone();
    let handle = std::thread::Builder::new()
        .name("detect".into())
        .spawn(move || run(bank, rx, incidents, context, rate, &shared))?;
    Ok((Feed { tx, stats }, handle))
}

fn run(
    mut bank: Bank,
    rx: Receiver<Msg>,
    incidents: SharedIncidents,
    context: ContextFn,
    mut rate: impl FnMut(TimestampMs, f64),
    stats: &DetectStats,
) {
    let mut last_group = 0;
    let mut ticks = 0u64;
    let mut last_save = 0;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Describe(id, desc) => bank.describe(id, &desc),
            Msg::Samples(samples) => {
                let now = samples.iter().map(|s| s.ts).max().unwrap_or(0);
                bank.score(&samples);
                if now >= last_group + 1000 {
                    last_group = now;
                    ticks += 1;
                    if ticks % 10 == 1 {
                        bank.apply_feedback(&incidents.lock().list(true));
                    }
                    // Every second (a walk over the detectors' models): the
                    // first ticks may come before any scored series.
                    stats.memory.store(bank.heap_bytes(), Ordering::Relaxed);
                    let r = bank.group(now, &incidents, &*context);
                    rate(now, r);
                    stats
                        .series
                        .store(bank.series.len() as u64, Ordering::Relaxed);
                    stats.rate.store(r.to_bits(), Ordering::Relaxed);
                    stats.trainings.store(bank.trainings, Ordering::Relaxed);
                    stats.deferred.store(bank.over_budget, Ordering::Relaxed);
                    stats.unscored.store(bank.unscored, Ordering::Relaxed);
                    if now - last_save >= SAVE_EVERY_MS {
                        if last_save > 0 {
                            bank.save();
                        }
                        last_save = now;
                    }
                }
            }
        }
    }
    // The agent is stopping: keep what was learnt.
    bank.save();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Model;
    use crate::incidents::Incidents;
    use crate::store::SharedStore;
    use crate::store::{Store, StoreSettings};
    use ward_shared::incident::IncidentState;
    use ward_shared::{Labels, SeriesKey};

    fn desc(name: &str, kind: MetricKind) -> SeriesDesc {
        let key = SeriesKey::new(name, Labels::default()).unwrap();
        match kind {
            MetricKind::Counter => SeriesDesc::counter(key, "By", 0),
            MetricKind::Gauge => SeriesDesc::gauge(key, "1"),
        }
    }

    /// Ten quiet series for 12 minutes at 1 s; at minute 8, three of them
    /// jump together for a few seconds.
    #[test]
    fn anomalies_that_start_together_become_one_incident_that_explains_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let incidents = SharedIncidents::new(Incidents::open(store, 60_000).unwrap());
        // Smaller models than the agent's, for a test that runs in seconds.
        let settings = DetectSettings {
            params: Params {
                warm_up: 120,
                train_window: 300,
                retrain_every: 150,
                models: 3,
                ..Params::default()
            },
            ..DetectSettings::default()
        };
        let mut bank = Bank::new(settings, "db-7");
        for i in 0..10u32 {
            let kind = if i == 0 {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            };
            bank.describe(SeriesId(i), &desc(&format!("test.s{i}"), kind));
        }
        bank.describe(
            SeriesId(99),
            &desc("ward.agent.cpu.time", MetricKind::Counter),
        );
        let context = || IncidentContext {
            jobs: vec!["etl run 7".into()],
            ..Default::default()
        };
        let mut counter = 0.0;
        let mut opened_at = None;
        let mut rates = Vec::new();
        for t in 0..720i64 {
            let ts = t * 1000;
            let jump = (480..485).contains(&t);
            let mut samples = Vec::new();
            for i in 0..10u32 {
                let base = 50.0 + f64::from(i) + ((t as f64) / 30.0 + f64::from(i)).sin();
                let value = match i {
                    0 => {
                        counter += if jump {
                            90_000.0
                        } else {
                            1000.0 + (t % 7) as f64
                        };
                        counter
                    }
                    1 | 2 if jump => base * 4.0,
                    _ => base,
                };
                samples.push(Sample {
                    series: SeriesId(i),
                    ts,
                    value,
                });
            }
            bank.score(&samples);
            rates.push(bank.group(ts, &incidents, &context));
            if opened_at.is_none() && !incidents.lock().list(false).is_empty() {
                opened_at = Some(t);
            }
        }
        let opened_at = opened_at.expect("the joint jump opens an incident");
        assert!((480..490).contains(&opened_at), "opened at {opened_at} s");
        let all = incidents.lock().list(true);
        assert_eq!(all.len(), 1, "one incident for the episode: {all:#?}");
        let i = &all[0];
        assert_eq!(i.key, "anomaly:db-7");
        assert_eq!(i.source, IncidentSource::Anomaly);
        // Unknown names read as their keys; known ones as phrases (detect::names).
        assert!(
            i.title.starts_with("test.s")
                && i.title.contains(" with test.s")
                && i.title
                    .ends_with(" and 1 more unusual on db-7, since 00:08 (3 series)"),
            "{}",
            i.title
        );
        let what: HashSet<&str> = i.signals.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(what, HashSet::from(["test.s0", "test.s1", "test.s2"]));
        let s1 = i.signals.iter().find(|s| s.what == "test.s1").unwrap();
        assert!(s1.observed > s1.expected_high.unwrap(), "{s1:?}");
        let s0 = i.signals.iter().find(|s| s.what == "test.s0").unwrap();
        assert_eq!(s0.unit, "By/s", "a counter is judged by its rate");
        assert!(s0.observed > 80_000.0, "{s0:?}");
        assert!(
            s1.model
                .contains("3 models kept, the newest trained at 1970-01-01 00:0"),
            "{}",
            s1.model
        );
        // A jump of a few samples: the samples' view saw it, not the average's.
        assert!(
            s1.model
                .starts_with("k-means (k=2) on the shape and level of the samples, score"),
            "{}",
            s1.model
        );
        let total: f64 = i.signals.iter().map(|s| s.contribution).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(i.context.jobs, ["etl run 7"]);
        // Quiet again: cleared after the quiet period.
        assert!(
            i.cleared.is_some(),
            "cleared after {} s of quiet",
            DetectSettings::default().quiet_ms / 1000
        );
        assert_eq!(
            i.state,
            IncidentState::Open,
            "the book resolves it on its own clock"
        );
        assert!(
            rates[485] > rates[400],
            "the anomaly rate rises with the episode"
        );
        assert!(rates.iter().all(|r| (0.0..=1.0).contains(r)));
    }

    /// Detectors that keep two models, the first after 60 rows.
    fn two_quick_models() -> DetectSettings {
        DetectSettings {
            params: Params {
                warm_up: 60,
                train_window: 120,
                retrain_every: 60,
                models: 2,
                ..Params::default()
            },
            ..DetectSettings::default()
        }
    }

    #[test]
    fn models_are_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let settings = two_quick_models();
        let mut bank = Bank::new(settings.clone(), "h").with_store(store.clone());
        bank.describe(SeriesId(0), &desc("test.s0", MetricKind::Gauge));
        for t in 0..300 {
            let value = (f64::from(t) / 9.0).sin();
            bank.score(&[Sample {
                series: SeriesId(0),
                ts: 1_000_000 + i64::from(t) * 1000,
                value,
            }]);
        }
        let before: Vec<Model> = bank.series[&SeriesId(0)]
            .detector
            .models()
            .cloned()
            .collect();
        assert_eq!(before.len(), 2);
        let slow_before: Vec<Model> = bank.series[&SeriesId(0)]
            .detector
            .slow_models()
            .cloned()
            .collect();
        assert_eq!(slow_before.len(), 2, "the slow view trains too");
        assert!(
            before
                .iter()
                .chain(&slow_before)
                .all(|m| m.trained_ts > 1_000_000),
            "each model says when: {before:?} {slow_before:?}"
        );
        assert_ne!(before, slow_before);
        bank.save();
        drop(bank);

        // A new agent over the same store: the series' detector has its models back.
        let mut again = Bank::new(settings.clone(), "h").with_store(store.clone());
        again.describe(SeriesId(5), &desc("test.s0", MetricKind::Gauge));
        let after: Vec<Model> = again.series[&SeriesId(5)]
            .detector
            .models()
            .cloned()
            .collect();
        assert_eq!(after, before);
        let slow_after: Vec<Model> = again.series[&SeriesId(5)]
            .detector
            .slow_models()
            .cloned()
            .collect();
        assert_eq!(slow_after, slow_before);
        // Other parameters, other models: the saved ones are not used.
        let mut other = Bank::new(
            DetectSettings {
                params: Params {
                    train_window: 500,
                    ..settings.params.clone()
                },
                ..settings
            },
            "h",
        )
        .with_store(store);
        other.describe(SeriesId(5), &desc("test.s0", MetricKind::Gauge));
        assert_eq!(other.series[&SeriesId(5)].detector.models().count(), 0);
    }

    #[test]
    fn models_an_older_agent_kept_in_the_store_are_used_and_moved_to_the_models_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let settings = two_quick_models();
        // What an older agent left: a trained detector's models as a document.
        let mut trained = Detector::new(settings.params.clone());
        for t in 0..300 {
            trained.score(f64::from(t % 17));
        }
        let saved = trained.save().unwrap();
        let key = desc("test.s0", MetricKind::Gauge).key.to_string();
        store
            .lock()
            .put_doc(Collection::Models, key.as_bytes(), &saved.encode())
            .unwrap();
        let file = store.lock().model_file();

        let mut bank = Bank::new(settings.clone(), "h").with_store(store.clone());
        bank.describe(SeriesId(3), &desc("test.s0", MetricKind::Gauge));
        let models = |bank: &Bank, id| -> Vec<Model> {
            bank.series[&SeriesId(id)]
                .detector
                .models()
                .cloned()
                .collect()
        };
        assert_eq!(models(&bank, 3), saved.models);
        assert!(!file.path().exists(), "nothing written before a save");
        bank.save();
        assert!(file.path().exists());
        let left = store.lock().docs(Collection::Models, b"").unwrap();
        assert!(left.is_empty(), "moved out of the store: {left:?}");

        // An agent that never sees the series keeps its models all the same.
        Bank::new(settings.clone(), "h")
            .with_store(store.clone())
            .save();
        // The next agent reads them from the file.
        let mut again = Bank::new(settings, "h").with_store(store);
        again.describe(SeriesId(4), &desc("test.s0", MetricKind::Gauge));
        assert_eq!(models(&again, 4), saved.models);
    }

    #[test]
    fn a_false_positive_raises_the_bar_for_its_series_until_taken_back() {
        let mut bank = Bank::new(DetectSettings::default(), "h");
        let incident = |feedback| ward_shared::incident::Incident {
            id: 1,
            key: "anomaly:h".into(),
            title: String::new(),
            severity: Severity::Warning,
            state: ward_shared::incident::IncidentState::Resolved,
            source: IncidentSource::Anomaly,
            opened: 0,
            updated: 0,
            peak: 0,
            cleared: None,
            resolved: None,
            signals: vec![Signal {
                what: "test.s1".into(),
                observed: 1.0,
                expected_low: None,
                expected_high: None,
                unit: "1".into(),
                contribution: 1.0,
                model: String::new(),
            }],
            context: IncidentContext::default(),
            notes: Vec::new(),
            feedback,
            history: Vec::new(),
        };
        bank.apply_feedback(&[incident(Some(Feedback::FalsePositive))]);
        assert!(bank.desensitized.contains("test.s1"));
        bank.apply_feedback(&[incident(Some(Feedback::Confirmed))]);
        assert!(bank.desensitized.is_empty(), "reversible");
    }
}
