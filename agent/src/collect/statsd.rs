//! StatsD and DogStatsD: a UDP listener, aggregated per tick into series.
//!
//! A packet holds lines `name:value|type[|@rate][|#tag:value,tag]`:
//!
//! | type | kept as |
//! | --- | --- |
//! | `c` counter | cumulative counter (value / rate added up), start = first seen |
//! | `g` gauge (`+n` / `-n` change it) | gauge, last value |
//! | `ms`, `h`, `d` timer, histogram, distribution | per tick: `stat` = min, max, avg, p95 (gauges); count and sum (cumulative counters) |
//! | `s` set | gauge: distinct values seen in the tick |
//!
//! DogStatsD tags become labels (`env:prod` -> `env="prod"`, a bare tag ->
//! `tag="true"`). Airflow's metric names, which carry the DAG, task, pool
//! or state inside the name, are split into labels (see `airflow.rs`), so an
//! Airflow DAG shows as a job with no setup on the Airflow side.
//!
//! Bad lines are dropped and counted (`ward.statsd.malformed`), and the
//! first of each minute is logged with the reason; a packet's good lines are
//! kept. A metric name that reaches [`StatsdLimits::series_per_metric`]
//! distinct label sets stops growing (`ward.statsd.dropped{reason="cardinality"}`),
//! and the warning names the metric. The aggregator makes at most
//! [`StatsdLimits::max_series`] series (a timer makes six: min, max, avg,
//! p95, count, sum) and buffers at most [`MAX_BUFFERED_VALUES`] timer values
//! and set members between ticks (past that a timer's count and sum still
//! add up, its percentiles come from the values kept): memory is bounded
//! however hard it is flooded. Packets that the kernel drops because the socket's receive
//! buffer is full (the listener cannot keep up) are read from the socket's
//! own drop counter (`/proc/self/net/udp`) and counted too
//! (`ward.statsd.packets.dropped`, beside `ward.statsd.packets`), so that
//! every packet sent is either received or counted as dropped.

use std::collections::{HashMap, HashSet};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::warn;
use ward_shared::jobs::JobEvent;
use ward_shared::{Labels, SeriesDesc, SeriesKey};

use super::airflow;
use super::{CollectError, Collector, Emitter, LocalId, key};

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Counter(f64),
    Gauge(f64),
    /// A `+n` or `-n` gauge: a change, not a level.
    GaugeDelta(f64),
    /// Timer, histogram or distribution sample, and how many it stands for (1 / rate).
    Sample(f64, f64),
    Set(String),
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("no `:` between name and value")]
    NoValue,
    #[error("no `|type` after the value")]
    NoType,
    #[error("empty metric name")]
    EmptyName,
    #[error("value {0:?} is not a number")]
    BadValue(String),
    #[error("type {0:?} is not c, g, ms, h, d or s")]
    BadType(String),
    #[error("sample rate {0:?} is not a number in (0, 1]")]
    BadRate(String),
}

/// Characters kept in names and label keys; anything else becomes `_`.
fn clean(s: &str, dots: bool) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (dots && (c == '.' || c == '-')) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Parses one StatsD/DogStatsD line.
pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let (name, rest) = line.split_once(':').ok_or(LineError::NoValue)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(LineError::EmptyName);
    }
    let mut sections = rest.split('|');
    let value = sections.next().unwrap_or("").trim();
    let kind = sections.next().ok_or(LineError::NoType)?.trim();
    let mut rate = 1.0;
    let mut labels = Vec::new();
    for s in sections {
        if let Some(r) = s.strip_prefix('@') {
            rate = r
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| LineError::BadRate(r.into()))?;
        } else if let Some(tags) = s.strip_prefix('#') {
            for tag in tags.split(',').filter(|t| !t.is_empty()) {
                let (k, v) = tag.split_once(':').unwrap_or((tag, "true"));
                labels.push((clean(k, true), v.to_string()));
            }
        }
        // Other DogStatsD sections (container id, timestamps) are ignored.
    }
    let number = || {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| LineError::BadValue(value.into()))
    };
    let value = match kind {
        "c" => Value::Counter(number()? / rate),
        "g" if value.starts_with('+') || value.starts_with('-') => Value::GaugeDelta(number()?),
        "g" => Value::Gauge(number()?),
        "ms" | "h" | "d" => Value::Sample(number()?, 1.0 / rate),
        "s" => Value::Set(value.to_string()),
        other => return Err(LineError::BadType(other.into())),
    };
    let (name, mut more) = airflow::split(&clean(name, true));
    labels.append(&mut more);
    Ok(Line {
        name,
        labels,
        value,
    })
}

/// `[jobs.statsd]`: where the listener binds and what it keeps.
#[derive(Debug, Clone)]
pub struct StatsdSettings {
    pub listen: String,
    pub limits: StatsdLimits,
}

/// Bounds on what the aggregator keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsdLimits {
    /// Label sets one metric name may have.
    pub series_per_metric: usize,
    /// Series all StatsD metrics together may make (a timer makes six).
    pub max_series: usize,
}

impl Default for StatsdLimits {
    fn default() -> Self {
        Self {
            series_per_metric: 1000,
            max_series: 10_000,
        }
    }
}

/// Timer values and set members held between two ticks, all series together.
pub const MAX_BUFFERED_VALUES: usize = 200_000;

/// A series being aggregated.
#[derive(Debug, Clone, PartialEq)]
enum Acc {
    Counter(f64),
    Gauge(Option<f64>),
    Samples {
        values: Vec<f64>,
        count: f64,
        sum: f64,
        total_count: f64,
        total_sum: f64,
    },
    Set(HashSet<String>),
}

/// What the listener has gathered since the last tick.
#[derive(Debug, Default)]
pub struct Aggregator {
    limits: StatsdLimits,
    series: HashMap<(String, Labels), Acc>,
    /// Series the aggregator makes (a timer counts six).
    made: usize,
    /// Timer values and set members held since the last tick.
    buffered: usize,
    per_metric: HashMap<String, usize>,
    warned: HashSet<String>,
    pub malformed: u64,
    pub dropped: u64,
    pub lines: u64,
    /// Airflow DAG runs seen since the last tick, as job finish events.
    job_runs: Vec<JobEvent>,
    runs_seen: u64,
}

/// Receive buffer asked for (the kernel may give less).
const RECV_BUFFER: usize = 8 << 20;

/// Most DAG runs held between two ticks; past it they are dropped and counted.
const MAX_PENDING_RUNS: usize = 10_000;

impl Aggregator {
    pub fn new(limits: StatsdLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Takes one packet: every line that parses, each bad one counted.
    pub fn packet(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
            self.lines += 1;
            match parse_line(line) {
                Ok(l) => self.add(l),
                Err(e) => {
                    self.malformed += 1;
                    if self.malformed.is_power_of_two() {
                        warn!(line = %line, error = %e, total = self.malformed, "malformed statsd line dropped");
                    }
                }
            }
        }
    }

    fn add(&mut self, line: Line) {
        if line.name.starts_with("airflow.dagrun.duration") {
            if self.job_runs.len() >= MAX_PENDING_RUNS {
                self.dropped += 1;
            } else if let Value::Sample(ms, _) = line.value
                && let Some(run) =
                    airflow::dag_run(&line.name, &line.labels, ms, &mut self.runs_seen)
            {
                self.job_runs.push(run);
            }
        }
        let Ok(labels) = Labels::new(line.labels) else {
            self.malformed += 1;
            return;
        };
        let k = (line.name, labels);
        if !self.series.contains_key(&k) {
            let n = self.per_metric.get(&k.0).copied().unwrap_or(0);
            let makes = match line.value {
                Value::Sample(..) => 6,
                _ => 1,
            };
            if n >= self.limits.series_per_metric {
                self.dropped += 1;
                if self.warned.insert(k.0.clone()) {
                    warn!(metric = %k.0, limit = self.limits.series_per_metric, "statsd metric hit its cardinality limit (jobs.statsd.series_per_metric); new label sets are dropped");
                }
                return;
            }
            if self.made + makes > self.limits.max_series {
                self.dropped += 1;
                if self.warned.insert(String::new()) {
                    warn!(metric = %k.0, limit = self.limits.max_series, "statsd metrics hit the limit on series (jobs.statsd.max_series); new metrics and label sets are dropped");
                }
                return;
            }
            self.made += makes;
            *self.per_metric.entry(k.0.clone()).or_default() += 1;
        }
        let acc = self.series.entry(k).or_insert_with(|| match &line.value {
            Value::Counter(_) => Acc::Counter(0.0),
            Value::Gauge(_) | Value::GaugeDelta(_) => Acc::Gauge(None),
            Value::Sample(..) => Acc::Samples {
                values: Vec::new(),
                count: 0.0,
                sum: 0.0,
                total_count: 0.0,
                total_sum: 0.0,
            },
            Value::Set(_) => Acc::Set(HashSet::new()),
        });
        match (acc, line.value) {
            (Acc::Counter(c), Value::Counter(v)) => *c += v,
            (Acc::Gauge(g), Value::Gauge(v)) => *g = Some(v),
            (Acc::Gauge(g), Value::GaugeDelta(d)) => *g = Some(g.unwrap_or(0.0) + d),
            (
                Acc::Samples {
                    values, count, sum, ..
                },
                Value::Sample(v, n),
            ) => {
                if self.buffered < MAX_BUFFERED_VALUES {
                    self.buffered += 1;
                    values.push(v);
                }
                *count += n;
                *sum += v * n;
            }
            (Acc::Set(s), Value::Set(v)) => {
                if self.buffered < MAX_BUFFERED_VALUES && s.insert(v) {
                    self.buffered += 1;
                }
            }
            // The same name sent with another type: keep the first type.
            _ => self.malformed += 1,
        }
    }
}

/// Series ids of one StatsD series, by what it reports.
#[derive(Debug, Clone)]
enum Ids {
    One(LocalId),
    Samples([LocalId; 6]),
}

/// The collector side: each tick, turns what the listener gathered into values.
pub struct StatsdCollector {
    shared: Arc<Mutex<Aggregator>>,
    ids: HashMap<(String, Labels), Ids>,
    health: Option<[LocalId; 4]>,
    host: String,
    start_ms: i64,
    counts: Arc<StatsdCounts>,
    /// The socket's inode, to find its line in `/proc/self/net/udp`.
    inode: Option<u64>,
    job_sink: Option<JobSink>,
}

/// What the listener took in and what it had to let go of, since start.
#[derive(Debug, Default)]
pub struct StatsdCounts {
    pub packets: AtomicU64,
    pub malformed_lines: AtomicU64,
    /// Lines of new label sets refused by the cardinality limits.
    pub dropped_cardinality: AtomicU64,
    /// Packets the kernel dropped: the receive buffer was full.
    pub dropped_receive_buffer: AtomicU64,
}

/// The kernel's drop counter of the UDP socket with this inode.
fn socket_drops(inode: u64) -> Option<u64> {
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| {
            table.lines().skip(1).find_map(|line| {
                // sl local rem st queues tr retrnsmt uid timeout inode ref pointer drops
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols.get(9)?.parse::<u64>().ok()? == inode)
                    .then(|| cols.get(12)?.parse().ok())
                    .flatten()
            })
        })
}

/// Where Airflow DAG runs go: the agent's job book.
pub type JobSink = Box<dyn FnMut(&JobEvent) + Send>;

impl StatsdCollector {
    /// The counters the status reports, updated every tick.
    pub fn counts(&self) -> Arc<StatsdCounts> {
        self.counts.clone()
    }

    /// Hands every Airflow DAG run to `sink`, once per tick.
    pub fn with_job_sink(mut self, sink: JobSink) -> Self {
        self.job_sink = Some(sink);
        self
    }
}

impl std::fmt::Debug for StatsdCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdCollector")
            .field("series", &self.ids.len())
            .finish_non_exhaustive()
    }
}

/// Binds the UDP socket and starts the listener thread; the collector is
/// what the runner ticks.
pub fn listen(
    addr: &str,
    limits: StatsdLimits,
    host: &str,
    start_ms: i64,
) -> std::io::Result<(StatsdCollector, std::net::SocketAddr)> {
    let socket = UdpSocket::bind(addr)?;
    let local = socket.local_addr()?;
    // Bursts must not overflow the default ~200 KiB receive buffer while the
    // collector holds the aggregator; the kernel caps this at net.core.rmem_max.
    if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, RECV_BUFFER) {
        warn!(error = %e, "cannot enlarge the statsd socket's receive buffer");
    }
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let inode = {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .map(|m| m.ino())
            .ok()
    };
    let shared = Arc::new(Mutex::new(Aggregator::new(limits)));
    let counts = Arc::new(StatsdCounts::default());
    let (agg, count) = (Arc::downgrade(&shared), counts.clone());
    std::thread::Builder::new()
        .name("statsd".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        count.packets.fetch_add(1, Ordering::Relaxed);
                        let Some(agg) = agg.upgrade() else { return };
                        agg.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .packet(&buf[..n]);
                    }
                    // A timeout lets the thread notice that the collector is gone.
                    Err(_) if agg.strong_count() == 0 => return,
                    Err(_) => {}
                }
            }
        })?;
    Ok((
        StatsdCollector {
            shared,
            ids: HashMap::new(),
            health: None,
            host: host.to_string(),
            start_ms,
            counts,
            inode,
            job_sink: None,
        },
        local,
    ))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

impl Collector for StatsdCollector {
    fn name(&self) -> &'static str {
        "statsd"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        let runs = std::mem::take(
            &mut self
                .shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .job_runs,
        );
        if let Some(sink) = self.job_sink.as_mut() {
            runs.iter().for_each(sink);
        }
        let mut agg = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let start = self.start_ms;
        for (k, acc) in agg.series.iter_mut() {
            let ids = self.ids.entry(k.clone()).or_insert_with(|| {
                let key_with = |stat: Option<&str>| {
                    let mut pairs: Vec<(String, String)> =
                        k.1.iter()
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .collect();
                    if let Some(s) = stat {
                        pairs.push(("stat".into(), s.into()));
                    }
                    SeriesKey::new(k.0.clone(), Labels::new(pairs).unwrap_or_default())
                        .unwrap_or_else(|_| key("statsd.invalid_name", &[]))
                };
                match acc {
                    Acc::Counter(_) => {
                        Ids::One(out.declare(SeriesDesc::counter(key_with(None), "1", start)))
                    }
                    Acc::Gauge(_) => Ids::One(out.declare(SeriesDesc::gauge(key_with(None), "1"))),
                    Acc::Set(_) => {
                        Ids::One(out.declare(SeriesDesc::gauge(key_with(Some("unique")), "1")))
                    }
                    Acc::Samples { .. } => Ids::Samples([
                        out.declare(SeriesDesc::gauge(key_with(Some("min")), "1")),
                        out.declare(SeriesDesc::gauge(key_with(Some("max")), "1")),
                        out.declare(SeriesDesc::gauge(key_with(Some("avg")), "1")),
                        out.declare(SeriesDesc::gauge(key_with(Some("p95")), "1")),
                        out.declare(SeriesDesc::counter(key_with(Some("count")), "1", start)),
                        out.declare(SeriesDesc::counter(key_with(Some("sum")), "1", start)),
                    ]),
                }
            });
            match (acc, ids) {
                (Acc::Counter(c), Ids::One(id)) => out.emit(*id, *c),
                (Acc::Gauge(Some(g)), Ids::One(id)) => out.emit(*id, *g),
                (Acc::Set(s), Ids::One(id)) => {
                    out.emit(*id, s.len() as f64);
                    s.clear();
                }
                (
                    Acc::Samples {
                        values,
                        count,
                        sum,
                        total_count,
                        total_sum,
                    },
                    Ids::Samples(ids),
                ) => {
                    *total_count += *count;
                    *total_sum += *sum;
                    if !values.is_empty() {
                        values.sort_by(f64::total_cmp);
                        out.emit(ids[0], values[0]);
                        out.emit(ids[1], values[values.len() - 1]);
                        out.emit(ids[2], *sum / *count);
                        out.emit(ids[3], quantile(values, 0.95));
                    }
                    out.emit(ids[4], *total_count);
                    out.emit(ids[5], *total_sum);
                    values.clear();
                    (*count, *sum) = (0.0, 0.0);
                }
                _ => {}
            }
        }
        let host = self.host.as_str();
        let health = *self.health.get_or_insert_with(|| {
            [
                out.declare(SeriesDesc::counter(
                    key("ward.statsd.packets", &[("host.name", host)]),
                    "{packet}",
                    start,
                )),
                out.declare(SeriesDesc::counter(
                    key("ward.statsd.malformed", &[("host.name", host)]),
                    "{line}",
                    start,
                )),
                out.declare(SeriesDesc::counter(
                    key(
                        "ward.statsd.dropped",
                        &[("host.name", host), ("reason", "cardinality")],
                    ),
                    "{line}",
                    start,
                )),
                out.declare(SeriesDesc::counter(
                    key("ward.statsd.packets.dropped", &[("host.name", host)]),
                    "{packet}",
                    start,
                )),
            ]
        });
        agg.buffered = 0;
        let c = &self.counts;
        c.malformed_lines.store(agg.malformed, Ordering::Relaxed);
        c.dropped_cardinality.store(agg.dropped, Ordering::Relaxed);
        if let Some(drops) = self.inode.and_then(socket_drops) {
            c.dropped_receive_buffer.store(drops, Ordering::Relaxed);
        }
        out.emit(health[0], c.packets.load(Ordering::Relaxed) as f64);
        out.emit(health[1], agg.malformed as f64);
        out.emit(health[2], agg.dropped as f64);
        out.emit(
            health[3],
            c.dropped_receive_buffer.load(Ordering::Relaxed) as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::Ticks;

    #[test]
    fn statsd_and_dogstatsd_lines() {
        assert_eq!(
            parse_line("page.views:3|c|@0.5|#env:prod,canary").unwrap(),
            Line {
                name: "page.views".into(),
                labels: vec![
                    ("env".into(), "prod".into()),
                    ("canary".into(), "true".into())
                ],
                value: Value::Counter(6.0)
            }
        );
        assert_eq!(
            parse_line("queue:-2|g").unwrap().value,
            Value::GaugeDelta(-2.0)
        );
        assert_eq!(parse_line("queue:7|g").unwrap().value, Value::Gauge(7.0));
        assert_eq!(
            parse_line("latency:12.5|ms|@0.1").unwrap().value,
            Value::Sample(12.5, 10.0)
        );
        assert_eq!(
            parse_line("users:alice|s").unwrap().value,
            Value::Set("alice".into())
        );
        assert_eq!(parse_line("bad name!:1|c").unwrap().name, "bad_name_");
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, err) in [
            ("novalue", LineError::NoValue),
            ("x:1", LineError::NoType),
            (":1|c", LineError::EmptyName),
            ("x:abc|c", LineError::BadValue("abc".into())),
            ("x:1|q", LineError::BadType("q".into())),
            ("x:1|c|@2", LineError::BadRate("2".into())),
            ("x:NaN|g", LineError::BadValue("NaN".into())),
        ] {
            assert_eq!(parse_line(line), Err(err), "{line}");
        }
    }

    #[test]
    fn airflow_dag_runs_become_job_runs_in_both_dialects() {
        let mut agg = Aggregator::new(StatsdLimits::default());
        agg.packet(b"airflow.dagrun.duration.success.etl:4210|ms\nairflow.dagrun.duration.failed:1500|ms|#dag_id:hourly\nairflow.dag.etl.load.duration:10|ms\nairflow.dagrun.duration.failed|ms");
        let runs: Vec<(String, Option<f64>, Option<bool>)> = agg
            .job_runs
            .iter()
            .map(|r| (r.job.clone(), r.duration_s, r.success))
            .collect();
        assert_eq!(
            runs,
            [
                ("etl".to_string(), Some(4.21), Some(true)),
                ("hourly".to_string(), Some(1.5), Some(false)),
            ]
        );
        assert_ne!(agg.job_runs[0].run, agg.job_runs[1].run);
        assert_eq!(agg.malformed, 1);
    }

    #[test]
    fn a_tick_aggregates_and_bad_lines_and_floods_are_counted() {
        let (mut c, _) = listen(
            "127.0.0.1:0",
            StatsdLimits {
                series_per_metric: 3,
                max_series: 100,
            },
            "h",
            0,
        )
        .unwrap();
        {
            let mut agg = c.shared.lock().unwrap();
            agg.packet(b"jobs.run:1|c\njobs.run:1|c\nqueue:5|g\nqueue:+2|g\ngarbage\nlat:10|ms\nlat:20|ms\nlat:30|ms\nusers:a|s\nusers:b|s\nusers:a|s");
            for i in 0..10 {
                agg.packet(format!("tagged:1|c|#shard:{i}").as_bytes());
            }
        }
        let mut t = Ticks::default();
        let v = t.tick(&mut c, 1000);
        assert_eq!(v["jobs.run"], 2.0);
        assert_eq!(v["queue"], 7.0);
        assert_eq!(v[r#"lat{stat="p95"}"#], 30.0);
        assert_eq!(v[r#"lat{stat="avg"}"#], 20.0);
        assert_eq!(v[r#"lat{stat="count"}"#], 3.0);
        assert_eq!(v[r#"users{stat="unique"}"#], 2.0);
        assert_eq!(v[r#"ward.statsd.malformed{host.name="h"}"#], 1.0);
        assert_eq!(
            v.keys().filter(|k| k.starts_with("tagged")).count(),
            3,
            "the cardinality limit holds"
        );
        assert_eq!(
            v[r#"ward.statsd.dropped{host.name="h",reason="cardinality"}"#],
            7.0
        );
        assert_eq!(v[r#"ward.statsd.packets.dropped{host.name="h"}"#], 0.0);
        assert_eq!(c.counts().dropped_cardinality.load(Ordering::Relaxed), 7);
        // Counters stay cumulative; timers' tick figures reset, their count does not.
        c.shared.lock().unwrap().packet(b"jobs.run:3|c\nlat:5|ms");
        let v = t.tick(&mut c, 2000);
        assert_eq!(v["jobs.run"], 5.0);
        assert_eq!(v[r#"lat{stat="max"}"#], 5.0);
        assert_eq!(v[r#"lat{stat="count"}"#], 4.0);
    }

    #[test]
    fn a_flood_stops_at_max_series_a_timer_counting_six_and_at_the_buffer_bound() {
        let mut agg = Aggregator::new(StatsdLimits {
            series_per_metric: 1000,
            max_series: 20,
        });
        for i in 0..10 {
            agg.packet(format!("t{i}:1|ms").as_bytes());
        }
        for i in 0..10 {
            agg.packet(format!("c{i}:1|c").as_bytes());
        }
        // Three timers (18 series), then room for two counters only.
        assert_eq!((agg.series.len(), agg.made, agg.dropped), (5, 20, 15));

        let mut agg = Aggregator::new(StatsdLimits::default());
        let lines = "lat:5|ms\n".repeat(1000);
        for _ in 0..MAX_BUFFERED_VALUES / 1000 + 5 {
            agg.packet(lines.as_bytes());
        }
        let Some(Acc::Samples { values, count, .. }) =
            agg.series.get(&("lat".to_string(), Labels::default()))
        else {
            panic!("no timer")
        };
        assert_eq!(values.len(), MAX_BUFFERED_VALUES, "values held are bounded");
        assert_eq!(
            *count as usize,
            MAX_BUFFERED_VALUES + 5000,
            "the count is whole"
        );
    }

    #[test]
    fn packets_the_kernel_drops_are_read_from_the_sockets_own_counter() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 4096).unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .unwrap()
            .ino();
        assert_eq!(socket_drops(inode), Some(0));
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        for _ in 0..500 {
            sender.send_to(&[b'x'; 1000], to).unwrap();
        }
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2000];
        let mut received = 0;
        while socket.recv(&mut buf).is_ok() {
            received += 1;
        }
        let dropped = socket_drops(inode).unwrap();
        assert!(dropped > 0, "a 4 KiB buffer took {received} of 500 packets");
        assert_eq!(received + dropped, 500, "every packet received or counted");
    }
}
