//! The agent's status file: `<data_dir>/status.json`.
//!
//! Owns building an [`AgentStatus`] from the running parts and writing it
//! atomically (a temporary file renamed over the old one), so that a reader
//! never sees half a file. `ward-agent status` reads it; the daemon rewrites
//! it every few seconds and once more, as "stopped", when it shuts down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::warn;
use ward_shared::TimestampMs;
use ward_shared::status::{
    AgentStatus, BudgetHealth, CollectorHealth, DetectHealth, JobsHealth, NotifyHealth,
    StatsdHealth, StoreHealth,
};
use ward_shared::time::now_ms;

use crate::budget::Budget;
use crate::collect::gpu::GpuTable;
use crate::collect::runner::{CollectorState, CollectorStatus};
use crate::collect::statsd::StatsdCounts;
use crate::detect::live::DetectStats;
use crate::export::{ExportSettings, ExportStats};
use crate::incidents::SharedIncidents;
use crate::jobs::SharedJobs;
use crate::jobs::spool::SpoolCounts;
use crate::notify::NotifyStats;
use crate::store::{SharedStore, StoreStats};
use crate::sync::Shared;
use crate::system::status_path;

/// What the status reads, gathered once at start: the running parts' shared
/// books and counters. [`StatusSources::build`] makes the status of any
/// moment from them; the API serves it and [`StatusSources::write`] puts it
/// where `ward-agent status` reads it.
#[derive(Debug)]
pub struct StatusSources {
    pub host: String,
    pub data_dir: PathBuf,
    pub started: TimestampMs,
    pub store: SharedStore,
    pub gpus: GpuTable,
    pub collectors: Vec<Arc<CollectorStatus>>,
    pub jobs: SharedJobs,
    pub incidents: SharedIncidents,
    pub spool: SpoolCounts,
    pub budget: Shared<Budget>,
    pub notify: Option<Arc<NotifyStats>>,
    pub detect: Option<Arc<DetectStats>>,
    pub export: Option<(Arc<ExportStats>, ExportSettings)>,
    /// The StatsD listener's counters and the address it is bound to.
    pub statsd: Option<(Arc<StatsdCounts>, String)>,
}

impl StatusSources {
    /// The agent's status now, in `state` ("running", "stopped").
    pub fn build(&self, state: &str) -> AgentStatus {
        let (gpu_unavailable, gpu_count) = gpu_fields(&self.gpus);
        AgentStatus {
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            started: self.started,
            updated: now_ms(),
            state: state.to_string(),
            collectors: collectors(&self.collectors),
            gpu_unavailable,
            gpus: gpu_count,
            store: store(&self.store.lock().stats()),
            jobs: {
                let book = self.jobs.lock();
                let (count, running) = book.counts();
                JobsHealth {
                    jobs: count as u64,
                    running: running as u64,
                    events_accepted: book.accepted,
                    events_refused: book.refused,
                    spool_files_delivered: self.spool.delivered.load(Ordering::Relaxed),
                    spool_files_bad: self.spool.bad.load(Ordering::Relaxed),
                    incidents_active: self.incidents.lock().active_count() as u64,
                }
            },
            budget: {
                let b = self.budget.lock();
                Some(BudgetHealth {
                    rss_bytes: b.rss,
                    cpu_share: b.cpu,
                    max_rss_bytes: b.max_rss,
                    max_cpu_share: b.max_cpu,
                    shedding: b.shed.names(),
                })
            },
            notify: self.notify.as_ref().map(|n| NotifyHealth {
                sent: n.sent.load(Ordering::Relaxed),
                failed: n.failed.load(Ordering::Relaxed),
                rate_limited: n.rate_limited.load(Ordering::Relaxed),
                queue_full: n.queue_full.load(Ordering::Relaxed),
            }),
            detect: self.detect.as_ref().map(|d| DetectHealth {
                series: d.series.load(Ordering::Relaxed),
                dropped_batches: d.dropped.load(Ordering::Relaxed),
                anomaly_rate: f64::from_bits(d.rate.load(Ordering::Relaxed)),
                trainings: d.trainings.load(Ordering::Relaxed),
                trainings_deferred: d.deferred.load(Ordering::Relaxed),
                series_unscored: d.unscored.load(Ordering::Relaxed),
                max_series: d.max_series.load(Ordering::Relaxed),
                memory_bytes: d.memory.load(Ordering::Relaxed),
            }),
            exporter: self
                .export
                .as_ref()
                .map(|(stats, settings)| stats.health(settings)),
            statsd: self.statsd.as_ref().map(|(c, listen)| StatsdHealth {
                listen: listen.clone(),
                packets: c.packets.load(Ordering::Relaxed),
                malformed_lines: c.malformed_lines.load(Ordering::Relaxed),
                dropped_cardinality: c.dropped_cardinality.load(Ordering::Relaxed),
                dropped_receive_buffer: c.dropped_receive_buffer.load(Ordering::Relaxed),
            }),
        }
    }

    /// Writes the status in `state` to the status file; a failure is logged.
    pub fn write(&self, state: &str) {
        if let Err(e) = write(&self.data_dir, &self.build(state)) {
            warn!(error = %e, "could not write the status file");
        }
    }
}

/// The health of each collector, as the status shows it.
pub fn collectors(statuses: &[Arc<CollectorStatus>]) -> Vec<CollectorHealth> {
    statuses
        .iter()
        .map(|s| CollectorHealth {
            name: s.name.to_string(),
            interval_ms: s.interval.as_millis() as u64,
            state: match s.state() {
                CollectorState::Running => "running".into(),
                CollectorState::Stopped => "stopped".into(),
                CollectorState::Unsupported(why) => format!("unsupported: {why}"),
            },
            runs: s.runs.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            last_error: s.last_error(),
            last_duration_us: s.last_duration_us.load(Ordering::Relaxed),
            missed_ticks: s.missed_ticks.load(Ordering::Relaxed),
            dropped_batches: s.dropped_batches.load(Ordering::Relaxed),
        })
        .collect()
}

pub fn store(stats: &StoreStats) -> StoreHealth {
    StoreHealth {
        series: stats.series,
        samples_accepted: stats.samples_accepted,
        samples_out_of_order: stats.samples_out_of_order,
        stored_bytes: stats.stored_bytes,
        memory_bytes: stats.head_bytes,
        chunks_unreadable: stats.chunks_unreadable,
        chunks_quarantined: stats.chunks_quarantined,
        wal_records_dropped: stats.wal_records_dropped,
        disk_full_since: stats.disk_full_since,
    }
}

pub fn gpu_fields(gpus: &GpuTable) -> (Option<String>, usize) {
    let state = gpus.latest();
    (state.unavailable, state.devices.len())
}

/// Writes the status where `ward-agent status` looks for it.
pub fn write(data_dir: &Path, status: &AgentStatus) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    let tmp = data_dir.join("status.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, status_path(data_dir))
}

pub fn read(data_dir: &Path) -> Result<AgentStatus, String> {
    let p = status_path(data_dir);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        format!(
            "{}: {e}; is an agent running with this data directory?",
            p.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a status file: {e}", p.display()))
}

/// The status as a person reads it.
pub fn render(s: &AgentStatus, now: i64) -> String {
    let age = (now - s.updated).max(0) as f64 / 1000.0;
    let mut out = format!(
        "agent {} on {} (pid {}), {}, status written {:.0} s ago\n",
        s.version, s.host, s.pid, s.state, age
    );
    out.push_str(&format!(
        "store: {} series, {} samples accepted, {} refused as late, {} bytes on disk, {:.1} MB in memory, {} unreadable chunks\n",
        s.store.series, s.store.samples_accepted, s.store.samples_out_of_order, s.store.stored_bytes, s.store.memory_bytes as f64 / 1e6, s.store.chunks_unreadable
    ));
    if let Some(st) = &s.statsd {
        out.push_str(&format!(
            "statsd: on {}, {} packets received, {} dropped by the kernel (receive buffer full), {} lines malformed, {} lines dropped at the cardinality limit\n",
            st.listen, st.packets, st.dropped_receive_buffer, st.malformed_lines, st.dropped_cardinality
        ));
    }
    if s.store.chunks_quarantined > 0 {
        out.push_str(&format!(
            "store: {} damaged chunks set aside in quarantine/ under the data directory (their samples are skipped; the rest is served)\n",
            s.store.chunks_quarantined
        ));
    }
    if let Some(since) = s.store.disk_full_since {
        out.push_str(&format!(
            "store: DISK FULL for {} s: writes fail for want of space; new samples are kept in memory and written when space returns\n",
            (now - since).max(0) / 1000
        ));
    }
    let j = &s.jobs;
    out.push_str(&format!(
        "jobs: {} ({} running), {} events accepted, {} refused; spool: {} reports delivered, {} unreadable; incidents: {} active\n",
        j.jobs, j.running, j.events_accepted, j.events_refused, j.spool_files_delivered, j.spool_files_bad, j.incidents_active
    ));
    match &s.detect {
        Some(d) => out.push_str(&format!(
            "detection: {} series scored (at most {}; {} more left unscored), {:.1} MB in memory, anomaly rate {:.1}%, {} models trained, {} trainings put off by the CPU budget, {} batches dropped\n",
            d.series,
            d.max_series,
            d.series_unscored,
            d.memory_bytes as f64 / 1e6,
            d.anomaly_rate * 100.0,
            d.trainings,
            d.trainings_deferred,
            d.dropped_batches
        )),
        None => out.push_str("detection: off\n"),
    }
    if let Some(b) = &s.budget {
        out.push_str(&format!(
            "budget: {:.1} of {:.1} MB RSS, {:.2}% of {:.1}% of a core; {}\n",
            b.rss_bytes as f64 / 1e6,
            b.max_rss_bytes as f64 / 1e6,
            b.cpu_share * 100.0,
            b.max_cpu_share * 100.0,
            if b.shedding.is_empty() {
                "nothing shed".to_string()
            } else {
                format!("shedding {}", b.shedding.join(", "))
            }
        ));
    }
    if let Some(n) = &s.notify {
        out.push_str(&format!(
            "notifications: {} sent, {} failed, {} over the rate limit, {} dropped with a full queue\n",
            n.sent, n.failed, n.rate_limited, n.queue_full
        ));
    }
    match &s.exporter {
        Some(e) => {
            out.push_str(&format!(
                "export: otlp {} to {}, exporter lag {:.0} s, backlog about {} points, {} points and {} log records sent, {} failed attempts, {} points rejected, {} dropped{}\n",
                e.protocol,
                e.endpoint,
                e.lag_seconds,
                e.backlog_points,
                e.points_sent,
                e.logs_sent,
                e.failures,
                e.points_rejected,
                e.dropped,
                if e.retrying { "; RETRYING" } else { "" }
            ));
            if !e.last_error.is_empty() {
                out.push_str(&format!("        last error: {}\n", e.last_error));
            }
        }
        None => out.push_str("export: off\n"),
    }
    match &s.gpu_unavailable {
        Some(why) => out.push_str(&format!("gpus: unavailable ({why})\n")),
        None => out.push_str(&format!("gpus: {}\n", s.gpus)),
    }
    out.push_str("collector    interval  runs    errors  missed  last run  state\n");
    for c in &s.collectors {
        out.push_str(&format!(
            "{:<12} {:>6}ms  {:<7} {:<7} {:<7} {:>6}µs  {}\n",
            c.name, c.interval_ms, c.runs, c.errors, c.missed_ticks, c.last_duration_us, c.state
        ));
        if let Some(e) = &c.last_error {
            out.push_str(&format!("             last error: {e}\n"));
        }
    }
    out
}
