//! The agent's status file: `<data_dir>/status.json`.
//!
//! Owns building an [`AgentStatus`] from the running parts and writing it
//! atomically (a temporary file renamed over the old one), so that a reader
//! never sees half a file. `ward-agent status` reads it; the daemon rewrites
//! it every few seconds and once more, as "stopped", when it shuts down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ward_shared::status::{AgentStatus, CollectorHealth, StoreHealth};

use crate::collect::gpu::GpuTable;
use crate::collect::runner::{CollectorState, CollectorStatus};
use crate::store::StoreStats;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("status.json")
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
    std::fs::rename(tmp, path(data_dir))
}

pub fn read(data_dir: &Path) -> Result<AgentStatus, String> {
    let p = path(data_dir);
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
