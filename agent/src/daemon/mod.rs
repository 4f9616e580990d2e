//! The running agent, in phases: [`Agent::start`] opens the store and the
//! books and starts every part, returning a [`Running`]; the caller waits
//! for its stop signal or [`Running::failed`]; [`Running::shutdown`] stops
//! the parts in order. [`run`] does all three.
//!
//! Start order: store, incident book, job book, notifications; collectors
//! and detection (collectors feed the store, then detection, through
//! `sink.rs`); timers (`timers.rs`); export; the API; the status timer.
//! Collectors run on threads of their own (see `collect::runner`).
//!
//! Shutdown order (`shutdown.rs`): the API and the exporter, the
//! collectors (no new samples), detection, the timers, the status written
//! as stopped, then the store flushed and sealed and the data directory
//! released.

mod collectors;
mod shutdown;
mod sink;
mod timers;

use std::sync::Arc;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use ward_shared::incident::IncidentContext;
use ward_shared::time::now_ms;

use crate::api::{CredentialError, Credentials};
use crate::budget::{Budget, Shed};
use crate::collect::gpu::GpuTable;
use crate::collect::process::ProcessTable;
use crate::collect::runner::Collectors;
use crate::config::Config;
use crate::detect::DetectSettings;
use crate::detect::live::Feed;
use crate::incidents::{Incidents, SharedIncidents};
use crate::jobs::spool::SpoolCounts;
use crate::jobs::{JobBook, SharedJobs};
use crate::rules::Rules;
use crate::status::StatusSources;
use crate::store::{SharedStore, Store, StoreError};
use crate::sync::Shared;
use crate::telemetry::BookSeries;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store task stopped: {0}")]
    Task(String),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// Runs the agent until `shutdown` is cancelled or one of its tasks fails,
/// then shuts down in order.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let running = Agent::start(config).await?;
    let outcome = tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        () = running.failed() => Err(DaemonError::Task("see the error logged above".into())),
    };
    running.shutdown().await?;
    outcome
}

/// The handles the agent's parts share, for the parts that start with them.
#[derive(Debug)]
struct Parts {
    store: SharedStore,
    incidents: SharedIncidents,
    jobs: SharedJobs,
    processes: ProcessTable,
    gpus: GpuTable,
}

/// The agent before it runs: [`Agent::start`] is the way in.
#[derive(Debug)]
pub struct Agent;

/// A started agent: every part running, and what it takes to stop them.
#[derive(Debug)]
pub struct Running {
    store: SharedStore,
    incidents: SharedIncidents,
    jobs: SharedJobs,
    collectors: Collectors,
    detection: Option<(Feed, std::thread::JoinHandle<()>)>,
    /// The timers, stopped by `timers_stop`; `failed` is cancelled by one
    /// that gave up.
    timers: TaskTracker,
    timers_stop: CancellationToken,
    failed: CancellationToken,
    export: Option<tokio::task::JoinHandle<()>>,
    export_stop: CancellationToken,
    api: Vec<tokio::task::JoinHandle<()>>,
    api_stop: CancellationToken,
    status: Arc<StatusSources>,
}

impl Agent {
    /// Opens the store and the books and starts every part the config turns
    /// on. Only the API's TLS and token files, the store and the books are
    /// fatal: a part that cannot start (the API's socket, the StatsD port,
    /// the exporter, detection) is logged and the agent runs without it.
    pub async fn start(config: Config) -> Result<Running, DaemonError> {
        let host = config.agent.host_name.clone();
        // The API's files first: a bad one stops the agent before it opens anything.
        let credentials = Credentials::load(&config.api)?;
        let store = SharedStore::new(Store::open(&config.agent.data_dir, config.store.clone())?);
        let incidents = SharedIncidents::new(Incidents::open(
            store.clone(),
            config.incidents.resolve_after.as_millis() as i64,
        )?);
        let jobs = SharedJobs::new(JobBook::open(store.clone(), config.jobs.health)?);
        jobs.lock().adopt_problems(&incidents.lock());
        let notify = config.notify.clone().map(|settings| {
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
        let budget = Shared::new(Budget::new(
            config.agent.budget_rss,
            config.agent.budget_cpu,
        ));
        let shed = budget.lock().shed.clone();
        let parts = Parts {
            store: store.clone(),
            incidents: incidents.clone(),
            jobs: jobs.clone(),
            processes: processes.clone(),
            gpus: gpus.clone(),
        };

        // Collectors and detection.
        let mut all = collectors::host_collectors(&config, &store, &processes, &gpus, &shed);
        let statsd = collectors::statsd(&config, &jobs, &incidents).map(|(c, counts, addr)| {
            all.push(c);
            (counts, addr)
        });
        let detection = config
            .detect
            .clone()
            .and_then(|settings| start_detection(settings, &host, &parts, &shed));
        let sink = sink::DetectingSink {
            store: store.clone(),
            feed: detection.as_ref().map(|(feed, _)| feed.clone()),
        };
        let running = Collectors::start(all, sink, &host);
        info!(
            data_dir = %config.agent.data_dir.display(),
            host = %host,
            interval = ?config.agent.interval,
            collectors = ?config.collect.enabled.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "agent started"
        );

        // Timers.
        let tracker = TaskTracker::new();
        let (timers_stop, failed) = (CancellationToken::new(), CancellationToken::new());
        let timer = |period, work: timers::Work| {
            timers::every(period, timers_stop.clone(), work, failed.clone())
        };
        tracker.spawn(timer(config.store.flush_interval, {
            let store = store.clone();
            Box::new(move || store.lock().flush())
        }));
        tracker.spawn(timer(timers::MAINTAIN_EVERY, {
            let store = store.clone();
            Box::new(move || store.lock().maintain(now_ms()).map(|_| ()))
        }));
        let mut health = timers::Health {
            store: store.clone(),
            jobs: jobs.clone(),
            incidents: incidents.clone(),
            gpus: gpus.clone(),
            budget: budget.clone(),
            rules: Rules::new(config.rules.clone()),
            spool_dir,
            spool: spool.clone(),
            books: BookSeries::new(&host, now_ms()),
            ticks: 0,
        };
        tracker.spawn(timer(timers::HEALTH_EVERY, Box::new(move || health.tick())));

        // Export.
        let export_stop = CancellationToken::new();
        let export = config.export.as_ref().and_then(|settings| {
            let health = crate::telemetry::exporter_series(store.clone(), &host);
            match crate::export::start(settings.clone(), store.clone(), export_stop.clone(), health)
            {
                Ok((task, stats)) => Some((task, stats, settings.clone())),
                Err(e) => {
                    error!(error = %e, "otlp export unavailable");
                    None
                }
            }
        });

        let status = Arc::new(StatusSources {
            host: host.clone(),
            data_dir: config.agent.data_dir.clone(),
            started: now_ms(),
            store: store.clone(),
            gpus: gpus.clone(),
            collectors: running.statuses().to_vec(),
            jobs: jobs.clone(),
            incidents: incidents.clone(),
            spool,
            budget,
            notify,
            detect: detection.as_ref().map(|(feed, _)| feed.stats.clone()),
            export: export
                .as_ref()
                .map(|(_, stats, settings)| (stats.clone(), settings.clone())),
            statsd,
        });

        // The API, then the status timer.
        let api_stop = CancellationToken::new();
        let api = start_api(&config, &credentials, &parts, &status, &api_stop).await;
        tracker.spawn(timer(timers::STATUS_EVERY, {
            let status = status.clone();
            Box::new(move || {
                status.write("running");
                Ok(())
            })
        }));
        tracker.close();

        Ok(Running {
            store,
            incidents,
            jobs,
            collectors: running,
            detection,
            timers: tracker,
            timers_stop,
            failed,
            export: export.map(|(task, _, _)| task),
            export_stop,
            api,
            api_stop,
            status,
        })
    }
}

impl Running {
    /// Resolves when one of the agent's timers has given up (its error is
    /// logged); the agent should then be shut down.
    pub async fn failed(&self) {
        self.failed.cancelled().await;
    }
}

/// The API's servers: the Unix socket, TCP when configured, and the
/// Prometheus endpoint. One that cannot bind is logged; the agent runs on.
async fn start_api(
    config: &Config,
    credentials: &Credentials,
    parts: &Parts,
    status: &Arc<StatusSources>,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let state = crate::api::ApiState {
        store: parts.store.clone(),
        processes: parts.processes.clone(),
        gpus: parts.gpus.clone(),
        status: {
            let status = status.clone();
            Arc::new(move || status.build("running"))
        },
        host: config.agent.host_name.clone(),
        incidents: parts.incidents.clone(),
        jobs: parts.jobs.clone(),
    };
    let guard = |transport| crate::api::auth::Guard {
        tokens: credentials.tokens.clone(),
        transport,
    };
    let router = crate::api::router(state.clone(), guard(crate::api::auth::Transport::Tcp));
    let socket_router = crate::api::router(state, guard(crate::api::auth::Transport::Socket));
    match crate::api::serve_unix(&config.api.socket, socket_router, stop.clone()).await {
        Ok(task) => tasks.push(task),
        // The agent is still worth running without its API: say so loudly.
        Err(e) => error!(error = %e, "api unavailable"),
    }
    match &config.api.listen {
        Some(addr) => {
            match crate::api::serve_tcp(addr, router, stop.clone(), credentials.tls.clone()).await {
                Ok(task) => tasks.push(task),
                Err(e) => error!(error = %e, "api unavailable on tcp"),
            }
        }
        // The router holds the store: it must not outlive the servers.
        None => drop(router),
    }
    if let Some(addr) = &config.prometheus {
        let router = crate::export::prometheus::router(parts.store.clone());
        match crate::api::serve_tcp(addr, router, stop.clone(), None).await {
            Ok(task) => {
                info!(%addr, "prometheus metrics on /metrics");
                tasks.push(task);
            }
            Err(e) => error!(error = %e, "prometheus endpoint unavailable"),
        }
    }
    tasks
}

/// Starts the detection thread, with what incidents say was going on and
/// where the host anomaly rate is written.
fn start_detection(
    settings: DetectSettings,
    host: &str,
    parts: &Parts,
    shed: &Arc<Shed>,
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
    let rate = crate::telemetry::anomaly_rate_writer(parts.store.clone(), host);
    match crate::detect::live::start(
        settings,
        host,
        parts.store.clone(),
        shed.clone(),
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
