//! The config file: what the user wrote, then what it resolves to.
//!
//! Owns parsing, environment overrides, defaults and validation; it opens
//! nothing and starts nothing. Every key has a default, so an empty file (or
//! none) is a valid config. Unknown keys are errors, and so are unknown
//! `WARD_<SECTION>_<KEY>` variables for a known section.
//!
//! Step one, [`RawConfig`], is the file as written (after environment
//! overrides): the doc comments on its fields are the user documentation.
//! Step two, [`Config`], is what the agent runs with: durations, sizes and
//! paths parsed and checked, with errors that name the key, the value and
//! what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::store::StoreOptions;

/// Why a config could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: {key} = {value:?} is not valid: expected {expected}")]
    Invalid {
        origin: String,
        key: String,
        value: String,
        expected: String,
    },
    #[error(
        "environment variable {var} names no config key; keys of that section are set with: {known}"
    )]
    UnknownEnv { var: String, known: String },
}

// ---------------------------------------------------------------------------
// Step one: what the user wrote

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
    pub interval: String,
    /// Where the store lives. Empty: the platform's data directory
    /// (`$XDG_DATA_HOME/ward`, else `~/.local/share/ward`); packages set `/var/lib/ward`.
    pub data_dir: String,
    /// The host name reported with every series. Empty: the system's host name.
    pub host_name: String,
    /// Most memory (RSS) the agent may use; near it, it sheds optional work
    /// (detector training, then process snapshots).
    pub budget_rss: String,
    /// Most CPU the agent may use, as a share of one core (0.05 = 5%).
    pub budget_cpu: f64,
}

impl Default for RawAgent {
    fn default() -> Self {
        Self {
            interval: "1s".into(),
            data_dir: String::new(),
            host_name: String::new(),
            budget_rss: "100MiB".into(),
            budget_cpu: 0.05,
        }
    }
}

/// `[store]`: the embedded time-series store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// How often accepted samples are made durable: a crash loses at most this much.
    pub flush_interval: String,
    /// How long samples are kept at full resolution.
    pub raw_retention: String,
    /// How long 1-minute rollups (min, max, sum, count, last) are kept.
    pub minute_retention: String,
    /// How long 1-hour rollups are kept.
    pub hour_retention: String,
    /// Most disk the store may use, e.g. "1GiB", "500MB"; the oldest data goes first.
    pub disk_budget: String,
    /// Memory for the storage engine's page cache, e.g. "8MiB".
    pub cache_capacity: String,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            flush_interval: "1s".into(),
            raw_retention: "7d".into(),
            minute_retention: "90d".into(),
            hour_retention: "730d".into(),
            disk_budget: "1GiB".into(),
            cache_capacity: "8MiB".into(),
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
    pub disabled: Vec<String>,
    /// How often the process collector runs (the process list costs the most to read).
    pub process_interval: String,
}

impl Default for RawCollect {
    fn default() -> Self {
        Self {
            proc_path: "/proc".into(),
            sys_path: "/sys".into(),
            root_path: "/".into(),
            disabled: Vec::new(),
            process_interval: "5s".into(),
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
    pub failure_streak: i64,
    /// Earlier successful runs a job needs before its durations and record
    /// counts are judged by control charts (mean +/- 3 sigma, Western Electric rules).
    pub spc_min_runs: i64,
    pub statsd: RawStatsd,
}

impl Default for RawJobs {
    fn default() -> Self {
        Self {
            spool_dir: String::new(),
            failure_streak: 3,
            spc_min_runs: 10,
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
    pub min_series: i64,
}

impl Default for RawDetect {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.6,
            min_series: 3,
        }
    }
}

/// `[rules]`: static rules beside the models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRules {
    /// Raise when a filesystem would fill within this at the last hour's rate; "" turns it off.
    pub filesystem_full_within: String,
    /// Raise when a GPU is hotter than this, in °C; 0 turns it off.
    pub gpu_max_temperature: f64,
    /// Raise on every GPU XID error.
    pub xid_errors: bool,
}

impl Default for RawRules {
    fn default() -> Self {
        Self {
            filesystem_full_within: "24h".into(),
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
    pub min_severity: String,
    /// Most notifications per target per minute; past it they are dropped and counted.
    pub max_per_minute: i64,
}

impl Default for RawNotify {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            slack_webhook_url: String::new(),
            pagerduty_routing_key: String::new(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            min_severity: "warning".into(),
            max_per_minute: 20,
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
    pub protocol: String,
    /// Extra request headers, "name=value" each, e.g. an API key.
    pub headers: Vec<String>,
    /// "gzip" or "none".
    pub compression: String,
    /// PEM file of the CA that the backend's certificate chains to. Empty:
    /// the system's roots.
    pub ca_file: String,
    /// How long one request may take.
    pub timeout: String,
    /// How often new data goes out.
    pub interval: String,
    /// Most data points in one request.
    pub max_batch_points: i64,
    /// Incidents (opened, updated, resolved) and finished job runs as OTLP log records.
    pub logs: bool,
    /// Extra resource attributes, "key=value" each, e.g. "deployment.environment.name=prod".
    pub resource_attributes: Vec<String>,
}

impl Default for RawOtlp {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            protocol: "grpc".into(),
            headers: Vec::new(),
            compression: "gzip".into(),
            ca_file: String::new(),
            timeout: "10s".into(),
            interval: "10s".into(),
            max_batch_points: 8192,
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
    pub resolve_after: String,
}

impl Default for RawIncidents {
    fn default() -> Self {
        Self {
            resolve_after: "5m".into(),
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
    pub series_per_metric: i64,
    /// Most series all StatsD metrics together may make (a timer makes six).
    pub max_series: i64,
}

impl Default for RawStatsd {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8125".into(),
            series_per_metric: 1000,
            max_series: 10_000,
        }
    }
}

/// The collectors there are, by name.
pub const COLLECTORS: [&str; 8] = [
    "cpu",
    "memory",
    "disk",
    "filesystem",
    "network",
    "process",
    "gpu",
    "agent",
];

/// `[log]`: the agent's own logs, on standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// "error", "warn", "info", "debug" or "trace".
    pub level: String,
    /// "text" for people, "json" for log shippers.
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Step two: what the agent runs with

#[derive(Debug, Clone)]
pub struct Config {
    pub agent: AgentConfig,
    pub store: StoreConfig,
    pub collect: CollectConfig,
    pub api: ApiConfig,
    pub statsd: Option<StatsdConfig>,
    pub jobs: JobsConfig,
    pub incidents: IncidentsConfig,
    /// `None` when detection is off.
    pub detect: Option<crate::detect::live::LiveSettings>,
    pub rules: crate::rules::RuleSettings,
    /// `None` when no target is set.
    pub notify: Option<crate::notify::NotifySettings>,
    /// `None` when no OTLP endpoint is set.
    pub export: Option<crate::export::ExportSettings>,
    /// Where /metrics is served; `None`: off.
    pub prometheus: Option<String>,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub spool_dir: PathBuf,
    pub health: crate::jobs::HealthSettings,
}

#[derive(Debug, Clone)]
pub struct IncidentsConfig {
    pub resolve_after: Duration,
}

#[derive(Debug, Clone)]
pub struct StatsdConfig {
    pub listen: String,
    pub limits: crate::collect::statsd::StatsdLimits,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub socket: PathBuf,
    pub listen: Option<String>,
    /// TLS for the TCP listener.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    pub tokens: std::sync::Arc<crate::api::auth::Tokens>,
}

#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub paths: crate::collect::HostPaths,
    /// Names from [`COLLECTORS`] that run.
    pub enabled: Vec<&'static str>,
    pub process_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub interval: Duration,
    pub data_dir: PathBuf,
    pub host_name: String,
    pub budget_rss: u64,
    pub budget_cpu: f64,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub flush_interval: Duration,
    pub options: StoreOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: tracing::Level,
    pub format: LogFormat,
}

impl Config {
    /// Reads `path` (or nothing: all defaults) with overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "built-in defaults".to_string()),
        };
        Self::parse(&text, &origin, env)
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let raw = RawConfig::parse(text, origin, env)?;
        raw.resolve(origin, default_data_dir)
    }
}

impl RawConfig {
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            origin: origin.to_string(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        apply_env(&mut table, env)?;
        RawConfig::deserialize(table).map_err(|e| syntax(e.to_string()))
    }

    /// Checks every value; `home_data_dir` supplies the default data directory.
    pub fn resolve(
        &self,
        origin: &str,
        home_data_dir: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let invalid = |key: &str, value: &str, expected: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        };
        let duration = |key: &str, value: &str, min: Duration, max: Duration| {
            let expected = format!(
                "a duration from {} to {}, such as \"1s\", \"500ms\", \"7d\" or \"1h30m\"",
                fmt_duration(min),
                fmt_duration(max)
            );
            match parse_duration(value) {
                Some(d) if d >= min && d <= max => Ok(d),
                _ => Err(invalid(key, value, &expected)),
            }
        };
        let size = |key: &str, value: &str, min: u64| {
            let expected = format!(
                "a size of at least {} bytes, such as \"1GiB\", \"500MB\" or \"8MiB\"",
                min
            );
            match parse_size(value) {
                Some(n) if n >= min => Ok(n),
                _ => Err(invalid(key, value, &expected)),
            }
        };
        const MS: Duration = Duration::from_millis(1);
        const HOUR: Duration = Duration::from_secs(3600);
        const YEARS_10: Duration = Duration::from_secs(3650 * 86_400);

        let interval = duration("agent.interval", &self.agent.interval, 100 * MS, HOUR)?;
        let data_dir = if self.agent.data_dir.is_empty() {
            home_data_dir().ok_or_else(|| {
                invalid(
                    "agent.data_dir",
                    "",
                    "a directory: neither $XDG_DATA_HOME nor $HOME is set, so there is no default",
                )
            })?
        } else {
            PathBuf::from(&self.agent.data_dir)
        };
        let host_name = if self.agent.host_name.is_empty() {
            system_host_name()
        } else {
            self.agent.host_name.clone()
        };

        let s = &self.store;
        let flush_interval = duration(
            "store.flush_interval",
            &s.flush_interval,
            10 * MS,
            60 * 1000 * MS,
        )?;
        let raw_retention = duration("store.raw_retention", &s.raw_retention, HOUR, YEARS_10)?;
        let minute_retention = duration(
            "store.minute_retention",
            &s.minute_retention,
            raw_retention,
            YEARS_10,
        )?;
        let hour_retention = duration(
            "store.hour_retention",
            &s.hour_retention,
            minute_retention,
            YEARS_10,
        )?;
        let disk_budget = size("store.disk_budget", &s.disk_budget, 16 << 20)?;
        let cache_capacity = size("store.cache_capacity", &s.cache_capacity, 1 << 20)?;

        let c = &self.collect;
        for name in &c.disabled {
            if !COLLECTORS.contains(&name.as_str()) {
                return Err(invalid(
                    "collect.disabled",
                    name,
                    &format!("collector names among {}", COLLECTORS.join(", ")),
                ));
            }
        }
        for (k, v) in [
            ("collect.proc_path", &c.proc_path),
            ("collect.sys_path", &c.sys_path),
            ("collect.root_path", &c.root_path),
        ] {
            if !v.starts_with('/') {
                return Err(invalid(k, v, "an absolute path"));
            }
        }
        let collect = CollectConfig {
            paths: crate::collect::HostPaths {
                proc: PathBuf::from(&c.proc_path),
                sys: PathBuf::from(&c.sys_path),
                root: PathBuf::from(&c.root_path),
            },
            enabled: COLLECTORS
                .into_iter()
                .filter(|n| !c.disabled.iter().any(|d| d == n))
                .collect(),
            process_interval: duration(
                "collect.process_interval",
                &c.process_interval,
                interval,
                HOUR,
            )?,
        };

        let tls = match (self.api.tls_cert.as_str(), self.api.tls_key.as_str()) {
            ("", "") => None,
            ("", _) | (_, "") => {
                return Err(invalid(
                    "api.tls_cert",
                    &self.api.tls_cert,
                    "both api.tls_cert and api.tls_key, or neither",
                ));
            }
            (cert, key) => Some(
                crate::api::tls::server_config(Path::new(cert), Path::new(key)).map_err(|why| {
                    invalid(
                        "api.tls_cert",
                        cert,
                        &format!("a readable PEM certificate and key ({why})"),
                    )
                })?,
            ),
        };
        let api = ApiConfig {
            socket: if self.api.socket.is_empty() {
                crate::api::default_socket(&data_dir)
            } else {
                PathBuf::from(&self.api.socket)
            },
            listen: match self.api.listen.as_str() {
                "" => None,
                addr => match addr.parse::<std::net::SocketAddr>() {
                    Ok(a) if a.ip().is_loopback() || tls.is_some() => Some(addr.to_string()),
                    Ok(_) => {
                        return Err(invalid(
                            "api.listen",
                            addr,
                            "a loopback address such as \"127.0.0.1:7070\", or api.tls_cert and api.tls_key set: any other address needs TLS",
                        ));
                    }
                    Err(_) => {
                        return Err(invalid(
                            "api.listen",
                            addr,
                            "an address and port such as \"127.0.0.1:7070\"",
                        ));
                    }
                },
            },
            tls,
            tokens: std::sync::Arc::new(if self.api.tokens_file.is_empty() {
                crate::api::auth::Tokens::default()
            } else {
                crate::api::auth::Tokens::load(std::path::Path::new(&self.api.tokens_file))
                    .map_err(|why| {
                        invalid(
                            "api.tokens_file",
                            &self.api.tokens_file,
                            &format!("a readable tokens file ({why})"),
                        )
                    })?
            }),
        };

        let st = &self.jobs.statsd;
        let statsd = match st.listen.as_str() {
            "" => None,
            addr => {
                if addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(invalid(
                        "jobs.statsd.listen",
                        addr,
                        "an address and port such as \"127.0.0.1:8125\", or \"\" for none",
                    ));
                }
                let per_metric = usize::try_from(st.series_per_metric)
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "jobs.statsd.series_per_metric",
                            &st.series_per_metric.to_string(),
                            "a number from 1 to 1000000",
                        )
                    })?;
                let max_series = usize::try_from(st.max_series)
                    .ok()
                    .filter(|n| (6..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "jobs.statsd.max_series",
                            &st.max_series.to_string(),
                            "a number from 6 to 1000000",
                        )
                    })?;
                Some(StatsdConfig {
                    listen: addr.to_string(),
                    limits: crate::collect::statsd::StatsdLimits {
                        series_per_metric: per_metric,
                        max_series,
                    },
                })
            }
        };

        let j = &self.jobs;
        let jobs = JobsConfig {
            spool_dir: if j.spool_dir.is_empty() {
                data_dir.join("spool")
            } else if j.spool_dir.starts_with('/') {
                PathBuf::from(&j.spool_dir)
            } else {
                return Err(invalid(
                    "jobs.spool_dir",
                    &j.spool_dir,
                    "an absolute path, or \"\" for <data_dir>/spool",
                ));
            },
            health: crate::jobs::HealthSettings {
                failure_streak: u32::try_from(j.failure_streak)
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "jobs.failure_streak",
                            &j.failure_streak.to_string(),
                            "a number from 1 to 1000",
                        )
                    })?,
                spc_min_runs: usize::try_from(j.spc_min_runs)
                    .ok()
                    .filter(|n| (3..=1000).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "jobs.spc_min_runs",
                            &j.spc_min_runs.to_string(),
                            "a number from 3 to 1000",
                        )
                    })?,
            },
        };
        let incidents = IncidentsConfig {
            resolve_after: duration(
                "incidents.resolve_after",
                &self.incidents.resolve_after,
                Duration::ZERO,
                Duration::from_secs(7 * 86400),
            )?,
        };

        let budget_rss = size("agent.budget_rss", &self.agent.budget_rss, 1 << 20)?;
        let budget_cpu = self.agent.budget_cpu;
        if !(budget_cpu > 0.0 && budget_cpu <= 16.0) {
            return Err(invalid(
                "agent.budget_cpu",
                &budget_cpu.to_string(),
                "a share of one core above 0, such as 0.05 for 5%",
            ));
        }
        let d = &self.detect;
        if !(d.threshold > 0.0 && d.threshold < 1.0) {
            return Err(invalid(
                "detect.threshold",
                &d.threshold.to_string(),
                "a score between 0 and 1, such as 0.6",
            ));
        }
        let min_series = usize::try_from(d.min_series)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                invalid(
                    "detect.min_series",
                    &d.min_series.to_string(),
                    "a number from 1 to 1000",
                )
            })?;
        let detect = d.enabled.then(|| crate::detect::live::LiveSettings {
            threshold: d.threshold,
            min_series,
            ..crate::detect::live::LiveSettings::within(budget_rss)
        });

        let r = &self.rules;
        let rules = crate::rules::RuleSettings {
            filesystem_full_within: match r.filesystem_full_within.as_str() {
                "" => None,
                text => Some(duration(
                    "rules.filesystem_full_within",
                    text,
                    Duration::from_secs(60),
                    Duration::from_secs(366 * 86400),
                )?),
            },
            gpu_max_temperature: match r.gpu_max_temperature {
                0.0 => None,
                t if (20.0..=150.0).contains(&t) => Some(t),
                t => {
                    return Err(invalid(
                        "rules.gpu_max_temperature",
                        &t.to_string(),
                        "degrees Celsius from 20 to 150, or 0 for no limit",
                    ));
                }
            },
            xid_errors: r.xid_errors,
        };

        let n = &self.notify;
        let url = |key: &str, text: &str| -> Result<hyper::Uri, ConfigError> {
            match text.parse::<hyper::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                    Ok(u)
                }
                _ => Err(invalid(key, text, "an http:// or https:// URL")),
            }
        };
        let mut targets = Vec::new();
        if !n.webhook_url.is_empty() {
            targets.push(crate::notify::Target {
                kind: crate::notify::Kind::Webhook,
                url: url("notify.webhook_url", &n.webhook_url)?,
            });
        }
        if !n.slack_webhook_url.is_empty() {
            targets.push(crate::notify::Target {
                kind: crate::notify::Kind::Slack,
                url: url("notify.slack_webhook_url", &n.slack_webhook_url)?,
            });
        }
        if !n.pagerduty_routing_key.is_empty() {
            targets.push(crate::notify::Target {
                kind: crate::notify::Kind::PagerDuty {
                    routing_key: n.pagerduty_routing_key.clone(),
                },
                url: url("notify.pagerduty_url", &n.pagerduty_url)?,
            });
        }
        let min_severity = match n.min_severity.as_str() {
            "info" => ward_shared::incident::Severity::Info,
            "warning" => ward_shared::incident::Severity::Warning,
            "critical" => ward_shared::incident::Severity::Critical,
            other => {
                return Err(invalid(
                    "notify.min_severity",
                    other,
                    "\"info\", \"warning\" or \"critical\"",
                ));
            }
        };
        let max_per_minute = u32::try_from(n.max_per_minute)
            .ok()
            .filter(|m| (1..=10_000).contains(m))
            .ok_or_else(|| {
                invalid(
                    "notify.max_per_minute",
                    &n.max_per_minute.to_string(),
                    "a number from 1 to 10000",
                )
            })?;
        let notify = (!targets.is_empty()).then(|| crate::notify::NotifySettings {
            targets,
            min_severity,
            max_per_minute,
            host: host_name.clone(),
            backoff: Duration::from_secs(1),
            tries: 5,
            timeout: Duration::from_secs(10),
        });

        let o = &self.export.otlp;
        let export = if o.endpoint.is_empty() {
            None
        } else {
            let endpoint = url("export.otlp.endpoint", &o.endpoint)?;
            let protocol = match o.protocol.as_str() {
                "grpc" => crate::export::Protocol::Grpc,
                "http/protobuf" => crate::export::Protocol::HttpProtobuf,
                other => {
                    return Err(invalid(
                        "export.otlp.protocol",
                        other,
                        "\"grpc\" or \"http/protobuf\"",
                    ));
                }
            };
            let pairs =
                |key: &str, list: &[String]| -> Result<Vec<(String, String)>, ConfigError> {
                    list.iter()
                        .map(|item| match item.split_once('=') {
                            Some((k, v)) if !k.trim().is_empty() => {
                                Ok((k.trim().to_string(), v.trim().to_string()))
                            }
                            _ => Err(invalid(key, item, "\"name=value\"")),
                        })
                        .collect()
                };
            let headers = pairs("export.otlp.headers", &o.headers)?;
            for (name, value) in &headers {
                let name_ok =
                    hyper::header::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .is_ok();
                if !name_ok || hyper::header::HeaderValue::from_str(value).is_err() {
                    // The value may be a secret: name the header only.
                    return Err(invalid(
                        "export.otlp.headers",
                        name,
                        "a header name and a value of visible ASCII",
                    ));
                }
            }
            let gzip = match o.compression.as_str() {
                "gzip" => true,
                "none" => false,
                other => {
                    return Err(invalid(
                        "export.otlp.compression",
                        other,
                        "\"gzip\" or \"none\"",
                    ));
                }
            };
            let max_batch_points = usize::try_from(o.max_batch_points)
                .ok()
                .filter(|n| (100..=1_000_000).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "export.otlp.max_batch_points",
                        &o.max_batch_points.to_string(),
                        "a number from 100 to 1000000",
                    )
                })?;
            Some(crate::export::ExportSettings {
                endpoint,
                protocol,
                headers,
                gzip,
                ca_file: (!o.ca_file.is_empty()).then(|| PathBuf::from(&o.ca_file)),
                timeout: duration(
                    "export.otlp.timeout",
                    &o.timeout,
                    100 * MS,
                    10 * 60 * 1000 * MS,
                )?,
                interval: duration("export.otlp.interval", &o.interval, 100 * MS, HOUR)?,
                max_batch_points,
                logs: o.logs,
                resource_attributes: pairs(
                    "export.otlp.resource_attributes",
                    &o.resource_attributes,
                )?,
                host: host_name.clone(),
                sample_interval: interval,
            })
        };
        let prometheus = if self.prometheus.listen.is_empty() {
            None
        } else if self
            .prometheus
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok()
        {
            Some(self.prometheus.listen.clone())
        } else {
            return Err(invalid(
                "prometheus.listen",
                &self.prometheus.listen,
                "an address and port such as \"127.0.0.1:9464\"",
            ));
        };

        let level = match self.log.level.to_ascii_lowercase().as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            "trace" => tracing::Level::TRACE,
            _ => {
                return Err(invalid(
                    "log.level",
                    &self.log.level,
                    "one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
                ));
            }
        };
        let format = match self.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(invalid(
                    "log.format",
                    &self.log.format,
                    "\"text\" or \"json\"",
                ));
            }
        };

        Ok(Config {
            agent: AgentConfig {
                interval,
                data_dir,
                host_name,
                budget_rss,
                budget_cpu,
            },
            store: StoreConfig {
                flush_interval,
                options: StoreOptions {
                    raw_retention,
                    minute_retention,
                    hour_retention,
                    disk_budget,
                    cache_capacity,
                    ..StoreOptions::default()
                },
            },
            collect,
            api,
            statsd,
            jobs,
            incidents,
            detect,
            rules,
            notify,
            export,
            prometheus,
            log: LogConfig { level, format },
        })
    }
}

/// Every key of the config as `(section path, key, default value)`.
fn known_keys() -> Vec<(Vec<String>, String, toml::Value)> {
    fn walk(
        path: &mut Vec<String>,
        table: &toml::Table,
        out: &mut Vec<(Vec<String>, String, toml::Value)>,
    ) {
        for (k, v) in table {
            match v {
                toml::Value::Table(t) => {
                    path.push(k.clone());
                    walk(path, t, out);
                    path.pop();
                }
                v => out.push((path.clone(), k.clone(), v.clone())),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(RawConfig::default()) {
        walk(&mut Vec::new(), &t, &mut out);
    }
    out
}

fn env_name(section: &[String], key: &str) -> String {
    let mut name = String::from("WARD");
    for part in section.iter().map(String::as_str).chain([key]) {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase());
    }
    name
}

/// Sets `WARD_<SECTION>_<KEY>` values over the file's.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let keys = known_keys();
    let sections: Vec<String> = keys
        .iter()
        .map(|(s, _, _)| env_name(s, "").trim_end_matches('_').to_string() + "_")
        .collect();
    for (var, value) in env {
        if !var.starts_with("WARD_") {
            continue;
        }
        let Some((section, key, default)) = keys.iter().find(|(s, k, _)| env_name(s, k) == var)
        else {
            if let Some(prefix) = sections.iter().find(|p| var.starts_with(p.as_str())) {
                let known: Vec<String> = keys
                    .iter()
                    .map(|(s, k, _)| env_name(s, k))
                    .filter(|n| n.starts_with(prefix.as_str()))
                    .collect();
                return Err(ConfigError::UnknownEnv {
                    var,
                    known: known.join(", "),
                });
            }
            continue;
        };
        let value = match default {
            toml::Value::Integer(_) => value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or(toml::Value::String(value)),
            toml::Value::Float(_) => value
                .parse::<f64>()
                .map(toml::Value::Float)
                .unwrap_or(toml::Value::String(value)),
            toml::Value::Boolean(_) => value
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .unwrap_or(toml::Value::String(value)),
            // Lists are written comma-separated: WARD_COLLECT_DISABLED=process,disk
            toml::Value::Array(_) => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| toml::Value::String(v.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(value),
        };
        let mut t = &mut *table;
        for part in section {
            let entry = t
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(inner) = entry.as_table_mut() else {
                return Err(ConfigError::Syntax {
                    origin: var.clone(),
                    message: format!("[{part}] is not a table in the config file"),
                });
            };
            t = inner;
        }
        t.insert(key.clone(), value);
    }
    Ok(())
}

/// Parses "1s", "500ms", "7d", "1h30m": numbers each followed by ms, s, m, h or d.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::from_millis(n.checked_mul(ms_per)?))?;
    }
    Some(total)
}

/// Parses "1GiB", "500MB", "8MiB", "4096" (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let mult: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// `$XDG_DATA_HOME/ward`, else `$HOME/.local/share/ward`.
pub fn default_data_dir() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    non_empty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|base| base.join("ward"))
}

fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The default config as TOML: every key at its default value.
pub fn default_toml() -> String {
    let mut out = String::new();
    let mut section: Option<Vec<String>> = None;
    for (sec, key, value) in known_keys() {
        if section.as_ref() != Some(&sec) {
            if section.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", sec.join(".")));
            section = Some(sec);
        }
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    fn parse(text: &str, env: Vec<(String, String)>) -> Result<Config, ConfigError> {
        RawConfig::parse(text, "ward.toml", env)?.resolve("ward.toml", || {
            Some(PathBuf::from("/home/op/.local/share/ward"))
        })
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let c = parse("", no_env()).unwrap();
        assert_eq!(c.agent.interval, Duration::from_secs(1));
        assert_eq!(
            c.agent.data_dir,
            PathBuf::from("/home/op/.local/share/ward")
        );
        assert!(!c.agent.host_name.is_empty());
        assert_eq!(c.store.flush_interval, Duration::from_secs(1));
        assert_eq!(c.store.options.disk_budget, 1 << 30);
        assert_eq!(
            c.store.options.raw_retention,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn the_default_file_parses_to_the_defaults() {
        let text = default_toml();
        assert!(text.contains("[agent]\n"), "{text}");
        assert!(text.contains("interval = \"1s\""), "{text}");
        let raw = RawConfig::parse(&text, "default", no_env()).unwrap();
        assert_eq!(raw, RawConfig::default());
    }

    #[test]
    fn a_bad_value_names_the_key_the_value_and_what_is_expected() {
        let err = parse("[agent]\ninterval = \"fast\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ward.toml: agent.interval = \"fast\" is not valid"),
            "{err}"
        );
        assert!(
            err.contains("expected a duration from 100ms to 1h"),
            "{err}"
        );

        let err = parse("[store]\ndisk_budget = \"lots\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.disk_budget = \"lots\""), "{err}");

        let err = parse(
            "[store]\nraw_retention = \"30d\"\nminute_retention = \"1d\"\n",
            no_env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("store.minute_retention = \"1d\""), "{err}");
        assert!(err.contains("from 30d"), "{err}");

        let err = parse("[log]\nlevel = \"loud\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.level = \"loud\""), "{err}");
    }

    #[test]
    fn export_settings_are_checked_and_secrets_stay_out_of_errors() {
        let ok = parse(
            "[export.otlp]\nendpoint = \"https://otlp.example.com:4318\"\nprotocol = \"http/protobuf\"\nheaders = [\"x-api-key = s3cret\"]\n",
            no_env(),
        )
        .unwrap();
        let export = ok.export.unwrap();
        assert_eq!(export.protocol, crate::export::Protocol::HttpProtobuf);
        assert_eq!(
            export.headers,
            vec![("x-api-key".to_string(), "s3cret".to_string())]
        );
        assert!(export.gzip && export.logs);
        assert!(parse("", no_env()).unwrap().export.is_none());

        for (text, names) in [
            (
                "endpoint = \"collector:4317\"",
                "export.otlp.endpoint = \"collector:4317\"",
            ),
            (
                "endpoint = \"http://c:4317\"\nprotocol = \"thrift\"",
                "export.otlp.protocol = \"thrift\"",
            ),
            (
                "endpoint = \"http://c:4317\"\nheaders = [\"novalue\"]",
                "export.otlp.headers = \"novalue\"",
            ),
            (
                "endpoint = \"http://c:4317\"\ncompression = \"zstd\"",
                "export.otlp.compression = \"zstd\"",
            ),
            (
                "endpoint = \"http://c:4317\"\nmax_batch_points = 5",
                "export.otlp.max_batch_points = \"5\"",
            ),
        ] {
            let err = parse(&format!("[export.otlp]\n{text}\n"), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(names), "{err}");
        }
        // A header whose value cannot be sent is named, its value not shown.
        let err = parse(
            "[export.otlp]\nendpoint = \"http://c:4317\"\nheaders = [\"authorization=Bearer s3\\u0001cret\"]\n",
            no_env(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("export.otlp.headers = \"authorization\""),
            "{err}"
        );
        assert!(!err.contains("Bearer"), "{err}");

        let err = parse("[prometheus]\nlisten = \"9464\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("prometheus.listen = \"9464\""), "{err}");
    }

    #[test]
    fn unknown_keys_and_sections_are_errors() {
        let err = parse("[agent]\nintervall = \"1s\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `intervall`"), "{err}");
        assert!(err.contains("`interval`"), "{err}");
        let err = parse("[agnet]\n", no_env()).unwrap_err().to_string();
        assert!(err.contains("unknown field `agnet`"), "{err}");
        let err = parse("[agent]\ninterval = 5\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("interval"), "{err}");
        let err = parse("[agent\n", no_env()).unwrap_err().to_string();
        assert!(err.starts_with("ward.toml: "), "{err}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let env = vec![
            ("WARD_AGENT_INTERVAL".to_string(), "5s".to_string()),
            ("WARD_STORE_DISK_BUDGET".to_string(), "64MiB".to_string()),
            ("WARD_AGENT_DATA_DIR".to_string(), "/srv/ward".to_string()),
            ("WARD_SOMETHING_ELSE".to_string(), "ignored".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = parse("[agent]\ninterval = \"2s\"\n", env).unwrap();
        assert_eq!(c.agent.interval, Duration::from_secs(5));
        assert_eq!(c.agent.data_dir, PathBuf::from("/srv/ward"));
        assert_eq!(c.store.options.disk_budget, 64 << 20);

        let env = vec![("WARD_AGENT_INTERVALL".to_string(), "5s".to_string())];
        let err = parse("", env).unwrap_err().to_string();
        assert!(err.contains("WARD_AGENT_INTERVALL"), "{err}");
        assert!(
            err.ends_with(
                "WARD_AGENT_INTERVAL, WARD_AGENT_DATA_DIR, WARD_AGENT_HOST_NAME, WARD_AGENT_BUDGET_RSS, WARD_AGENT_BUDGET_CPU"
            ),
            "{err}"
        );

        let env = vec![("WARD_AGENT_INTERVAL".to_string(), "soon".to_string())];
        let err = parse("", env).unwrap_err().to_string();
        assert!(err.contains("agent.interval = \"soon\""), "{err}");
    }

    #[test]
    fn collectors_can_be_left_off_and_unknown_ones_are_named() {
        let c = parse("[collect]\ndisabled = [\"process\"]\n", no_env()).unwrap();
        assert!(!c.collect.enabled.contains(&"process"));
        assert!(c.collect.enabled.contains(&"cpu"));
        let env = vec![(
            "WARD_COLLECT_DISABLED".to_string(),
            "disk, network".to_string(),
        )];
        let c = parse("", env).unwrap();
        assert_eq!(
            c.collect.enabled,
            vec!["cpu", "memory", "filesystem", "process", "gpu", "agent"]
        );
        let err = parse("[collect]\ndisabled = [\"gpus\"]\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("collect.disabled = \"gpus\""), "{err}");
        assert!(err.contains("cpu, memory, disk"), "{err}");
        let err = parse("[collect]\nproc_path = \"host/proc\"\n", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected an absolute path"), "{err}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("500 MB"), Some(500_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("99999999999TiB"), None);
    }
}
