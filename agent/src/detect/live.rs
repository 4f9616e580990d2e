//! Detection in the running agent: the thread that runs the detector bank
//! (`bank/`), fed with every sample the collectors store without ever
//! making them wait, and its settings. The bank scores every series,
//! keeps their models across restarts (`bank/kept.rs`) and groups
//! anomalies that start close together into one incident
//! (`bank/episode.rs`); the host anomaly rate is a series of its own.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use ward_shared::incident::IncidentContext;
use ward_shared::{Sample, SeriesDesc, SeriesId, TimestampMs};

use super::DetectSettings;
use super::bank::Bank;
use crate::incidents::SharedIncidents;
use crate::store::SharedStore;

/// How often the detectors' models are written to the store.
const SAVE_EVERY_MS: i64 = 10 * 60_000;

/// What was going on at the time, for an incident's context.
pub type ContextFn = Box<dyn Fn() -> IncidentContext + Send>;

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
                    stats.series.store(bank.scored() as u64, Ordering::Relaxed);
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
