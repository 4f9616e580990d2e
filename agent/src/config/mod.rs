//! The config file: what the user wrote, then what it resolves to.
//!
//! - `file.rs`: step one, [`RawConfig`], the file as written (after
//!   environment overrides, `env.rs`), each value parsed by its type
//!   (`values.rs`) as the file is read. The doc comments on its fields are
//!   the user documentation.
//! - `resolve.rs`: step two, [`Config`], what the agent runs with: checks
//!   that span keys, defaults that depend on the host, and each part's
//!   settings, which that part owns (`StoreSettings` in `store`,
//!   `ApiSettings` in `api`, …); this module only assembles them.
//!
//! It opens no file but the config itself and starts nothing: the API
//! loads its TLS and token files when it starts. Every key has a default,
//! so an empty file (or none) is a valid config. Unknown keys are errors,
//! and so are unknown `WARD_<SECTION>_<KEY>` variables for a known section.
//! Errors name the key, the value and what was expected.

mod env;
mod file;
mod resolve;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::api::ApiSettings;
use crate::collect::CollectSettings;
use crate::collect::statsd::StatsdSettings;
use crate::detect::DetectSettings;
use crate::export::ExportSettings;
use crate::incidents::IncidentsSettings;
use crate::jobs::JobsSettings;
use crate::notify::NotifySettings;
use crate::rules::RuleSettings;
use crate::store::StoreSettings;

pub use file::{
    Compression, LogFormat, RawAgent, RawApi, RawCollect, RawConfig, RawDetect, RawExport,
    RawIncidents, RawJobs, RawLog, RawNotify, RawOtlp, RawPrometheus, RawRules, RawStatsd,
    RawStore,
};
pub use values::{parse_duration, parse_size};

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

/// What the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub agent: AgentSettings,
    pub store: StoreSettings,
    pub collect: CollectSettings,
    pub api: ApiSettings,
    /// `None` when the listener is off.
    pub statsd: Option<StatsdSettings>,
    pub jobs: JobsSettings,
    pub incidents: IncidentsSettings,
    /// `None` when detection is off.
    pub detect: Option<DetectSettings>,
    pub rules: RuleSettings,
    /// `None` when no target is set.
    pub notify: Option<NotifySettings>,
    /// `None` when no OTLP endpoint is set.
    pub export: Option<ExportSettings>,
    /// Where /metrics is served; `None`: off.
    pub prometheus: Option<String>,
    pub log: LogSettings,
}

/// `[agent]`: the daemon itself.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub interval: Duration,
    pub data_dir: PathBuf,
    pub host_name: String,
    pub budget_rss: u64,
    pub budget_cpu: f64,
}

/// `[log]`: the agent's own logs.
#[derive(Debug, Clone)]
pub struct LogSettings {
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
    /// The file as written, with the environment's overrides, each value
    /// parsed by its type.
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
        env::apply_env(&mut table, env)?;
        serde_path_to_error::deserialize(table.clone()).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                located(origin, &table, e.path(), e.inner().to_string())
            },
        )
    }
}

/// A refusal at `path` as the user reads it: a value refused by its type
/// names the key, the value and what was expected; anything else (an
/// unknown key, a value of the wrong kind) says where it happened.
fn located(
    origin: &str,
    table: &toml::Table,
    path: &serde_path_to_error::Path,
    message: String,
) -> ConfigError {
    use serde_path_to_error::Segment;
    // toml adds a line naming the key again ("in `agent.interval`").
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut key = Vec::new();
    let mut value: Option<&toml::Value> = None;
    let mut here: Option<&toml::Table> = Some(table);
    for segment in path.iter() {
        match segment {
            Segment::Map { key: k } => {
                key.push(k.as_str());
                value = here.and_then(|t| t.get(k));
            }
            Segment::Seq { index } => {
                value = value.and_then(|v| v.as_array()).and_then(|a| a.get(*index));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
        here = value.and_then(toml::Value::as_table);
    }
    let key = key.join(".");
    match (message.strip_prefix(values::EXPECTED), value) {
        (Some(expected), Some(v)) if !v.is_table() => ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            value: match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            expected: expected.to_string(),
        },
        _ if key.is_empty() => ConfigError::Syntax {
            origin: origin.to_string(),
            message,
        },
        _ => ConfigError::Syntax {
            origin: origin.to_string(),
            message: format!("{key}: {message}"),
        },
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

/// The default config as TOML: every key at its default value.
pub fn default_toml() -> String {
    let mut out = String::new();
    let mut section: Option<Vec<String>> = None;
    for (sec, key, value) in env::known_keys() {
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
        assert_eq!(c.store.disk_budget, 1 << 30);
        assert_eq!(c.store.raw_retention, Duration::from_secs(7 * 86_400));
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
        assert_eq!(c.store.disk_budget, 64 << 20);

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
        let names = |c: &Config| -> Vec<&'static str> {
            c.collect.enabled.iter().map(|k| k.name()).collect()
        };
        let c = parse("[collect]\ndisabled = [\"process\"]\n", no_env()).unwrap();
        assert!(!names(&c).contains(&"process"));
        assert!(names(&c).contains(&"cpu"));
        let env = vec![(
            "WARD_COLLECT_DISABLED".to_string(),
            "disk, network".to_string(),
        )];
        let c = parse("", env).unwrap();
        assert_eq!(
            names(&c),
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
