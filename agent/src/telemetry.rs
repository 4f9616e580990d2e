//! The agent's own series (`ward.*`): what it says of itself, next to the
//! host's series, for the overview, the exporter and detection alike.
//!
//! | series | kind, unit | written by |
//! | --- | --- | --- |
//! | `ward.agent.memory.rss`, `ward.agent.cpu.time`, `ward.store.size`, `ward.store.samples` | gauge By, counter s, gauge By, counter | the agent collector (`collect/agent.rs`), every interval, as every collector's values are |
//! | `ward.collector.duration`, `ward.collector.errors` | gauge, counter | the collectors' runner, for each collector |
//! | `ward.statsd.*` | counters | the StatsD collector, of its own packets and drops |
//! | `ward.exporter.lag`, `.backlog`, `.points.sent`, `.logs.sent`, `.failures` | gauges s and points, counters | [`exporter_series`], when the exporter reports (after each round) |
//! | `ward.jobs.running`, `ward.jobs.failures`, `ward.incidents.active` | gauge, counter, gauge | [`BookSeries`], every health tick |
//! | `ward.anomaly.rate` | gauge, 1 | [`anomaly_rate_writer`], by the detection thread |
//!
//! Owns: the series of the books and of detection. Must not: score them
//! (detection leaves `ward.*` series out, so the agent never flags itself).

use std::sync::atomic::Ordering;

use tracing::warn;
use ward_shared::{Sample, SeriesDesc, SeriesId, TimestampMs};

use crate::collect::key;
use crate::export::ExportStats;
use crate::incidents::SharedIncidents;
use crate::jobs::SharedJobs;
use crate::store::{SharedStore, StoreError};

/// `ward.jobs.running`, `ward.jobs.failures` and `ward.incidents.active`:
/// the job and incident books as series, registered at the first write.
#[derive(Debug)]
pub struct BookSeries {
    host: String,
    started_ms: TimestampMs,
    ids: Option<[SeriesId; 3]>,
}

impl BookSeries {
    pub fn new(host: &str, started_ms: TimestampMs) -> Self {
        Self {
            host: host.to_string(),
            started_ms,
            ids: None,
        }
    }

    /// Writes the books' counts at `now`.
    pub fn write(
        &mut self,
        now: TimestampMs,
        store: &SharedStore,
        jobs: &SharedJobs,
        incidents: &SharedIncidents,
    ) -> Result<(), StoreError> {
        // One lock at a time: the books are taken jobs first elsewhere.
        let (running, failures) = {
            let book = jobs.lock();
            (book.counts().1 as f64, book.failures_total() as f64)
        };
        let active = incidents.lock().active_count() as f64;
        let mut st = store.lock();
        let ids = match self.ids {
            Some(ids) => ids,
            None => {
                let labels = [("host.name", self.host.as_str())];
                let ids = [
                    st.register(SeriesDesc::gauge(
                        key("ward.jobs.running", &labels),
                        "{run}",
                    ))?,
                    st.register(SeriesDesc::counter(
                        key("ward.jobs.failures", &labels),
                        "{run}",
                        self.started_ms,
                    ))?,
                    st.register(SeriesDesc::gauge(
                        key("ward.incidents.active", &labels),
                        "{incident}",
                    ))?,
                ];
                self.ids = Some(ids);
                ids
            }
        };
        let values = [running, failures, active];
        let samples: [Sample; 3] = std::array::from_fn(|i| Sample {
            series: ids[i],
            ts: now,
            value: values[i],
        });
        st.append(&samples).map(|_| ())
    }
}

/// `ward.exporter.*`: the OTLP exporter's lag, backlog, points and records
/// sent and failures, written whenever the exporter reports (after each
/// round and each failed try), registered at the first report.
pub fn exporter_series(store: SharedStore, host: &str) -> crate::export::HealthSink {
    let host = host.to_string();
    let mut ids: Option<[SeriesId; 5]> = None;
    Box::new(move |now, stats: &ExportStats| {
        let mut st = store.lock();
        let ids = match ids {
            Some(ids) => ids,
            None => {
                let labels = [("host.name", host.as_str()), ("exporter", "otlp")];
                let key = |name: &str| key(name, &labels);
                let started = now;
                let descs = [
                    SeriesDesc::gauge(key("ward.exporter.lag"), "s"),
                    SeriesDesc::gauge(key("ward.exporter.backlog"), "{point}"),
                    SeriesDesc::counter(key("ward.exporter.points.sent"), "{point}", started),
                    SeriesDesc::counter(key("ward.exporter.logs.sent"), "{record}", started),
                    SeriesDesc::counter(key("ward.exporter.failures"), "{request}", started),
                ];
                let mut new = [SeriesId(0); 5];
                for (slot, desc) in new.iter_mut().zip(descs) {
                    match st.register(desc) {
                        Ok(id) => *slot = id,
                        Err(e) => {
                            warn!(error = %e, "cannot register the exporter's series");
                            return;
                        }
                    }
                }
                *ids.insert(new)
            }
        };
        let values = [
            stats.lag_seconds(now),
            stats.backlog.load(Ordering::Relaxed) as f64,
            stats.points_sent.load(Ordering::Relaxed) as f64,
            stats.logs_sent.load(Ordering::Relaxed) as f64,
            stats.failures.load(Ordering::Relaxed) as f64,
        ];
        let samples: [Sample; 5] = std::array::from_fn(|i| Sample {
            series: ids[i],
            ts: now,
            value: values[i],
        });
        if let Err(e) = st.append(&samples) {
            warn!(error = %e, "cannot store the exporter's series");
        }
    })
}

/// Where the detection thread writes the host's anomaly rate
/// (`ward.anomaly.rate`); a failed write is logged and the next one tried.
pub fn anomaly_rate_writer(
    store: SharedStore,
    host: &str,
) -> impl FnMut(TimestampMs, f64) + Send + 'static {
    let desc = SeriesDesc::gauge(key("ward.anomaly.rate", &[("host.name", host)]), "1");
    let mut id = None;
    move |ts, value| {
        let mut s = store.lock();
        if id.is_none() {
            id = s.register(desc.clone()).ok();
        }
        if let Some(series) = id
            && let Err(e) = s.append(&[Sample { series, ts, value }])
        {
            warn!(error = %e, "could not store the anomaly rate");
        }
    }
}
