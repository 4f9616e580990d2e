//! Export: the store's series to an OTLP backend, incidents and job runs as
//! OTLP log records, and the Prometheus text exposition.
//!
//! The store is the queue. The OTLP exporter keeps two persisted cursors:
//! the timestamp up to which metrics went out, and the outbox sequence
//! number up to which events did. Each pass reads what lies after the
//! cursor, in time order and in batches of at most
//! `export.otlp.max_batch_points` points, sends it, and only then moves the
//! cursor. So:
//! - collection never waits on the backend: the exporter only reads;
//! - while the backend is down or slow, nothing is dropped: the cursor stays
//!   and the data waits in the store (as long as the raw retention);
//! - when it is back, the backlog goes out oldest first with its original
//!   timestamps; a batch sent but not acknowledged when the agent stopped
//!   goes again (at least once).
//!
//! Retries follow the OTLP specification: gRPC UNAVAILABLE, CANCELLED,
//! DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS, and RESOURCE_EXHAUSTED
//! when the server sends RetryInfo; HTTP 429, 502, 503, 504; connection
//! failures and timeouts. The delay doubles from 1 s to 30 s with jitter,
//! or is what Retry-After / RetryInfo asks. Other answers are permanent: the
//! batch is dropped, counted and logged, and the exporter goes on. Points a
//! backend rejects in a partial success are counted and logged.
//!
//! Samples are read a little behind the clock (two collector intervals, at
//! least [`MIN_SETTLE_MS`]), so that a tick still being written, or the
//! anomaly rate the detection thread adds a moment later, is not cut off.

pub mod otlp;
pub mod prometheus;
mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use ward_shared::time::now_ms;
use ward_shared::{Sample, SeriesDesc, SeriesId, TimestampMs};

pub use crate::store::Outgoing;
use crate::store::{Collection, SharedStore, Store, StoreError};
use send::{Outcome, Payload, Sender};

/// How far behind the clock samples are read, at least.
pub const MIN_SETTLE_MS: i64 = 2_000;
/// Most events in one logs request.
const MAX_BATCH_EVENTS: usize = 512;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
const CURSOR_METRICS: &[u8] = b"otlp.metrics";
const CURSOR_LOGS: &[u8] = b"otlp.logs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    /// Each protocol and how the config and the status write it.
    pub const WORDS: [(&'static str, Protocol); 2] = [
        ("grpc", Protocol::Grpc),
        ("http/protobuf", Protocol::HttpProtobuf),
    ];

    pub fn word(self) -> &'static str {
        match self {
            Protocol::Grpc => Self::WORDS[0].0,
            Protocol::HttpProtobuf => Self::WORDS[1].0,
        }
    }
}

/// `[export.otlp]`, checked.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    pub endpoint: hyper::Uri,
    pub protocol: Protocol,
    /// Sent with every request; values may be secrets and are never logged.
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub interval: Duration,
    pub max_batch_points: usize,
    pub logs: bool,
    pub resource_attributes: Vec<(String, String)>,
    pub host: String,
    /// The collectors' interval: how dense the series are.
    pub sample_interval: Duration,
}

/// The exporter's health, for the status and its own series.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub points_sent: AtomicU64,
    pub logs_sent: AtomicU64,
    pub requests: AtomicU64,
    /// Attempts that failed (each retry counts).
    pub failures: AtomicU64,
    /// Points the backend refused in a partial success.
    pub points_rejected: AtomicU64,
    /// Points and events dropped after a permanent refusal.
    pub dropped: AtomicU64,
    /// Metrics cursor: every sample up to it went out.
    pub cursor_ms: AtomicI64,
    /// Samples waiting after the cursor, as of the last read.
    pub backlog: AtomicU64,
    pub retrying: AtomicBool,
    pub last_error: Mutex<String>,
}

impl ExportStats {
    fn set_error(&self, e: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = e.to_string();
        }
    }

    /// Seconds between the clock and the cursor.
    pub fn lag_seconds(&self, now: TimestampMs) -> f64 {
        let cursor = self.cursor_ms.load(Ordering::Relaxed);
        if cursor == 0 {
            return 0.0;
        }
        ((now - cursor) as f64 / 1000.0).max(0.0)
    }

    pub fn health(&self, settings: &ExportSettings) -> ward_shared::status::ExporterHealth {
        ward_shared::status::ExporterHealth {
            endpoint: endpoint_for_humans(&settings.endpoint),
            protocol: settings.protocol.word().to_string(),
            lag_seconds: self.lag_seconds(now_ms()),
            backlog_points: self.backlog.load(Ordering::Relaxed),
            points_sent: self.points_sent.load(Ordering::Relaxed),
            logs_sent: self.logs_sent.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            points_rejected: self.points_rejected.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default(),
        }
    }
}

/// Scheme, host and port: never a path or query, which may hold a key.
pub fn endpoint_for_humans(uri: &hyper::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

/// Where the exporter's health goes after each round: the agent writes it
/// as its own series (`crate::telemetry::exporter_series`).
pub type HealthSink = Box<dyn FnMut(TimestampMs, &ExportStats) + Send>;

/// Starts the exporter on the runtime; it runs until `stop`.
pub fn start(
    settings: ExportSettings,
    store: SharedStore,
    stop: CancellationToken,
    health: HealthSink,
) -> Result<(tokio::task::JoinHandle<()>, Arc<ExportStats>), String> {
    let sender = Sender::new(&settings)?;
    let stats = Arc::new(ExportStats::default());
    let task = tokio::spawn(
        Exporter {
            resource: otlp::resource(&settings),
            settings,
            store,
            sender,
            stats: stats.clone(),
            starts: HashMap::new(),
            health,
            stop,
        }
        .run(),
    );
    Ok((task, stats))
}

/// The OTLP exporter's state.
struct Exporter {
    settings: ExportSettings,
    store: SharedStore,
    sender: Sender,
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    stats: Arc<ExportStats>,
    /// Counters' start times and last values, for cumulative sums.
    starts: HashMap<SeriesId, otlp::CounterStart>,
    health: HealthSink,
    stop: CancellationToken,
}

fn read_cursor<T: serde::de::DeserializeOwned>(store: &Store, name: &[u8]) -> Option<T> {
    let bytes = store.get_doc(Collection::Cursors, name).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn write_cursor<T: Serialize>(store: &mut Store, name: &[u8], value: &T) -> Result<(), StoreError> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_doc(Collection::Cursors, name, &json)
}

/// How a batch went, once retries are over.
enum Delivery {
    Sent,
    Dropped,
    Stopped,
}

impl Exporter {
    fn settle_ms(&self) -> i64 {
        (2 * self.settings.sample_interval.as_millis() as i64).max(MIN_SETTLE_MS)
    }

    async fn run(mut self) {
        let (mut cursor, mut log_cursor) = {
            let mut st = self.store.lock();
            let cursor: TimestampMs = read_cursor(&st, CURSOR_METRICS)
                // First start: from now on, not the whole history.
                .unwrap_or_else(|| now_ms() - self.settle_ms());
            let log_cursor: u64 = read_cursor(&st, CURSOR_LOGS).unwrap_or(0);
            if self.settings.logs
                && let Err(e) = st.enable_outbox()
            {
                warn!(error = %e, "export outbox unavailable: incidents and job runs will not be exported");
            }
            (cursor, log_cursor)
        };
        self.stats.cursor_ms.store(cursor, Ordering::Relaxed);
        info!(
            endpoint = %endpoint_for_humans(&self.settings.endpoint),
            protocol = self.settings.protocol.word(),
            from = %ward_shared::time::utc(cursor),
            "otlp export on"
        );
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.metrics_pass(&mut cursor).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => warn!(error = %e, "export could not read the store"),
            }
            if self.settings.logs {
                match self.logs_pass(&mut log_cursor).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => warn!(error = %e, "export could not read the outbox"),
                }
            }
            self.write_health();
        }
    }

    /// Ships every sample after `cursor` up to the settle line as it stands
    /// when the pass begins; false once stopped. (A line that moved on with
    /// the clock kept the pass going for as long as each batch took a
    /// millisecond, reading every series' head each time: half a core on
    /// a busy machine.)
    async fn metrics_pass(&mut self, cursor: &mut TimestampMs) -> Result<bool, StoreError> {
        let until = now_ms() - self.settle_ms();
        loop {
            if *cursor >= until {
                self.stats.backlog.store(0, Ordering::Relaxed);
                return Ok(true);
            }
            let skipped_to = {
                let st = self.store.lock();
                st.oldest_raw()
                    .filter(|&oldest| oldest > *cursor + 1)
                    .map(|oldest| {
                        (
                            oldest,
                            st.raw_dropped_through().is_some_and(|d| d > *cursor),
                        )
                    })
            };
            if let Some((oldest, expired)) = skipped_to {
                // Nothing before `oldest`: retention took what was never
                // sent (say so), or there never was anything (a fresh store).
                if expired {
                    warn!(
                        from = %ward_shared::time::utc(*cursor),
                        to = %ward_shared::time::utc(oldest),
                        "samples expired from the store before they could be exported"
                    );
                }
                *cursor = oldest - 1;
            }
            let batch = self.read_batch(*cursor, until)?;
            self.stats
                .backlog
                .store(batch.backlog as u64, Ordering::Relaxed);
            let n = batch.points.len();
            if n > 0 {
                let request = otlp::metrics_request(
                    &self.resource,
                    &batch.points,
                    &batch.descs,
                    &mut self.starts,
                );
                match self.deliver(&Payload::Metrics(request)).await {
                    Delivery::Sent => {
                        self.stats
                            .points_sent
                            .fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Delivery::Dropped => {
                        self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Delivery::Stopped => return Ok(false),
                }
            }
            *cursor = batch.end;
            self.stats.cursor_ms.store(batch.end, Ordering::Relaxed);
            write_cursor(&mut self.store.lock(), CURSOR_METRICS, cursor)?;
        }
    }

    /// The samples after `after`, up to `until`, at most about one batch:
    /// cut at a timestamp so that a timestamp's samples go together.
    fn read_batch(&self, after: TimestampMs, until: TimestampMs) -> Result<Batch, StoreError> {
        let st = self.store.lock();
        let series = st.series().count().max(1);
        let every = (self.settings.sample_interval.as_millis() as i64).max(1);
        // A span that holds about one batch if every series has a sample
        // each interval; the cut below makes the bound exact.
        let span = (self.settings.max_batch_points as i64 * every / series as i64).max(every);
        let end = until.min(after.saturating_add(span));
        let mut points = Vec::new();
        let mut descs: HashMap<SeriesId, SeriesDesc> = HashMap::new();
        st.raw_between(after, end, |id, desc, ts, value| {
            descs.entry(id).or_insert_with(|| desc.clone());
            points.push(Sample {
                series: id,
                ts,
                value,
            });
        })?;
        drop(st);
        points.sort_by_key(|p| p.ts);
        let backlog = points.len() + ((until - end) / every) as usize * series;
        let mut end = end;
        if points.len() > self.settings.max_batch_points {
            let cut_ts = points[self.settings.max_batch_points].ts;
            let keep = points.partition_point(|p| p.ts < cut_ts);
            if keep > 0 {
                points.truncate(keep);
                end = cut_ts - 1;
            } else {
                // One timestamp holds more than a batch: it goes whole.
                let keep = points.partition_point(|p| p.ts <= cut_ts);
                points.truncate(keep);
                end = cut_ts;
            }
        }
        Ok(Batch {
            points,
            descs,
            end,
            backlog,
        })
    }

    /// Ships the outbox after `cursor`; false once stopped.
    async fn logs_pass(&mut self, cursor: &mut u64) -> Result<bool, StoreError> {
        loop {
            let events = self.store.lock().outbox_after(*cursor, MAX_BATCH_EVENTS)?;
            let Some(&(last, _)) = events.last() else {
                return Ok(true);
            };
            let mut records = Vec::with_capacity(events.len());
            for (seq, bytes) in &events {
                match serde_json::from_slice::<Outgoing>(bytes) {
                    Ok(event) => records.push(otlp::log_record(&self.settings.host, *seq, &event)),
                    Err(e) => warn!(seq, error = %e, "unreadable export event skipped"),
                }
            }
            let n = records.len() as u64;
            if n > 0 {
                let request = otlp::logs_request(&self.resource, records);
                match self.deliver(&Payload::Logs(request)).await {
                    Delivery::Sent => {
                        self.stats.logs_sent.fetch_add(n, Ordering::Relaxed);
                    }
                    Delivery::Dropped => {
                        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    }
                    Delivery::Stopped => return Ok(false),
                }
            }
            *cursor = last;
            let mut st = self.store.lock();
            write_cursor(&mut st, CURSOR_LOGS, cursor)?;
            st.trim_outbox(last)?;
        }
    }

    /// Sends one request until it is taken, refused for good, or the agent stops.
    async fn deliver(&mut self, payload: &Payload) -> Delivery {
        let mut delay = FIRST_RETRY;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return Delivery::Stopped,
                o = tokio::time::timeout(self.settings.timeout, self.sender.send(payload)) => o,
            };
            let wait = match outcome {
                Ok(Outcome::Taken { rejected, message }) => {
                    if rejected > 0 {
                        self.stats
                            .points_rejected
                            .fetch_add(rejected as u64, Ordering::Relaxed);
                        warn!(rejected, message = %message, "the backend rejected part of a batch");
                    }
                    if self.stats.retrying.swap(false, Ordering::Relaxed) {
                        info!("otlp backend reachable again; sending the backlog");
                    }
                    return Delivery::Sent;
                }
                Ok(Outcome::Refused(why)) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.stats.set_error(&why);
                    warn!(error = %why, "the backend refused a batch for good; it is dropped");
                    return Delivery::Dropped;
                }
                Ok(Outcome::Retry { after, why }) => {
                    self.note_failure(&why);
                    after
                }
                Err(_) => {
                    self.note_failure(&format!("no answer in {:?}", self.settings.timeout));
                    None
                }
            };
            self.write_health();
            let pause = wait.unwrap_or(delay) + crate::outbound::jitter(delay);
            tokio::select! {
                () = self.stop.cancelled() => return Delivery::Stopped,
                () = tokio::time::sleep(pause) => {}
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
    }

    fn note_failure(&self, why: &str) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.stats.set_error(why);
        if !self.stats.retrying.swap(true, Ordering::Relaxed) {
            warn!(error = %why, "otlp export failing; data waits in the store and is retried");
        }
    }

    /// The exporter's health as series (`ward.exporter.*`, see
    /// `crate::telemetry`), after every round and every failed try.
    fn write_health(&mut self) {
        (self.health)(now_ms(), &self.stats);
    }
}

struct Batch {
    points: Vec<Sample>,
    descs: HashMap<SeriesId, SeriesDesc>,
    /// The cursor once this batch is taken.
    end: TimestampMs,
    /// About how many samples wait, this batch included.
    backlog: usize,
}
