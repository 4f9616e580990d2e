//! What the user wrote: the config file's sections and keys, each value
//! parsed by its type as the file is read (see `values.rs`). The doc
//! comments on the fields are the user documentation.

use serde::{Deserialize, Serialize};
use ward_shared::incident::Severity;

use super::values::{Bounded, Choice, Chosen, DurationIn, Off, SizeAtLeast};
use crate::collect::CollectorKind;
use crate::export::Protocol;

const MIB: u64 = 1 << 20;
const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;
/// From an hour to ten years: how long a store tier keeps its data.
pub type Retention = DurationIn<HOUR_MS, { 3650 * DAY_MS }>;

/// `export.otlp.compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    None,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Choice for Compression {
    const WORDS: &'static [(&'static str, Self)] =
        &[("gzip", Compression::Gzip), ("none", Compression::None)];
    const EXPECTED: &'static str = "\"gzip\" or \"none\"";
}

impl Choice for LogFormat {
    const WORDS: &'static [(&'static str, Self)] =
        &[("text", LogFormat::Text), ("json", LogFormat::Json)];
    const EXPECTED: &'static str = "\"text\" or \"json\"";
}

impl Choice for Protocol {
    const WORDS: &'static [(&'static str, Self)] = &Protocol::WORDS;
    const EXPECTED: &'static str = "\"grpc\" or \"http/protobuf\"";
}

impl Choice for Severity {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("info", Severity::Info),
        ("warning", Severity::Warning),
        ("critical", Severity::Critical),
    ];
    const EXPECTED: &'static str = "\"info\", \"warning\" or \"critical\"";
}

impl Choice for tracing::Level {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("error", tracing::Level::ERROR),
        ("warn", tracing::Level::WARN),
        ("info", tracing::Level::INFO),
        ("debug", tracing::Level::DEBUG),
        ("trace", tracing::Level::TRACE),
    ];
    const EXPECTED: &'static str = "one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"";
    const ANY_CASE: bool = true;
}

impl Choice for CollectorKind {
    const WORDS: &'static [(&'static str, Self)] = &CollectorKind::NAMES;
    const EXPECTED: &'static str =
        "collector names among cpu, memory, disk, filesystem, network, process, gpu, agent";
}

/// The config file as written. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub agent: RawAgent,
    pub store: RawStore,
    pub collect: RawCollect,
    pub api: RawApi,
    pub jobs: RawJobs,
    pub incidents: RawIncidents,
    pub detect: RawDetect,
    pub rules: RawRules,
    pub notify: RawNotify,
    pub export: RawExport,
    pub prometheus: RawPrometheus,
    pub log: RawLog,
}

/// `[agent]`: the daemon itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgent {
    /// How often collectors run, e.g. "1s", "500ms", "10s".
    pub interval: DurationIn<100, HOUR_MS>,
    /// Where the store lives. Empty: the platform's data directory
    /// (`$XDG_DATA_HOME/ward`, else `~/.local/share/ward`); packages set `/var/lib/ward`.
    pub data_dir: String,
    /// The host name reported with every series. Empty: the system's host name.
    pub host_name: String,
    /// Most memory (RSS) the agent may use; near it, it sheds optional work
    /// (detector training, then process snapshots).
    pub budget_rss: SizeAtLeast<MIB>,
    /// Most CPU the agent may use, as a share of one core (0.05 = 5%).
    pub budget_cpu: f64,
}

impl Default for RawAgent {
    fn default() -> Self {
        Self {
            interval: DurationIn::default_of("1s"),
            data_dir: String::new(),
            host_name: String::new(),
            budget_rss: SizeAtLeast::default_of("100MiB"),
            budget_cpu: 0.05,
        }
    }
}

/// `[store]`: the embedded time-series store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// How often accepted samples are made durable: a crash loses at most this much.
    pub flush_interval: DurationIn<10, MINUTE_MS>,
    /// How long samples are kept at full resolution.
    pub raw_retention: Retention,
    /// How long 1-minute rollups (min, max, sum, count, last) are kept.
    pub minute_retention: Retention,
    /// How long 1-hour rollups are kept.
    pub hour_retention: Retention,
    /// Most disk the store may use, e.g. "1GiB", "500MB"; the oldest data goes first.
    pub disk_budget: SizeAtLeast<{ 16 * MIB }>,
    /// Memory for the storage engine's page cache, e.g. "8MiB".
    pub cache_capacity: SizeAtLeast<MIB>,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            flush_interval: DurationIn::default_of("1s"),
            raw_retention: DurationIn::default_of("7d"),
            minute_retention: DurationIn::default_of("90d"),
            hour_retention: DurationIn::default_of("730d"),
            disk_budget: SizeAtLeast::default_of("1GiB"),
            cache_capacity: SizeAtLeast::default_of("8MiB"),
        }
    }
}

/// `[collect]`: what the agent collects, and where the host's kernel interfaces are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCollect {
    /// The host's /proc; "/host/proc" when the agent runs in a container.
    pub proc_path: String,
    /// The host's /sys; "/host/sys" in a container.
    pub sys_path: String,
    /// The host's root filesystem, under which mounts are measured; "/host" in a container.
    pub root_path: String,
    /// Collectors to leave off, by name: cpu, memory, disk, filesystem, network, process, gpu, agent.
    pub disabled: Vec<Chosen<CollectorKind>>,
    /// How often the process collector runs (the process list costs the most to read).
    pub process_interval: DurationIn<100, HOUR_MS>,
}

impl Default for RawCollect {
    fn default() -> Self {
        Self {
            proc_path: "/proc".into(),
            sys_path: "/sys".into(),
            root_path: "/".into(),
            disabled: Vec::new(),
            process_interval: DurationIn::default_of("5s"),
        }
    }
}

/// `[api]`: where the local API listens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    /// Unix socket. Empty: `$XDG_RUNTIME_DIR/ward/api.sock`, else `api.sock`
    /// in the data directory; packages set /run/ward/api.sock.
    pub socket: String,
    /// TCP address, opt-in: e.g. "127.0.0.1:7070"; any other address than
    /// loopback needs tls_cert and tls_key.
    pub listen: String,
    /// File of API tokens, one `ROLE TOKEN` a line (roles: viewer, operator,
    /// admin), mode 600. Needed for TCP; on the socket a token is optional.
    pub tokens_file: String,
    /// PEM certificate chain for TLS on the TCP listener.
    pub tls_cert: String,
    /// PEM private key for it.
    pub tls_key: String,
}

/// `[jobs]`: data-pipeline jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawJobs {
    /// Where `ward-agent job run` leaves reports while the agent is down, for
    /// the agent to take in. Empty: `<data_dir>/spool`.
    pub spool_dir: String,
    /// Failures in a row that make a job's failure incident critical.
    pub failure_streak: Bounded<1, 1000>,
    /// Earlier successful runs a job needs before its durations and record
    /// counts are judged by control charts (mean +/- 3 sigma, Western Electric rules).
    pub spc_min_runs: Bounded<3, 1000>,
    pub statsd: RawStatsd,
}

impl Default for RawJobs {
    fn default() -> Self {
        Self {
            spool_dir: String::new(),
            failure_streak: Bounded::new(3),
            spc_min_runs: Bounded::new(10),
            statsd: RawStatsd::default(),
        }
    }
}

/// `[detect]`: anomaly detection on every series of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDetect {
    /// Score every series and raise anomaly incidents.
    pub enabled: bool,
    /// Score (0 to 1) at which a sample is an anomaly.
    pub threshold: f64,
    /// Series with anomalies within 30 s of each other that open an incident.
    pub min_series: Bounded<1, 1000>,
}

impl Default for RawDetect {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.6,
            min_series: Bounded::new(3),
        }
    }
}

/// `[rules]`: static rules beside the models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRules {
    /// Raise when a filesystem would fill within this at the last six hours'
    /// rate and is under 40% free (critical within a sixth of it and under
    /// 15% free); "" turns it off.
    pub filesystem_full_within: Off<DurationIn<MINUTE_MS, { 366 * DAY_MS }>>,
    /// Raise when a GPU is hotter than this, in °C; 0 turns it off.
    pub gpu_max_temperature: f64,
    /// Raise on every GPU XID error.
    pub xid_errors: bool,
}

impl Default for RawRules {
    fn default() -> Self {
        Self {
            filesystem_full_within: Off(Some(DurationIn::default_of("24h"))),
            gpu_max_temperature: 85.0,
            xid_errors: true,
        }
    }
}

/// `[notify]`: where incidents are pushed. Empty: nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNotify {
    /// Generic webhook: each incident opened, escalated, acknowledged or resolved is POSTed as JSON.
    pub webhook_url: String,
    /// Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat).
    pub slack_webhook_url: String,
    /// PagerDuty Events API v2 integration (routing) key.
    pub pagerduty_routing_key: String,
    /// PagerDuty Events API v2 endpoint.
    pub pagerduty_url: String,
    /// Least severity notified: "info", "warning" or "critical".
    pub min_severity: Chosen<Severity>,
    /// Most notifications per target per minute; past it they are dropped and counted.
    pub max_per_minute: Bounded<1, 10_000>,
}

impl Default for RawNotify {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            slack_webhook_url: String::new(),
            pagerduty_routing_key: String::new(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            min_severity: Chosen(Severity::Warning),
            max_per_minute: Bounded::new(20),
        }
    }
}

/// `[export]`: where metrics, incidents and job runs are shipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExport {
    pub otlp: RawOtlp,
}

/// `[export.otlp]`: an OTLP backend (OpenTelemetry Collector or any vendor).
/// The store is the queue: what the backend misses while it is down goes
/// out, in order, when it is back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtlp {
    /// Base URL; empty: no OTLP export. gRPC: "http://127.0.0.1:4317";
    /// HTTP: "http://127.0.0.1:4318" (`/v1/metrics` and `/v1/logs` are added).
    /// https:// uses TLS.
    pub endpoint: String,
    /// "grpc" or "http/protobuf".
    pub protocol: Chosen<Protocol>,
    /// Extra request headers, "name=value" each, e.g. an API key.
    pub headers: Vec<String>,
    /// "gzip" or "none".
    pub compression: Chosen<Compression>,
    /// PEM file of the CA that the backend's certificate chains to. Empty:
    /// the system's roots.
    pub ca_file: String,
    /// How long one request may take.
    pub timeout: DurationIn<100, { 10 * MINUTE_MS }>,
    /// How often new data goes out.
    pub interval: DurationIn<100, HOUR_MS>,
    /// Most data points in one request.
    pub max_batch_points: Bounded<100, 1_000_000>,
    /// Incidents (opened, updated, resolved) and finished job runs as OTLP log records.
    pub logs: bool,
    /// Extra resource attributes, "key=value" each, e.g. "deployment.environment.name=prod".
    pub resource_attributes: Vec<String>,
}

impl Default for RawOtlp {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            protocol: Chosen(Protocol::Grpc),
            headers: Vec::new(),
            compression: Chosen(Compression::Gzip),
            ca_file: String::new(),
            timeout: DurationIn::default_of("10s"),
            interval: DurationIn::default_of("10s"),
            max_batch_points: Bounded::new(8192),
            logs: true,
            resource_attributes: Vec::new(),
        }
    }
}

/// `[prometheus]`: the text exposition on /metrics, for pull-based backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrometheus {
    /// TCP address to serve /metrics on; empty: off. e.g. "127.0.0.1:9464".
    pub listen: String,
}

/// `[incidents]`: how incidents live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIncidents {
    /// How long a condition must stay gone before its incident resolves itself.
    pub resolve_after: DurationIn<0, { 7 * DAY_MS }>,
}

impl Default for RawIncidents {
    fn default() -> Self {
        Self {
            resolve_after: DurationIn::default_of("5m"),
        }
    }
}

/// `[jobs.statsd]`: the StatsD / DogStatsD listener (Airflow and friends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStatsd {
    /// UDP address to listen on; empty: no listener.
    pub listen: String,
    /// Most label sets one metric name may have; past it new ones are dropped and counted.
    pub series_per_metric: Bounded<1, 1_000_000>,
    /// Most series all StatsD metrics together may make (a timer makes six).
    pub max_series: Bounded<6, 1_000_000>,
}

impl Default for RawStatsd {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8125".into(),
            series_per_metric: Bounded::new(1000),
            max_series: Bounded::new(10_000),
        }
    }
}

/// `[log]`: the agent's own logs, on standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// "error", "warn", "info", "debug" or "trace".
    pub level: Chosen<tracing::Level>,
    /// "text" for people, "json" for log shippers.
    pub format: Chosen<LogFormat>,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: Chosen(tracing::Level::INFO),
            format: Chosen(LogFormat::Text),
        }
    }
}
