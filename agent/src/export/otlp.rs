//! OTLP messages from the store's samples and the outbox's events.
//!
//! - Resource: service.name, service.version, host.name, host.id (the
//!   machine id), host.arch, os.type, os.description, then the configured
//!   attributes (which win).
//! - Each series name is one metric with its unit; the series' labels are
//!   the data point's attributes, except `host.name`, which is the
//!   resource's. Gauges are gauges; counters are cumulative monotonic sums
//!   whose start time is the series' own (the boot time for kernel
//!   counters), moved to just after the previous point when a counter is
//!   seen to reset.
//! - Incident changes and finished job runs are log records with an event
//!   name, a severity, the time they happened, and `log.record.uid` made
//!   from the host and the outbox sequence number: the same event sent
//!   twice has the same id.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use ward_shared::incident::Severity;
use ward_shared::jobs::RunStatus;
use ward_shared::time::now_ms;
use ward_shared::{MetricKind, Sample, SeriesDesc, SeriesId, TimestampMs};

use super::{ExportSettings, Outgoing};

const SCOPE: &str = "ward-agent";

fn text(value: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.into())),
    })
}

fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: text(value),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn kv_double(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(value)),
        }),
        ..Default::default()
    }
}

fn nanos(ms: TimestampMs) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: SCOPE.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    })
}

/// `host.arch` as the semantic conventions spell it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-18-amd64)", from what the system says.
fn os_description() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".to_string());
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(kernel) => format!("{pretty} (Linux {})", kernel.trim()),
        Err(_) => pretty,
    }
}

/// The resource every request carries.
pub fn resource(settings: &ExportSettings) -> Resource {
    let mut attrs: Vec<(String, String)> = vec![
        ("service.name".into(), SCOPE.into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("host.name".into(), settings.host.clone()),
        ("host.arch".into(), host_arch().into()),
        ("os.type".into(), std::env::consts::OS.into()),
        ("os.description".into(), os_description()),
    ];
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id")
        && !id.trim().is_empty()
    {
        attrs.push(("host.id".into(), id.trim().to_string()));
    }
    for (k, v) in &settings.resource_attributes {
        attrs.retain(|(key, _)| key != k);
        attrs.push((k.clone(), v.clone()));
    }
    Resource {
        attributes: attrs.iter().map(|(k, v)| kv(k, v.as_str())).collect(),
        ..Default::default()
    }
}

/// A counter's start time and last point, across batches.
#[derive(Debug, Clone, Copy)]
pub struct CounterStart {
    start: TimestampMs,
    last: Option<(TimestampMs, f64)>,
}

/// One request with `points` (in time order), grouped into one metric per name.
pub fn metrics_request(
    resource: &Resource,
    points: &[Sample],
    descs: &HashMap<SeriesId, SeriesDesc>,
    starts: &mut HashMap<SeriesId, CounterStart>,
) -> ExportMetricsServiceRequest {
    let mut by_name: BTreeMap<&str, Metric> = BTreeMap::new();
    let mut attributes: HashMap<SeriesId, Vec<KeyValue>> = HashMap::new();
    for p in points {
        let Some(desc) = descs.get(&p.series) else {
            continue;
        };
        let attrs = attributes
            .entry(p.series)
            .or_insert_with(|| {
                desc.key
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "host.name")
                    .map(|(k, v)| kv(k, v))
                    .collect()
            })
            .clone();
        let metric = by_name
            .entry(desc.key.name.as_str())
            .or_insert_with(|| Metric {
                name: desc.key.name.clone(),
                unit: desc.unit.clone(),
                data: Some(match desc.kind {
                    MetricKind::Gauge => metric::Data::Gauge(Gauge::default()),
                    MetricKind::Counter => metric::Data::Sum(Sum {
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            });
        let mut point = NumberDataPoint {
            attributes: attrs,
            time_unix_nano: nanos(p.ts),
            value: Some(number_data_point::Value::AsDouble(p.value)),
            ..Default::default()
        };
        match &mut metric.data {
            Some(metric::Data::Gauge(g)) => g.data_points.push(point),
            Some(metric::Data::Sum(s)) => {
                let entry = starts.entry(p.series).or_insert(CounterStart {
                    start: desc.start_ts.unwrap_or(p.ts).min(p.ts),
                    last: None,
                });
                if let Some((last_ts, last_value)) = entry.last
                    && p.value < last_value
                {
                    // Reset: a new count began after the last point.
                    entry.start = (last_ts + 1).min(p.ts);
                }
                entry.last = Some((p.ts, p.value));
                point.start_time_unix_nano = nanos(entry.start);
                s.data_points.push(point);
            }
            _ => {}
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: by_name.into_values().collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn severity(s: Severity) -> (SeverityNumber, &'static str) {
    match s {
        Severity::Info => (SeverityNumber::Info, "INFO"),
        Severity::Warning => (SeverityNumber::Warn, "WARN"),
        Severity::Critical => (SeverityNumber::Error, "ERROR"),
    }
}

/// The log record of one outbox event.
pub fn log_record(host: &str, seq: u64, event: &Outgoing) -> LogRecord {
    let uid = kv("log.record.uid", format!("{host}/{seq}"));
    match event {
        Outgoing::Incident { change, incident } => {
            let event_name = if change.what.starts_with("opened") {
                "ward.incident.opened"
            } else if incident.resolved == Some(change.at) && change.what.starts_with("resolved") {
                "ward.incident.resolved"
            } else {
                "ward.incident.updated"
            };
            let (number, word) = severity(incident.severity);
            let mut attributes = vec![
                uid,
                kv_int("ward.incident.id", incident.id as i64),
                kv("ward.incident.key", incident.key.as_str()),
                kv("ward.incident.title", incident.title.as_str()),
                kv(
                    "ward.incident.state",
                    format!("{:?}", incident.state).to_lowercase(),
                ),
                kv("ward.incident.severity", incident.severity.word()),
                kv("ward.incident.change", change.what.as_str()),
                kv("ward.incident.by", change.by.as_str()),
                kv_int("ward.incident.opened", incident.opened),
            ];
            for (i, s) in incident.signals.iter().take(5).enumerate() {
                let mut line = format!("{} = {} {}", s.what, s.observed, s.unit);
                if let (Some(lo), Some(hi)) = (s.expected_low, s.expected_high) {
                    line.push_str(&format!(" (expected {lo} to {hi})"));
                }
                attributes.push(kv(&format!("ward.incident.signal.{i}"), line));
            }
            LogRecord {
                time_unix_nano: nanos(change.at),
                observed_time_unix_nano: nanos(now_ms()),
                severity_number: number as i32,
                severity_text: word.to_string(),
                body: text(format!(
                    "incident #{} {}: {}",
                    incident.id, change.what, incident.title
                )),
                attributes,
                event_name: event_name.to_string(),
                ..Default::default()
            }
        }
        Outgoing::JobRun { run } => {
            let failed = run.status == RunStatus::Failed;
            let (number, word) = if failed {
                (SeverityNumber::Error, "ERROR")
            } else {
                (SeverityNumber::Info, "INFO")
            };
            let mut attributes = vec![
                uid,
                kv("ward.job.name", run.job.as_str()),
                kv("ward.job.run.id", run.run.as_str()),
                kv(
                    "ward.job.run.status",
                    if failed { "failed" } else { "success" },
                ),
                kv_int("ward.job.run.started", run.started),
            ];
            let mut how = String::new();
            if let Some(code) = run.exit_code {
                attributes.push(kv_int("process.exit.code", i64::from(code)));
                how = format!(" (exit code {code})");
            }
            if let Some(signal) = run.signal {
                attributes.push(kv_int("ward.job.run.signal", i64::from(signal)));
                how = format!(" (signal {signal})");
            }
            let optional = [
                ("ward.job.run.duration", run.duration_s),
                ("ward.job.run.cpu_time", run.cpu_seconds),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    attributes.push(kv_double(key, v));
                }
            }
            let counts = [
                ("ward.job.run.peak_rss", run.peak_rss_bytes),
                ("ward.job.run.gpu_memory", run.gpu_memory_bytes),
                ("ward.job.run.records_in", run.records_in),
                ("ward.job.run.records_out", run.records_out),
                ("ward.job.run.bytes_in", run.bytes_in),
                ("ward.job.run.bytes_out", run.bytes_out),
            ];
            for (key, value) in counts {
                if let Some(v) = value {
                    attributes.push(kv_int(key, i64::try_from(v).unwrap_or(i64::MAX)));
                }
            }
            let took = run
                .duration_s
                .map_or(String::new(), |d| format!(" after {d:.1} s"));
            LogRecord {
                time_unix_nano: nanos(run.ended.unwrap_or(run.started)),
                observed_time_unix_nano: nanos(now_ms()),
                severity_number: number as i32,
                severity_text: word.to_string(),
                body: text(format!(
                    "job {} run {} {}{how}{took}",
                    run.job,
                    run.run,
                    if failed { "failed" } else { "succeeded" }
                )),
                attributes,
                event_name: "ward.job.run".to_string(),
                ..Default::default()
            }
        }
    }
}

pub fn logs_request(resource: &Resource, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_shared::{Labels, SeriesKey};

    #[test]
    fn counters_are_cumulative_sums_that_restart_after_a_reset() {
        let key = SeriesKey::new(
            "system.network.io",
            Labels::new([("host.name", "db-1"), ("network.io.direction", "receive")]).unwrap(),
        )
        .unwrap();
        let descs = HashMap::from([(SeriesId(0), SeriesDesc::counter(key, "By", 1_000))]);
        let points: Vec<Sample> = [(5_000, 10.0), (6_000, 30.0), (7_000, 4.0)]
            .iter()
            .map(|&(ts, value)| Sample {
                series: SeriesId(0),
                ts,
                value,
            })
            .collect();
        let mut starts = HashMap::new();
        let req = metrics_request(&Resource::default(), &points, &descs, &mut starts);
        let metric = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!(
            (metric.name.as_str(), metric.unit.as_str()),
            ("system.network.io", "By")
        );
        let Some(metric::Data::Sum(sum)) = &metric.data else {
            panic!("a counter must be a sum: {metric:?}");
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let starts: Vec<u64> = sum
            .data_points
            .iter()
            .map(|p| p.start_time_unix_nano)
            .collect();
        assert_eq!(starts, vec![1_000_000_000, 1_000_000_000, 6_001_000_000]);
        // host.name belongs to the resource, the rest to the point.
        let keys: Vec<&str> = sum.data_points[0]
            .attributes
            .iter()
            .map(|a| a.key.as_str())
            .collect();
        assert_eq!(keys, vec!["network.io.direction"]);
    }
}
