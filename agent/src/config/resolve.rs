//! Step two: what the file resolves to. Each value was parsed by its type
//! as the file was read; what is left here is what one key alone cannot
//! say (a retention no shorter than the one before it, TCP beyond loopback
//! only with TLS), paths and addresses, defaults that depend on the host,
//! and handing each part of the agent its settings.

use std::path::PathBuf;
use std::time::Duration;

use super::file::{Compression, RawConfig, Retention};
use super::values::duration_expected;
use super::{AgentSettings, Config, ConfigError, LogSettings};
use crate::api::{ApiSettings, TlsFiles};
use crate::collect::statsd::{StatsdLimits, StatsdSettings};
use crate::collect::{CollectSettings, CollectorKind, HostPaths};
use crate::detect::DetectSettings;
use crate::export::ExportSettings;
use crate::incidents::IncidentsSettings;
use crate::jobs::{HealthSettings, JobsSettings};
use crate::notify::{Kind, NotifySettings, Target};
use crate::rules::RuleSettings;
use crate::store::StoreSettings;

impl RawConfig {
    /// Checks what one key alone cannot and assembles the settings;
    /// `home_data_dir` supplies the default data directory.
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
        let a = &self.agent;
        let interval = a.interval.value;
        let data_dir = if a.data_dir.is_empty() {
            home_data_dir().ok_or_else(|| {
                invalid(
                    "agent.data_dir",
                    "",
                    "a directory: neither $XDG_DATA_HOME nor $HOME is set, so there is no default",
                )
            })?
        } else {
            PathBuf::from(&a.data_dir)
        };
        let host_name = if a.host_name.is_empty() {
            crate::system::host_name()
        } else {
            a.host_name.clone()
        };
        if !(a.budget_cpu > 0.0 && a.budget_cpu <= 16.0) {
            return Err(invalid(
                "agent.budget_cpu",
                &a.budget_cpu.to_string(),
                "a share of one core above 0, such as 0.05 for 5%",
            ));
        }
        let budget_rss = a.budget_rss.bytes;

        // Each store tier keeps its data at least as long as the one before.
        let s = &self.store;
        let at_least = |key: &str, d: &Retention, min: Duration| {
            if d.value < min {
                Err(invalid(
                    key,
                    d.text(),
                    &duration_expected(min, Retention::MAX),
                ))
            } else {
                Ok(d.value)
            }
        };
        let raw_retention = s.raw_retention.value;
        let minute_retention =
            at_least("store.minute_retention", &s.minute_retention, raw_retention)?;
        let hour_retention = at_least("store.hour_retention", &s.hour_retention, minute_retention)?;
        let store = StoreSettings {
            flush_interval: s.flush_interval.value,
            raw_retention,
            minute_retention,
            hour_retention,
            disk_budget: s.disk_budget.bytes,
            cache_capacity: s.cache_capacity.bytes,
            ..StoreSettings::default()
        };

        let c = &self.collect;
        for (k, v) in [
            ("collect.proc_path", &c.proc_path),
            ("collect.sys_path", &c.sys_path),
            ("collect.root_path", &c.root_path),
        ] {
            if !v.starts_with('/') {
                return Err(invalid(k, v, "an absolute path"));
            }
        }
        if c.process_interval.value < interval {
            return Err(invalid(
                "collect.process_interval",
                c.process_interval.text(),
                &duration_expected(interval, Duration::from_secs(3600)),
            ));
        }
        let collect = CollectSettings {
            paths: HostPaths {
                proc: PathBuf::from(&c.proc_path),
                sys: PathBuf::from(&c.sys_path),
                root: PathBuf::from(&c.root_path),
            },
            enabled: CollectorKind::NAMES
                .into_iter()
                .map(|(_, kind)| kind)
                .filter(|kind| !c.disabled.iter().any(|d| d.0 == *kind))
                .collect(),
            process_interval: c.process_interval.value,
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
            (cert, key) => Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
        };
        let api = ApiSettings {
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
            tokens_file: (!self.api.tokens_file.is_empty())
                .then(|| PathBuf::from(&self.api.tokens_file)),
        };

        let st = &self.jobs.statsd;
        let statsd = match st.listen.as_str() {
            "" => None,
            addr if addr.parse::<std::net::SocketAddr>().is_err() => {
                return Err(invalid(
                    "jobs.statsd.listen",
                    addr,
                    "an address and port such as \"127.0.0.1:8125\", or \"\" for none",
                ));
            }
            addr => Some(StatsdSettings {
                listen: addr.to_string(),
                limits: StatsdLimits {
                    series_per_metric: st.series_per_metric.as_usize(),
                    max_series: st.max_series.as_usize(),
                },
            }),
        };

        let j = &self.jobs;
        let jobs = JobsSettings {
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
            health: HealthSettings {
                failure_streak: j.failure_streak.as_u32(),
                spc_min_runs: j.spc_min_runs.as_usize(),
            },
        };
        let incidents = IncidentsSettings {
            resolve_after: self.incidents.resolve_after.value,
        };

        let d = &self.detect;
        if !(d.threshold > 0.0 && d.threshold < 1.0) {
            return Err(invalid(
                "detect.threshold",
                &d.threshold.to_string(),
                "a score between 0 and 1, such as 0.6",
            ));
        }
        let detect = d.enabled.then(|| DetectSettings {
            threshold: d.threshold,
            min_series: d.min_series.as_usize(),
            ..DetectSettings::within(budget_rss)
        });

        let r = &self.rules;
        let rules = RuleSettings {
            filesystem_full_within: r.filesystem_full_within.0.as_ref().map(|d| d.value),
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

        let url = |key: &str, text: &str| -> Result<hyper::Uri, ConfigError> {
            match text.parse::<hyper::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                    Ok(u)
                }
                _ => Err(invalid(key, text, "an http:// or https:// URL")),
            }
        };
        let n = &self.notify;
        let mut targets = Vec::new();
        if !n.webhook_url.is_empty() {
            targets.push(Target {
                kind: Kind::Webhook,
                url: url("notify.webhook_url", &n.webhook_url)?,
            });
        }
        if !n.slack_webhook_url.is_empty() {
            targets.push(Target {
                kind: Kind::Slack,
                url: url("notify.slack_webhook_url", &n.slack_webhook_url)?,
            });
        }
        if !n.pagerduty_routing_key.is_empty() {
            targets.push(Target {
                kind: Kind::PagerDuty {
                    routing_key: n.pagerduty_routing_key.clone(),
                },
                url: url("notify.pagerduty_url", &n.pagerduty_url)?,
            });
        }
        let notify = (!targets.is_empty()).then(|| NotifySettings {
            targets,
            min_severity: n.min_severity.0,
            max_per_minute: n.max_per_minute.as_u32(),
            host: host_name.clone(),
            backoff: Duration::from_secs(1),
            tries: 5,
            timeout: Duration::from_secs(10),
        });

        let o = &self.export.otlp;
        let export = if o.endpoint.is_empty() {
            None
        } else {
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
            let endpoint = url("export.otlp.endpoint", &o.endpoint)?;
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
            Some(ExportSettings {
                endpoint,
                protocol: o.protocol.0,
                headers,
                gzip: o.compression.0 == Compression::Gzip,
                ca_file: (!o.ca_file.is_empty()).then(|| PathBuf::from(&o.ca_file)),
                timeout: o.timeout.value,
                interval: o.interval.value,
                max_batch_points: o.max_batch_points.as_usize(),
                logs: o.logs,
                resource_attributes: pairs(
                    "export.otlp.resource_attributes",
                    &o.resource_attributes,
                )?,
                host: host_name.clone(),
                sample_interval: interval,
            })
        };
        let prometheus = match self.prometheus.listen.as_str() {
            "" => None,
            addr if addr.parse::<std::net::SocketAddr>().is_ok() => Some(addr.to_string()),
            addr => {
                return Err(invalid(
                    "prometheus.listen",
                    addr,
                    "an address and port such as \"127.0.0.1:9464\"",
                ));
            }
        };

        Ok(Config {
            agent: AgentSettings {
                interval,
                data_dir,
                host_name,
                budget_rss,
                budget_cpu: a.budget_cpu,
            },
            store,
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
            log: LogSettings {
                level: self.log.level.0,
                format: self.log.format.0,
            },
        })
    }
}
