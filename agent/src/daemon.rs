//! The running agent: the store, the collectors, and the tasks around them.
//!
//! Owns the task layout and the shutdown order. Collectors run on threads of
//! their own (see `collect::runner`); the async side runs two timers:
//! - flush: every `store.flush_interval`, make accepted samples durable;
//! - maintain: every minute, seal idle windows, apply retention and the budget;
//! - health: every second, job clocks (overruns, missed runs), incidents
//!   that have been quiet long enough, every 5 s the job spool, every 10 s
//!   the static rules.
//!
//! Shutdown order: stop the API, stop the collectors (no new samples), stop
//! the timers, then flush and seal the store, then release the data directory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use ward_shared::{Sample, SeriesDesc, SeriesId};

use crate::budget::{Budget, Shed};
use crate::collect::Collector;
use crate::collect::agent::AgentCollector;
use crate::collect::cpu::CpuCollector;
use crate::collect::disk::DiskCollector;
use crate::collect::filesystem::FilesystemCollector;
use crate::collect::gpu::{GpuCollector, GpuTable, nvml::NvmlSource};
use crate::collect::memory::MemoryCollector;
use crate::collect::network::NetworkCollector;
use crate::collect::process::{ProcessCollector, ProcessTable};
use crate::collect::runner::{Collectors, SampleSink};
use crate::config::Config;
use crate::detect::live::{Feed, LiveSettings, Msg};
use crate::incidents::{Incidents, SharedIncidents};
use crate::jobs::{JobBook, SharedJobs};
use crate::rules::Rules;
use crate::store::{Store, StoreError};
use ward_shared::incident::IncidentContext;

const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Job clocks (overruns, missed runs) and incident auto-resolution.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// The resource budget is checked every this many health ticks.
const BUDGET_EVERY_TICKS: u64 = 5;
/// Health ticks between handing free heap pages back to the system.
const RELEASE_EVERY_TICKS: u64 = 60;
/// Static rules run every this many health ticks.
const RULES_EVERY_TICKS: u64 = 10;
/// The spool is read every this many health ticks.
const SPOOL_EVERY_TICKS: u64 = 5;

/// Spool files taken in and set aside, for the status.
#[derive(Debug, Clone, Default)]
struct SpoolCounts {
    delivered: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
}

impl SpoolCounts {
    fn add(&self, d: crate::jobs::spool::Drained) {
        self.delivered.fetch_add(d.files as u64, Ordering::Relaxed);
        self.bad.fetch_add(d.bad_files as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store task stopped: {0}")]
    Task(String),
}

pub use ward_shared::time::now_ms;

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

impl SampleSink for SharedStore {
    fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError> {
        self.lock().register(desc)
    }

    fn append(&mut self, samples: &[Sample]) -> Result<(), StoreError> {
        self.lock().append(samples).map(|_| ())
    }
}

/// Where the collectors' writer puts samples: the store, then detection.
struct DetectingSink {
    store: SharedStore,
    feed: Option<Feed>,
}

impl SampleSink for DetectingSink {
    fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError> {
        let id = self.store.lock().register(desc.clone())?;
        if let Some(feed) = &self.feed {
            feed.send(Msg::Describe(id, desc));
        }
        Ok(id)
    }

    fn append(&mut self, samples: &[Sample]) -> Result<(), StoreError> {
        self.store.lock().append(samples)?;
        if let Some(feed) = &self.feed {
            feed.send(Msg::Samples(samples.to_vec()));
        }
        Ok(())
    }
}

/// The handles the agent's parts share.
struct Parts {
    store: SharedStore,
    incidents: SharedIncidents,
    jobs: SharedJobs,
    processes: ProcessTable,
    gpus: GpuTable,
    shed: Arc<Shed>,
}

/// Starts the detection thread, with what incidents say was going on and
/// where the host anomaly rate is written.
fn start_detection(
    settings: LiveSettings,
    host: &str,
    parts: &Parts,
) -> Option<(Feed, std::thread::JoinHandle<()>)> {
    let context = {
        let (jobs, processes, gpus) = (
            parts.jobs.clone(),
            parts.processes.clone(),
            parts.gpus.clone(),
        );
        Box::new(move || IncidentContext {
            jobs: jobs.lock().running_now(),
            processes: processes
                .latest()
                .by_cpu
                .iter()
                .take(3)
                .map(|p| format!("{} (pid {}, {:.0}% CPU)", p.name, p.pid, p.cpu * 100.0))
                .collect(),
            gpus: gpus
                .latest()
                .devices
                .iter()
                .map(|d| match d.utilization {
                    Some(u) => format!("{} {} ({:.0}% busy)", d.name, d.uuid, u * 100.0),
                    None => format!("{} {}", d.name, d.uuid),
                })
                .collect(),
        })
    };
    let rate = {
        let store = parts.store.clone();
        let key = crate::collect::key("ward.anomaly.rate", &[("host.name", host)]);
        let mut id = None;
        move |ts, value| {
            let mut s = store.lock();
            if id.is_none() {
                id = s.register(SeriesDesc::gauge(key.clone(), "1")).ok();
            }
            if let Some(series) = id
                && let Err(e) = s.append(&[Sample { series, ts, value }])
            {
                warn!(error = %e, "could not store the anomaly rate");
            }
        }
    };
    match crate::detect::live::start(
        settings,
        host,
        parts.store.clone(),
        parts.shed.clone(),
        parts.incidents.clone(),
        context,
        rate,
    ) {
        Ok(started) => Some(started),
        Err(e) => {
            error!(error = %e, "anomaly detection unavailable: its thread did not start");
            None
        }
    }
}

/// The collectors the config turns on, each with its interval.
fn collectors(
    config: &Config,
    store: &SharedStore,
    processes: &ProcessTable,
    gpus: &GpuTable,
    shed: &Arc<Shed>,
) -> Vec<(Box<dyn Collector>, Duration)> {
    let (paths, host) = (&config.collect.paths, config.agent.host_name.as_str());
    let every = config.agent.interval;
    let mut out: Vec<(Box<dyn Collector>, Duration)> = Vec::new();
    for &name in &config.collect.enabled {
        let c: (Box<dyn Collector>, Duration) = match name {
            "cpu" => (Box::new(CpuCollector::new(paths, host)), every),
            "memory" => (Box::new(MemoryCollector::new(paths, host)), every),
            "disk" => (Box::new(DiskCollector::new(paths, host)), every),
            "filesystem" => (Box::new(FilesystemCollector::new(paths, host)), every),
            "network" => (Box::new(NetworkCollector::new(paths, host)), every),
            "process" => (
                Box::new(
                    ProcessCollector::new(paths, host, processes.clone()).with_shed(shed.clone()),
                ),
                config.collect.process_interval,
            ),
            "gpu" => (
                Box::new(GpuCollector::new(
                    Box::new(NvmlSource::open),
                    host,
                    now_ms(),
                    gpus.clone(),
                )),
                every,
            ),
            "agent" => {
                let store = store.clone();
                let figures = Box::new(move || store.lock().figures());
                (
                    Box::new(AgentCollector::new(host, now_ms(), figures)),
                    every,
                )
            }
            other => {
                warn!(collector = other, "no such collector");
                continue;
            }
        };
        out.push(c);
    }
    out
}

/// Runs the agent until `shutdown` is cancelled, then shuts down in order.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let store = SharedStore::new(Store::open(
        &config.agent.data_dir,
        config.store.options.clone(),
    )?);
    let incidents = SharedIncidents::new(Incidents::open(
        store.clone(),
        config.incidents.resolve_after.as_millis() as i64,
    )?);
    let jobs = SharedJobs::new(JobBook::open(store.clone(), config.jobs.health)?);
    jobs.lock().adopt_problems(&incidents.lock());
    let notify_stats = config.notify.clone().map(|settings| {
        // Kinds and hosts only: never a key or a webhook's path.
        let targets: Vec<String> = settings.targets.iter().map(|t| t.name()).collect();
        let (notifier, stats) = crate::notify::start(settings);
        incidents.lock().set_notifier(notifier);
        info!(targets = ?targets, "notifications on");
        stats
    });
    let spool_dir = config.jobs.spool_dir.clone();
    if let Err(e) = std::fs::create_dir_all(&spool_dir) {
        warn!(dir = %spool_dir.display(), error = %e, "cannot create the job spool directory");
    }
    let spool = SpoolCounts::default();
    let processes = ProcessTable::default();
    let gpus = GpuTable::default();
    let budget = Arc::new(Mutex::new(Budget::new(
        config.agent.budget_rss,
        config.agent.budget_cpu,
    )));
    let shed = budget.lock().map(|b| b.shed.clone()).unwrap_or_default();
    let mut all = collectors(&config, &store, &processes, &gpus, &shed);
    let mut statsd_counts = None;
    if let Some(st) = &config.statsd {
        match crate::collect::statsd::listen(
            &st.listen,
            st.limits,
            &config.agent.host_name,
            now_ms(),
        ) {
            Ok((collector, addr)) => {
                info!(%addr, "statsd listening");
                statsd_counts = Some((collector.counts(), addr.to_string()));
                let (jobs, incidents) = (jobs.clone(), incidents.clone());
                let collector = collector.with_job_sink(Box::new(move |e| {
                    let mut book = jobs.lock();
                    if let Err(err) = book.apply(e, now_ms(), &mut incidents.lock()) {
                        warn!(job = %e.job, error = %err, "airflow dag run refused");
                    }
                }));
                all.push((Box::new(collector), config.agent.interval));
            }
            // Someone else has the port (another StatsD daemon): say so, run on.
            Err(e) => error!(addr = %st.listen, error = %e, "statsd listener unavailable"),
        }
    }
    let detection = match &config.detect {
        Some(settings) => start_detection(
            settings.clone(),
            &config.agent.host_name,
            &Parts {
                store: store.clone(),
                incidents: incidents.clone(),
                jobs: jobs.clone(),
                processes: processes.clone(),
                gpus: gpus.clone(),
                shed: shed.clone(),
            },
        ),
        None => None,
    };
    let sink = DetectingSink {
        store: store.clone(),
        feed: detection.as_ref().map(|(feed, _)| feed.clone()),
    };
    let running = Collectors::start(all, sink, &config.agent.host_name);
    info!(
        data_dir = %config.agent.data_dir.display(),
        host = %config.agent.host_name,
        interval = ?config.agent.interval,
        collectors = ?config.collect.enabled,
        "agent started"
    );

    let tracker = TaskTracker::new();
    let failed = CancellationToken::new();
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
    tracker.spawn(every(
        HEALTH_EVERY,
        shutdown.clone(),
        {
            let (jobs, incidents, spool) = (jobs.clone(), incidents.clone(), spool.clone());
            let (store, gpus) = (store.clone(), gpus.clone());
            let mut rules = Rules::new(config.rules.clone());
            let budget = budget.clone();
            let (host, started_ms) = (config.agent.host_name.clone(), now_ms());
            let mut book_series: Option<[SeriesId; 3]> = None;
            let mut ticks = 0u64;
            move || {
                ticks += 1;
                if ticks.is_multiple_of(RELEASE_EVERY_TICKS) {
                    crate::budget::release_free_memory();
                }
                if ticks % BUDGET_EVERY_TICKS == 1
                    && let Some((rss, cpu)) = crate::budget::measure()
                    && let Ok(mut b) = budget.lock()
                {
                    b.check(rss, cpu, std::time::Instant::now());
                }
                if ticks % RULES_EVERY_TICKS == 1 {
                    rules.check(now_ms(), &store, &gpus, &mut incidents.lock())?;
                }
                if ticks % SPOOL_EVERY_TICKS == 1 {
                    let drained = crate::jobs::spool::drain(&spool_dir, |e| {
                        let mut book = jobs.lock();
                        book.apply(e, now_ms(), &mut incidents.lock())
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    });
                    spool.add(drained);
                }
                let now = now_ms();
                jobs.lock().check_clocks(now, &mut incidents.lock())?;
                incidents.lock().tick(now)?;
                // Jobs and incidents as series, for the overview and for export.
                // One lock at a time: the books are taken jobs first elsewhere.
                let (running, failures) = {
                    let book = jobs.lock();
                    (book.counts().1 as f64, book.failures_total() as f64)
                };
                let active = incidents.lock().active_count() as f64;
                let mut st = store.lock();
                let ids = match book_series {
                    Some(ids) => ids,
                    None => {
                        let g = |name: &str, unit: &str| {
                            SeriesDesc::gauge(
                                crate::collect::key(name, &[("host.name", host.as_str())]),
                                unit,
                            )
                        };
                        let ids = [
                            st.register(g("ward.jobs.running", "{run}"))?,
                            st.register(SeriesDesc::counter(
                                crate::collect::key(
                                    "ward.jobs.failures",
                                    &[("host.name", host.as_str())],
                                ),
                                "{run}",
                                started_ms,
                            ))?,
                            st.register(g("ward.incidents.active", "{incident}"))?,
                        ];
                        book_series = Some(ids);
                        ids
                    }
                };
                st.append(&[
                    Sample {
                        series: ids[0],
                        ts: now,
                        value: running,
                    },
                    Sample {
                        series: ids[1],
                        ts: now,
                        value: failures,
                    },
                    Sample {
                        series: ids[2],
                        ts: now,
                        value: active,
                    },
                ])
                .map(|_| ())
            }
        },
        failed.clone(),
    ));
    let export_stop = CancellationToken::new();
    let export = match &config.export {
        Some(settings) => {
            match crate::export::start(settings.clone(), store.clone(), export_stop.clone()) {
                Ok((task, stats)) => Some((task, stats, settings.clone())),
                Err(e) => {
                    error!(error = %e, "otlp export unavailable");
                    None
                }
            }
        }
        None => None,
    };
    let export_stats = export
        .as_ref()
        .map(|(_, stats, settings)| (stats.clone(), settings.clone()));
    let detect_stats = detection.as_ref().map(|(feed, _)| feed.stats.clone());
    let build_status = {
        let (store, gpus) = (store.clone(), gpus.clone());
        let (jobs, incidents, spool) = (jobs.clone(), incidents.clone(), spool.clone());
        let statuses = running.statuses().to_vec();
        let (host, started) = (config.agent.host_name.clone(), now_ms());
        Arc::new(move |state: &str| {
            let (gpu_unavailable, gpu_count) = crate::status::gpu_fields(&gpus);
            ward_shared::status::AgentStatus {
                host: host.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                started,
                updated: now_ms(),
                state: state.to_string(),
                collectors: crate::status::collectors(&statuses),
                gpu_unavailable,
                gpus: gpu_count,
                store: crate::status::store(&store.lock().stats()),
                jobs: {
                    let book = jobs.lock();
                    let (count, running) = book.counts();
                    ward_shared::status::JobsHealth {
                        jobs: count as u64,
                        running: running as u64,
                        events_accepted: book.accepted,
                        events_refused: book.refused,
                        spool_files_delivered: spool.delivered.load(Ordering::Relaxed),
                        spool_files_bad: spool.bad.load(Ordering::Relaxed),
                        incidents_active: incidents.lock().active_count() as u64,
                    }
                },
                budget: budget
                    .lock()
                    .ok()
                    .map(|b| ward_shared::status::BudgetHealth {
                        rss_bytes: b.rss,
                        cpu_share: b.cpu,
                        max_rss_bytes: b.max_rss,
                        max_cpu_share: b.max_cpu,
                        shedding: b.shed.names(),
                    }),
                notify: notify_stats
                    .as_ref()
                    .map(|n| ward_shared::status::NotifyHealth {
                        sent: n.sent.load(Ordering::Relaxed),
                        failed: n.failed.load(Ordering::Relaxed),
                        rate_limited: n.rate_limited.load(Ordering::Relaxed),
                        queue_full: n.queue_full.load(Ordering::Relaxed),
                    }),
                detect: detect_stats
                    .as_ref()
                    .map(|d| ward_shared::status::DetectHealth {
                        series: d.series.load(Ordering::Relaxed),
                        dropped_batches: d.dropped.load(Ordering::Relaxed),
                        anomaly_rate: f64::from_bits(d.rate.load(Ordering::Relaxed)),
                        trainings: d.trainings.load(Ordering::Relaxed),
                        trainings_deferred: d.deferred.load(Ordering::Relaxed),
                        series_unscored: d.unscored.load(Ordering::Relaxed),
                        max_series: d.max_series.load(Ordering::Relaxed),
                        memory_bytes: d.memory.load(Ordering::Relaxed),
                    }),
                exporter: export_stats
                    .as_ref()
                    .map(|(stats, settings)| stats.health(settings)),
                statsd: statsd_counts.as_ref().map(|(c, listen)| {
                    ward_shared::status::StatsdHealth {
                        listen: listen.clone(),
                        packets: c.packets.load(Ordering::Relaxed),
                        malformed_lines: c.malformed_lines.load(Ordering::Relaxed),
                        dropped_cardinality: c.dropped_cardinality.load(Ordering::Relaxed),
                        dropped_receive_buffer: c.dropped_receive_buffer.load(Ordering::Relaxed),
                    }
                }),
            }
        })
    };
    let status = {
        let (build, data_dir) = (build_status.clone(), config.agent.data_dir.clone());
        move |state: &str| {
            if let Err(e) = crate::status::write(&data_dir, &build(state)) {
                warn!(error = %e, "could not write the status file");
            }
        }
    };
    let api_stop = CancellationToken::new();
    let mut api_tasks = Vec::new();
    let state = crate::api::ApiState {
        store: store.clone(),
        processes: processes.clone(),
        gpus: gpus.clone(),
        status: {
            let build = build_status.clone();
            Arc::new(move || build("running"))
        },
        host: config.agent.host_name.clone(),
        incidents: incidents.clone(),
        jobs: jobs.clone(),
    };
    drop(build_status);
    let guard = |transport| crate::api::auth::Guard {
        tokens: config.api.tokens.clone(),
        transport,
    };
    let router = crate::api::router(state.clone(), guard(crate::api::auth::Transport::Tcp));
    let socket_router = crate::api::router(state, guard(crate::api::auth::Transport::Socket));
    match crate::api::serve_unix(&config.api.socket, socket_router, api_stop.clone()).await {
        Ok(task) => api_tasks.push(task),
        // The agent is still worth running without its API: say so loudly.
        Err(e) => error!(error = %e, "api unavailable"),
    }
    match &config.api.listen {
        Some(addr) => {
            match crate::api::serve_tcp(addr, router, api_stop.clone(), config.api.tls.clone())
                .await
            {
                Ok(task) => api_tasks.push(task),
                Err(e) => error!(error = %e, "api unavailable on tcp"),
            }
        }
        // The router holds the store: it must not outlive the servers.
        None => drop(router),
    }
    if let Some(addr) = &config.prometheus {
        let router = crate::export::prometheus::router(store.clone());
        match crate::api::serve_tcp(addr, router, api_stop.clone(), None).await {
            Ok(task) => {
                info!(%addr, "prometheus metrics on /metrics");
                api_tasks.push(task);
            }
            Err(e) => error!(error = %e, "prometheus endpoint unavailable"),
        }
    }
    tracker.spawn(every(
        STATUS_EVERY,
        shutdown.clone(),
        {
            let status = status.clone();
            move || {
                status("running");
                Ok(())
            }
        },
        failed.clone(),
    ));
    tracker.close();

    let outcome = tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        () = failed.cancelled() => Err(DaemonError::Task("see the error logged above".into())),
    };
    info!("shutting down");
    // API first: it holds the store for queries. The exporter too: what it
    // had not sent goes after the restart, from its cursor.
    api_stop.cancel();
    export_stop.cancel();
    for task in api_tasks {
        let _ = task.await;
    }
    if let Some((task, _, _)) = export {
        let _ = task.await;
    }
    // Collector threads finish their tick and the writer drains what they sent.
    if let Err(e) = tokio::task::spawn_blocking(move || running.shutdown()).await {
        error!(error = %e, "collectors did not stop cleanly");
    }
    // The detection thread ends once the last feed is gone; it holds the
    // store and the incidents, so it goes before they are closed.
    if let Some((feed, thread)) = detection {
        drop(feed);
        if tokio::task::spawn_blocking(move || thread.join())
            .await
            .is_err()
        {
            error!("the detection thread did not stop cleanly");
        }
    }
    shutdown.cancel();
    tracker.wait().await;
    status("stopped");
    // The status writer and the books hold the store too: let go of them
    // before sealing.
    drop(status);
    drop(jobs);
    drop(incidents);
    match store.into_inner() {
        Some(store) => store.close()?,
        None => error!("store still shared at shutdown; not sealed (the log replays it)"),
    }
    info!("agent stopped");
    outcome
}

/// Runs `work` every `period` until `stop`; a failure is logged, and a
/// failure ten times in a row stops the agent through `failed`, but for a
/// full disk, which is retried for as long as it lasts.
async fn every(
    period: Duration,
    stop: CancellationToken,
    mut work: impl FnMut() -> Result<(), StoreError> + Send + 'static,
    failed: CancellationToken,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut failures = 0u32;
    let mut disk_full = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match work() {
            Ok(()) => {
                failures = 0;
                if std::mem::take(&mut disk_full) {
                    info!(
                        "the data directory takes writes again: what was kept in memory is written"
                    );
                }
            }
            // A full disk passes: keep trying, say so once (and in the status).
            Err(e) if e.is_disk_full() => {
                if !std::mem::replace(&mut disk_full, true) {
                    error!(error = %e, "data directory full: new samples are kept in memory until space returns");
                }
            }
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
