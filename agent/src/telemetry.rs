//! The agent's own series (`ward.*`): what it says of itself, next to the
//! host's series, for the overview, the exporter and detection alike.
//!
//! | series | kind, unit | written by |
//! | --- | --- | --- |
//! | `ward.agent.memory.rss`, `ward.agent.cpu.time`, `ward.store.size`, `ward.store.samples` | gauge By, counter s, gauge By, counter | the agent collector (`collect/agent.rs`), every interval |
//! | `ward.exporter.lag`, `.backlog`, `.points.sent`, `.logs.sent`, `.failures` | gauges s and points, counters | the exporter, after each export round |
//! | `ward.jobs.running`, `ward.jobs.failures`, `ward.incidents.active` | gauge, counter, gauge | [`BookSeries`], every health tick |
//! | `ward.anomaly.rate` | gauge, 1 | [`anomaly_rate_writer`], by the detection thread |
//!
//! Owns: the series of the books and of detection. Must not: score them
//! (detection leaves `ward.*` series out, so the agent never flags itself).

use tracing::warn;
use ward_shared::{Sample, SeriesDesc, SeriesId, TimestampMs};

use crate::collect::key;
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
