//! The Prometheus text exposition (format 0.0.4) on `/metrics`, opt-in
//! with `prometheus.listen`, for pull-based backends.
//!
//! Names follow the OpenTelemetry-to-Prometheus rules: characters outside
//! `[a-zA-Z0-9_:]` become `_`, the unit becomes a suffix (`By` -> `bytes`,
//! `s` -> `seconds`, `1` -> `ratio` for gauges, `{...}` annotations
//! dropped), counters end in `_total`. Each series shows its newest value;
//! series silent for [`STALE_MS`] are left out, as Prometheus would mark
//! them stale.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use ward_shared::time::now_ms;
use ward_shared::{MetricKind, SeriesDesc, TimestampMs};

use crate::store::SharedStore;
use crate::store::Store;

/// Series with no sample for this long are not shown.
pub const STALE_MS: i64 = 5 * 60 * 1000;

/// The router that serves `/metrics`.
pub fn router(store: SharedStore) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(store)
}

async fn metrics(State(store): State<SharedStore>) -> impl IntoResponse {
    let body = render(&store.lock(), now_ms());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "W" => "watts",
        "J" => "joules",
        "mJ" => "millijoules",
        "V" => "volts",
        "A" => "amperes",
        "%" => "percent",
        "By/s" => "bytes_per_second",
        _ => return None,
    })
}

/// The Prometheus name of a series' metric.
pub fn metric_name(desc: &SeriesDesc) -> String {
    let mut name = sanitize(&desc.key.name);
    let suffix = match (desc.unit.as_str(), desc.kind) {
        ("1", MetricKind::Gauge) => Some("ratio"),
        (unit, _) => unit_word(unit),
    };
    if let Some(s) = suffix
        && !name.ends_with(&format!("_{s}"))
    {
        name.push('_');
        name.push_str(s);
    }
    if desc.kind == MetricKind::Counter {
        if !name.ends_with("_total") {
            name.push_str("_total");
        }
    } else if ["_count", "_sum", "_bucket", "_total"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        // Suffixes Prometheus keeps for histograms, summaries and counters.
        name.push_str("_value");
    }
    name
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

/// Every fresh series' newest value, grouped by metric.
pub fn render(store: &Store, now: TimestampMs) -> String {
    struct Family {
        kind: MetricKind,
        help: String,
        lines: Vec<String>,
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (desc, ts, value) in store.latest() {
        if now - ts > STALE_MS {
            continue;
        }
        let name = metric_name(desc);
        let family = families.entry(name.clone()).or_insert_with(|| Family {
            kind: desc.kind,
            help: format!("{} ({})", desc.key.name, desc.unit),
            lines: Vec::new(),
        });
        // Two names that read the same here, of different kinds: the first stays.
        if family.kind != desc.kind {
            continue;
        }
        let labels: Vec<String> = desc
            .key
            .labels
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape(v)))
            .collect();
        let line = if labels.is_empty() {
            format!("{name} {}", number(value))
        } else {
            format!("{name}{{{}}} {}", labels.join(","), number(value))
        };
        family.lines.push(line);
    }
    let mut out = String::new();
    for (name, f) in families {
        let kind = match f.kind {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for line in f.lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_shared::{Labels, SeriesKey};

    fn desc(name: &str, unit: &str, kind: MetricKind) -> SeriesDesc {
        let key = SeriesKey::new(name, Labels::new([("host.name", "db-1")]).unwrap()).unwrap();
        match kind {
            MetricKind::Gauge => SeriesDesc::gauge(key, unit),
            MetricKind::Counter => SeriesDesc::counter(key, unit, 0),
        }
    }

    #[test]
    fn names_follow_the_opentelemetry_to_prometheus_rules() {
        use MetricKind::*;
        for (name, unit, kind, expected) in [
            (
                "system.cpu.utilization",
                "1",
                Gauge,
                "system_cpu_utilization_ratio",
            ),
            (
                "system.memory.usage",
                "By",
                Gauge,
                "system_memory_usage_bytes",
            ),
            (
                "system.network.io",
                "By",
                Counter,
                "system_network_io_bytes_total",
            ),
            (
                "system.disk.operations",
                "{operation}",
                Counter,
                "system_disk_operations_total",
            ),
            (
                "hw.gpu.temperature",
                "Cel",
                Gauge,
                "hw_gpu_temperature_celsius",
            ),
            ("ward.jobs.running", "{run}", Gauge, "ward_jobs_running"),
            (
                "system.process.count",
                "{process}",
                Gauge,
                "system_process_count_value",
            ),
        ] {
            assert_eq!(metric_name(&desc(name, unit, kind)), expected, "{name}");
        }
    }
}
