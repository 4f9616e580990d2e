//! The agent's status: what it runs, how each part is doing. Written by the
//! agent, read by `ward-agent status` and (later) served by the API.

use serde::{Deserialize, Serialize};

use crate::TimestampMs;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub host: String,
    pub version: String,
    pub pid: u32,
    pub started: TimestampMs,
    /// When this status was written; a status much older than its interval
    /// means the agent is gone or stuck.
    pub updated: TimestampMs,
    /// "running" or "stopped".
    pub state: String,
    pub collectors: Vec<CollectorHealth>,
    /// Why GPU readings are missing, if they are.
    pub gpu_unavailable: Option<String>,
    pub gpus: usize,
    pub store: StoreHealth,
    #[serde(default)]
    pub jobs: JobsHealth,
    /// Anomaly detection; `None` when it is off.
    #[serde(default)]
    pub detect: Option<DetectHealth>,
    /// Notifications; `None` when no target is set.
    #[serde(default)]
    pub notify: Option<NotifyHealth>,
    /// The agent's own resource use against its budget.
    #[serde(default)]
    pub budget: Option<BudgetHealth>,
    /// OTLP export; `None` when it is off.
    #[serde(default)]
    pub exporter: Option<ExporterHealth>,
    /// The StatsD listener; `None` when it is off or could not bind.
    #[serde(default)]
    pub statsd: Option<StatsdHealth>,
}

/// The StatsD listener, since start: every packet sent to it is either
/// received or counted as dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsdHealth {
    /// The address it is bound to.
    pub listen: String,
    pub packets: u64,
    pub malformed_lines: u64,
    /// Lines of new label sets refused by the cardinality limits.
    pub dropped_cardinality: u64,
    /// Packets the kernel dropped because the receive buffer was full (the
    /// listener could not keep up).
    pub dropped_receive_buffer: u64,
}

/// The OTLP exporter, since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExporterHealth {
    /// Scheme, host and port only.
    pub endpoint: String,
    /// "grpc" or "http/protobuf".
    pub protocol: String,
    /// How far behind the clock the export is: seconds of data not yet sent.
    pub lag_seconds: f64,
    /// About how many samples wait in the store.
    pub backlog_points: u64,
    pub points_sent: u64,
    /// Incident changes and job runs sent as log records.
    pub logs_sent: u64,
    /// Failed attempts (each retry counts).
    pub failures: u64,
    /// Points a backend refused in a partial success.
    pub points_rejected: u64,
    /// Points and records dropped after a refusal that no retry can fix.
    pub dropped: u64,
    /// Whether the backend is failing right now (the data waits).
    pub retrying: bool,
    pub last_error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetHealth {
    pub rss_bytes: u64,
    /// Share of one core over the last check.
    pub cpu_share: f64,
    pub max_rss_bytes: u64,
    pub max_cpu_share: f64,
    /// Optional work shed to stay under the budget, e.g. "detector training".
    pub shedding: Vec<String>,
}

/// Notifications since start, over every target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyHealth {
    pub sent: u64,
    /// Given up after every retry, or refused.
    pub failed: u64,
    /// Dropped by notify.max_per_minute.
    pub rate_limited: u64,
    /// Dropped because a target's queue was full.
    pub queue_full: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectHealth {
    /// Series with a detector.
    pub series: u64,
    /// Sample batches the detection thread was too busy to take.
    pub dropped_batches: u64,
    /// Share of scored series with an anomaly lately, smoothed.
    pub anomaly_rate: f64,
    /// Models trained since start, and trainings put off by the CPU budget.
    #[serde(default)]
    pub trainings: u64,
    #[serde(default)]
    pub trainings_deferred: u64,
    /// Series left unscored because more than `max_series` are there (what
    /// half the memory budget holds).
    #[serde(default)]
    pub series_unscored: u64,
    #[serde(default)]
    pub max_series: u64,
    /// Heap bytes the detectors hold: their histories and models.
    #[serde(default)]
    pub memory_bytes: u64,
}

/// Jobs and incidents, in short.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsHealth {
    pub jobs: u64,
    pub running: u64,
    pub events_accepted: u64,
    /// Events refused as malformed or invalid since start.
    pub events_refused: u64,
    /// Spooled reports taken in since start, and files set aside as unreadable.
    pub spool_files_delivered: u64,
    pub spool_files_bad: u64,
    pub incidents_active: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorHealth {
    pub name: String,
    pub interval_ms: u64,
    /// "running", "stopped", or "unsupported: <why>".
    pub state: String,
    pub runs: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_duration_us: u64,
    pub missed_ticks: u64,
    pub dropped_batches: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    pub series: u64,
    pub samples_accepted: u64,
    pub samples_out_of_order: u64,
    pub stored_bytes: u64,
    /// Bytes held in memory: every series' head and the rollups being built.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Damaged chunks found since the agent started.
    pub chunks_unreadable: u64,
    /// Damaged chunks copied to `quarantine/` in the data directory and
    /// taken out of the index, this run or earlier.
    #[serde(default)]
    pub chunks_quarantined: u64,
    pub wal_records_dropped: u64,
    /// Since when the data directory's filesystem has been full (writes
    /// failing; samples kept in memory meanwhile), while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_full_since: Option<TimestampMs>,
}
