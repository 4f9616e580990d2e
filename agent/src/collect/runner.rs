//! Runs collectors: a thread each, ticking on multiples of the interval
//! (wall clock), and one writer that turns their values into samples.
//!
//! A collector that is slow or stuck delays only itself: its thread misses
//! ticks (counted), the others go on. Values reach the writer through a
//! bounded channel; when the writer falls behind, a batch is dropped and
//! counted rather than queued without bound. Each collector's health (runs,
//! errors, last error, last duration, missed ticks, state) is kept in a
//! [`CollectorStatus`] for the API, and written as `ward.collector.*` series.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use ward_shared::{Sample, SeriesDesc, SeriesId};

use super::{CollectError, Collector, Emitter, LocalId, key};
use crate::store::StoreError;
use ward_shared::time::now_ms;

/// Where a collector stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorState {
    Running,
    /// Stopped for good: the host cannot give what it collects.
    Unsupported(String),
    Stopped,
}

/// One collector's health, shared with whoever reports it.
#[derive(Debug)]
pub struct CollectorStatus {
    pub name: &'static str,
    pub interval: Duration,
    pub runs: AtomicU64,
    pub errors: AtomicU64,
    /// Ticks that passed while the collector was still busy with an earlier one.
    pub missed_ticks: AtomicU64,
    /// Batches the writer could not take in time.
    pub dropped_batches: AtomicU64,
    pub last_duration_us: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub state: Mutex<CollectorState>,
}

impl CollectorStatus {
    fn new(name: &'static str, interval: Duration) -> Self {
        Self {
            name,
            interval,
            runs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            missed_ticks: AtomicU64::new(0),
            dropped_batches: AtomicU64::new(0),
            last_duration_us: AtomicU64::new(0),
            last_error: Mutex::new(None),
            state: Mutex::new(CollectorState::Running),
        }
    }

    fn set_state(&self, state: CollectorState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn state(&self) -> CollectorState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One tick's output of one collector.
#[derive(Debug)]
struct Batch {
    collector: usize,
    ts: i64,
    declared: Vec<(LocalId, SeriesDesc)>,
    values: Vec<(LocalId, f64)>,
}

/// Tells threads to stop, waking them from their sleep.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps until `deadline`; true if asked to stop meanwhile.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// Appends samples; the daemon's store implements it.
pub trait SampleSink: Send + 'static {
    fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError>;
    fn append(&mut self, samples: &[Sample]) -> Result<(), StoreError>;
}

/// Running collectors and their writer.
#[derive(Debug)]
pub struct Collectors {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    statuses: Vec<Arc<CollectorStatus>>,
}

/// Series the runner writes about each collector.
struct HealthIds {
    duration: LocalId,
    errors: LocalId,
}

impl Collectors {
    /// Starts every collector with its interval, and the writer into `sink`.
    pub fn start(
        collectors: Vec<(Box<dyn Collector>, Duration)>,
        sink: impl SampleSink,
        host: &str,
    ) -> Self {
        let stop = Arc::new(Stop::default());
        let (tx, rx) = sync_channel::<Batch>(collectors.len().max(1) * 4);
        let mut threads = Vec::new();
        let mut statuses = Vec::new();
        for (index, (collector, interval)) in collectors.into_iter().enumerate() {
            let status = Arc::new(CollectorStatus::new(collector.name(), interval));
            statuses.push(status.clone());
            let stop = stop.clone();
            let tx = tx.clone();
            let host = host.to_string();
            let spawned = std::thread::Builder::new()
                .name(format!("collect-{}", collector.name()))
                .stack_size(256 << 10)
                .spawn(move || {
                    run_collector(index, collector, interval, &host, &status, &stop, &tx)
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => warn!(error = %e, "could not start a collector thread"),
            }
        }
        drop(tx);
        let writer = std::thread::Builder::new()
            .name("collect-writer".into())
            .spawn(move || write_batches(rx, sink))
            .map_err(|e| warn!(error = %e, "could not start the collector writer"))
            .ok();
        Self {
            stop,
            threads,
            writer,
            statuses,
        }
    }

    pub fn statuses(&self) -> &[Arc<CollectorStatus>] {
        &self.statuses
    }

    /// Stops every collector, then the writer once it has written what they sent.
    pub fn shutdown(mut self) {
        self.stop.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        for s in &self.statuses {
            if s.state() == CollectorState::Running {
                s.set_state(CollectorState::Stopped);
            }
        }
    }
}

fn run_collector(
    index: usize,
    mut collector: Box<dyn Collector>,
    interval: Duration,
    host: &str,
    status: &CollectorStatus,
    stop: &Stop,
    tx: &SyncSender<Batch>,
) {
    let name = collector.name();
    let interval_ms = (interval.as_millis() as i64).max(1);
    let mut out = Emitter::default();
    let health = HealthIds {
        duration: out.declare(
            SeriesDesc::gauge(
                key(
                    "ward.collector.duration",
                    &[("collector", name), ("host.name", host)],
                ),
                "s",
            )
            .with_precision(6),
        ),
        errors: out.declare(SeriesDesc::counter(
            key(
                "ward.collector.errors",
                &[("collector", name), ("host.name", host)],
            ),
            "{error}",
            now_ms(),
        )),
    };
    let mut last_tick = now_ms().div_euclid(interval_ms) * interval_ms;
    let mut logged_error = false;
    loop {
        let next = last_tick + interval_ms;
        let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
        if stop.sleep_until(Instant::now() + wait) {
            return;
        }
        let now = now_ms();
        // Ticks that came and went while the last one ran are skipped, not queued.
        let tick = now.div_euclid(interval_ms) * interval_ms;
        let missed = (tick - next) / interval_ms;
        if missed > 0 {
            status
                .missed_ticks
                .fetch_add(missed as u64, Ordering::Relaxed);
        }
        last_tick = tick;

        let started = Instant::now();
        let result = collector.collect(tick, &mut out);
        let took = started.elapsed();
        status.runs.fetch_add(1, Ordering::Relaxed);
        status
            .last_duration_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(()) => logged_error = false,
            Err(CollectError::Unsupported(why)) => {
                info!(collector = name, reason = %why, "collector unavailable on this host");
                status.set_state(CollectorState::Unsupported(why));
                return;
            }
            Err(e) => {
                status.errors.fetch_add(1, Ordering::Relaxed);
                let text = e.to_string();
                // Log a failure when it starts, not every second while it lasts.
                if !logged_error {
                    warn!(collector = name, error = %text, "collector failed");
                    logged_error = true;
                }
                *status.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            }
        }
        out.emit(health.duration, took.as_secs_f64());
        out.emit(health.errors, status.errors.load(Ordering::Relaxed) as f64);
        let batch = Batch {
            collector: index,
            ts: tick,
            declared: std::mem::take(&mut out.declared),
            values: std::mem::take(&mut out.values),
        };
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => {
                status.dropped_batches.fetch_add(1, Ordering::Relaxed);
                // Declarations must not be lost with the values: keep them for the next tick.
                out.declared = batch.declared;
                out.values = batch.values;
                out.values.clear();
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

fn write_batches(rx: Receiver<Batch>, mut sink: impl SampleSink) {
    // Per collector, its local ids' store ids.
    let mut ids: Vec<Vec<Option<SeriesId>>> = Vec::new();
    let mut samples = Vec::new();
    let mut failing = false;
    for batch in rx {
        if ids.len() <= batch.collector {
            ids.resize_with(batch.collector + 1, Vec::new);
        }
        let map = &mut ids[batch.collector];
        for (local, desc) in batch.declared {
            let slot = local.0 as usize;
            if map.len() <= slot {
                map.resize(slot + 1, None);
            }
            match sink.register(desc) {
                Ok(id) => map[slot] = Some(id),
                Err(e) => warn!(error = %e, "could not register a series"),
            }
        }
        samples.clear();
        samples.extend(batch.values.iter().filter_map(|&(local, value)| {
            map.get(local.0 as usize)
                .copied()
                .flatten()
                .map(|series| Sample {
                    series,
                    ts: batch.ts,
                    value,
                })
        }));
        match sink.append(&samples) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                warn!(error = %e, "could not store collected samples");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<(Vec<SeriesDesc>, Vec<Sample>)>>);

    impl SampleSink for Recorder {
        fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError> {
            let mut g = self.0.lock().unwrap();
            if let Some(i) = g.0.iter().position(|d| d.key == desc.key) {
                return Ok(SeriesId(i as u32));
            }
            g.0.push(desc);
            Ok(SeriesId(g.0.len() as u32 - 1))
        }
        fn append(&mut self, samples: &[Sample]) -> Result<(), StoreError> {
            self.0.lock().unwrap().1.extend_from_slice(samples);
            Ok(())
        }
    }

    struct Steady(Option<LocalId>);
    impl Collector for Steady {
        fn name(&self) -> &'static str {
            "steady"
        }
        fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
            let id = *self.0.get_or_insert_with(|| {
                out.declare(SeriesDesc::gauge(key("test.steady", &[]), "1"))
            });
            out.emit(id, 1.0);
            Ok(())
        }
    }

    /// Stuck for good after its first tick.
    struct Stuck(Arc<AtomicBool>);
    impl Collector for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn collect(&mut self, _ts: i64, _out: &mut Emitter) -> Result<(), CollectError> {
            while !self.0.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        }
    }

    struct Failing;
    impl Collector for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn collect(&mut self, _ts: i64, _out: &mut Emitter) -> Result<(), CollectError> {
            Err(CollectError::parse(
                std::path::Path::new("/proc/nothing"),
                "a line",
            ))
        }
    }

    struct Absent;
    impl Collector for Absent {
        fn name(&self) -> &'static str {
            "absent"
        }
        fn collect(&mut self, _ts: i64, _out: &mut Emitter) -> Result<(), CollectError> {
            Err(CollectError::Unsupported("no such device".into()))
        }
    }

    #[test]
    fn a_stuck_collector_delays_nobody_and_failures_are_counted() {
        let sink = Recorder::default();
        let release = Arc::new(AtomicBool::new(false));
        let tick = Duration::from_millis(50);
        let running = Collectors::start(
            vec![
                (Box::new(Steady(None)), tick),
                (Box::new(Stuck(release.clone())), tick),
                (Box::new(Failing), tick),
                (Box::new(Absent), tick),
            ],
            sink.clone(),
            "test-host",
        );
        std::thread::sleep(Duration::from_millis(600));
        let statuses: Vec<_> = running.statuses().to_vec();
        release.store(true, Ordering::Relaxed);
        running.shutdown();

        let steady = &statuses[0];
        assert!(
            steady.runs.load(Ordering::Relaxed) >= 8,
            "steady ran {:?}",
            steady.runs
        );
        assert!(statuses[1].runs.load(Ordering::Relaxed) <= 1);
        assert!(statuses[2].errors.load(Ordering::Relaxed) >= 8);
        assert_eq!(
            statuses[2].last_error().as_deref(),
            Some("/proc/nothing: cannot parse a line")
        );
        assert_eq!(
            statuses[3].state(),
            CollectorState::Unsupported("no such device".into())
        );

        let (descs, samples) = &*sink.0.lock().unwrap();
        let steady_id = descs
            .iter()
            .position(|d| d.key.name == "test.steady")
            .unwrap() as u32;
        let steady_samples: Vec<_> = samples.iter().filter(|s| s.series.0 == steady_id).collect();
        assert!(steady_samples.len() >= 8);
        // Stamped on the tick grid, never twice the same tick.
        assert!(steady_samples.iter().all(|s| s.ts % 50 == 0));
        assert!(steady_samples.windows(2).all(|w| w[0].ts < w[1].ts));
        // The failing collector's error count is a series too.
        assert!(descs.iter().any(|d| d.key.name == "ward.collector.errors"
            && d.key.labels.get("collector") == Some("failing")));
    }
}
