//! The running agent: the store and the tasks around it.
//!
//! Owns the task layout and the shutdown order; it collects nothing itself
//! beyond the agent's own health (`ward.agent.*`, `ward.store.*`), which
//! proves the write path end to end until the host collectors land.
//!
//! Tasks, all stopped by one [`CancellationToken`]:
//! - tick: every `agent.interval`, sample the agent's own health and append it;
//! - flush: every `store.flush_interval`, make accepted samples durable;
//! - maintain: every minute, seal idle windows, apply retention and the budget.
//!
//! Shutdown order: stop the tasks (no new samples), then flush and seal the
//! store, then release the data directory.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use ward_shared::{Labels, Sample, SeriesDesc, SeriesId, SeriesKey, SeriesKeyError};

use crate::config::Config;
use crate::store::{Store, StoreError};

const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad built-in series: {0}")]
    Series(#[from] SeriesKeyError),
    #[error("a store task stopped: {0}")]
    Task(String),
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The store, shared by the agent's tasks.
#[derive(Debug, Clone)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub fn new(store: Store) -> Self {
        Self(Arc::new(Mutex::new(store)))
    }

    /// The store; a task that panicked while holding it leaves it usable,
    /// since every store operation leaves it consistent or returns an error.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn into_inner(self) -> Option<Store> {
        Arc::into_inner(self.0).map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The agent's own health series.
struct SelfMetrics {
    rss: SeriesId,
    cpu: SeriesId,
    stored: SeriesId,
    accepted: SeriesId,
}

impl SelfMetrics {
    fn register(store: &mut Store, host: &str) -> Result<Self, DaemonError> {
        let labels = || Labels::new([("host.name", host)]);
        let start = now_ms();
        Ok(Self {
            rss: store.register(SeriesDesc::gauge(
                SeriesKey::new("ward.agent.memory.rss", labels()?)?,
                "By",
            ))?,
            cpu: store.register(
                SeriesDesc::counter(
                    SeriesKey::new("ward.agent.cpu.time", labels()?)?,
                    "s",
                    start,
                )
                .with_precision(2),
            )?,
            stored: store.register(SeriesDesc::gauge(
                SeriesKey::new("ward.store.size", labels()?)?,
                "By",
            ))?,
            accepted: store.register(SeriesDesc::counter(
                SeriesKey::new("ward.store.samples", labels()?)?,
                "{sample}",
                start,
            ))?,
        })
    }

    fn sample(&self, store: &Store, ts: i64, out: &mut Vec<Sample>) {
        let stats = store.stats();
        if let Some(rss) = own_rss_bytes() {
            out.push(Sample {
                series: self.rss,
                ts,
                value: rss,
            });
        }
        if let Some(cpu) = own_cpu_seconds() {
            out.push(Sample {
                series: self.cpu,
                ts,
                value: cpu,
            });
        }
        out.push(Sample {
            series: self.stored,
            ts,
            value: stats.stored_bytes as f64,
        });
        out.push(Sample {
            series: self.accepted,
            ts,
            value: stats.samples_accepted as f64,
        });
    }
}

/// Resident set size from /proc/self/status.
fn own_rss_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// User plus system CPU time from /proc/self/stat (in USER_HZ = 100 ticks).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Runs the agent until `shutdown` is cancelled, then shuts down in order.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let mut store = Store::open(&config.agent.data_dir, config.store.options.clone())?;
    let metrics = SelfMetrics::register(&mut store, &config.agent.host_name)?;
    let store = SharedStore::new(store);
    info!(
        data_dir = %config.agent.data_dir.display(),
        host = %config.agent.host_name,
        interval = ?config.agent.interval,
        "agent started"
    );

    let tracker = TaskTracker::new();
    let failed = CancellationToken::new();

    tracker.spawn(every(
        config.agent.interval,
        shutdown.clone(),
        {
            let store = store.clone();
            let mut batch = Vec::new();
            move || {
                let mut s = store.lock();
                batch.clear();
                metrics.sample(&s, now_ms(), &mut batch);
                s.append(&batch).map(|_| ())
            }
        },
        failed.clone(),
    ));
    tracker.spawn(every(
        config.store.flush_interval,
        shutdown.clone(),
        {
            let store = store.clone();
            move || store.lock().flush()
        },
        failed.clone(),
    ));
    tracker.spawn(every(
        MAINTAIN_EVERY,
        shutdown.clone(),
        {
            let store = store.clone();
            move || store.lock().maintain(now_ms()).map(|_| ())
        },
        failed.clone(),
    ));
    tracker.close();

    let outcome = tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        () = failed.cancelled() => Err(DaemonError::Task("see the error logged above".into())),
    };
    info!("shutting down");
    shutdown.cancel();
    tracker.wait().await;
    match store.into_inner() {
        Some(store) => store.close()?,
        None => error!("store still shared at shutdown; not sealed (the log replays it)"),
    }
    info!("agent stopped");
    outcome
}

/// Runs `work` every `period` until `stop`; a failure is logged, and a
/// failure ten times in a row stops the agent through `failed`.
async fn every(
    period: Duration,
    stop: CancellationToken,
    mut work: impl FnMut() -> Result<(), StoreError> + Send + 'static,
    failed: CancellationToken,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match work() {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                warn!(error = %e, failures, "store task failed");
                if failures >= 10 {
                    error!(error = %e, "store task failed ten times in a row; stopping");
                    failed.cancel();
                    return;
                }
            }
        }
    }
}
