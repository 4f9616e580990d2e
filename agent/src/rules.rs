//! Static rules beside the models, from the config, raising the same
//! incidents (source `rule`):
//!
//! | key | raised when | cleared when |
//! | --- | --- | --- |
//! | `rule:filesystem-full:MOUNT` | at the rate of the last six hours, the filesystem fills within `rules.filesystem_full_within` and less than 40% of it is free (critical: within a sixth of that, and under 15% free) | neither holds; a critical one that eases goes back to a warning |
//! | `rule:gpu-hot:UUID` | a GPU is hotter than `rules.gpu_max_temperature` °C | it is 3 °C under the limit again |
//! | `rule:xid:UUID` | a GPU reports an XID error (critical) | at the next check without a new one; it resolves after the quiet period |
//!
//! A failed job is a rule too; it lives with the jobs (`job:NAME:failed`).
//!
//! The filesystem rule follows Prometheus' node-mixin: a linear fit over six
//! hours (no prediction from less than five and a half hours of data, so a
//! package install just after start predicts nothing), and only for a
//! filesystem already filling up in earnest.

use std::time::Duration;

use ward_shared::incident::{IncidentContext, IncidentSource, Severity, Signal};
use ward_shared::{SeriesId, TimestampMs};

use crate::collect::gpu::GpuTable;
use crate::incidents::{Conditions, Incidents, Raise};
use crate::store::SharedStore;
use crate::store::{Aggregation, Query, StoreError};

/// The span of free-space history the filesystem rule fits a line to.
const FIT_OVER_MS: i64 = 6 * 3_600_000;
/// The history it needs before it predicts: most of [`FIT_OVER_MS`].
const FIT_NEEDS_MS: i64 = FIT_OVER_MS - 30 * 60_000;
/// The step of that history: five-minute means.
const FIT_STEP_MS: i64 = 5 * 60_000;
/// A filesystem fills up in earnest under these shares of free space.
const WARNING_FREE: f64 = 0.40;
const CRITICAL_FREE: f64 = 0.15;

/// Which rules run, and their limits.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// Raise when a filesystem fills within this at the last six hours' rate
    /// (and is under 40% free; critical within a sixth of it and under 15%
    /// free); `None`: off.
    pub filesystem_full_within: Option<Duration>,
    /// Raise when a GPU is hotter than this (°C); `None`: off.
    pub gpu_max_temperature: Option<f64>,
    /// Raise on every XID error.
    pub xid_errors: bool,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            filesystem_full_within: Some(Duration::from_secs(24 * 3600)),
            gpu_max_temperature: Some(85.0),
            xid_errors: true,
        }
    }
}

/// The rules' memory between checks.
#[derive(Debug)]
pub struct Rules {
    settings: RuleSettings,
    /// Keys this module raised and has not cleared.
    active: Conditions,
    /// Newest XID time already raised.
    xid_seen: TimestampMs,
}

fn gib(b: f64) -> String {
    format!("{:.1} GiB", b / f64::from(1u32 << 30))
}

fn hours(h: f64) -> String {
    if h < 1.0 {
        format!("{:.0} min", h * 60.0)
    } else {
        format!("{h:.1} h")
    }
}

/// Slope of `points` (ms, value) by least squares, per hour.
fn slope_per_hour(points: &[(i64, f64)]) -> Option<f64> {
    if points.len() < 5 {
        return None;
    }
    let n = points.len() as f64;
    let t0 = points[0].0;
    let xs: Vec<f64> = points
        .iter()
        .map(|p| (p.0 - t0) as f64 / 3_600_000.0)
        .collect();
    let (mx, my) = (
        xs.iter().sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs
        .iter()
        .zip(points)
        .map(|(x, p)| (x - mx) * (p.1 - my))
        .sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

impl Rules {
    pub fn new(settings: RuleSettings) -> Self {
        Self {
            settings,
            active: Conditions::default(),
            xid_seen: 0,
        }
    }

    /// Runs every rule once.
    pub fn check(
        &mut self,
        now: TimestampMs,
        store: &SharedStore,
        gpus: &GpuTable,
        incidents: &mut Incidents,
    ) -> Result<(), StoreError> {
        if let Some(within) = self.settings.filesystem_full_within {
            self.filesystems(now, store, within, incidents)?;
        }
        let state = gpus.latest();
        if let Some(max) = self.settings.gpu_max_temperature {
            for d in &state.devices {
                let key = format!("rule:gpu-hot:{}", d.uuid);
                match d.temperature_c {
                    Some(t) if t > max => {
                        let r = Raise {
                            key,
                            title: format!(
                                "GPU {} ({}) at {t:.0} °C, over the {max:.0} °C limit",
                                d.name, d.uuid
                            ),
                            severity: Severity::Warning,
                            source: IncidentSource::Rule,
                            signals: vec![Signal {
                                what: format!("hw.gpu.temperature {}", d.uuid),
                                observed: t,
                                expected_low: None,
                                expected_high: Some(max),
                                unit: "Cel".into(),
                                contribution: 1.0,
                                model: format!("rule: rules.gpu_max_temperature = {max}"),
                            }],
                            context: IncidentContext {
                                gpus: vec![format!("{} {}", d.name, d.uuid)],
                                ..Default::default()
                            },
                        };
                        self.active.raise(incidents, now, r)?;
                    }
                    Some(t) if t < max - 3.0 => {
                        self.active
                            .clear(incidents, &key, &format!("{t:.0} °C"), now)?;
                    }
                    _ => {}
                }
            }
        }
        if self.settings.xid_errors {
            let fresh: Vec<_> = state
                .xid_history
                .iter()
                .filter(|x| x.ts > self.xid_seen)
                .cloned()
                .collect();
            let keys: Vec<String> = self
                .active
                .keys()
                .filter(|k| k.starts_with("rule:xid:"))
                .cloned()
                .collect();
            for key in keys {
                if !fresh.iter().any(|x| format!("rule:xid:{}", x.gpu) == key) {
                    self.active
                        .clear(incidents, &key, "no new XID error", now)?;
                }
            }
            for x in &fresh {
                self.xid_seen = self.xid_seen.max(x.ts);
                let r = Raise {
                    key: format!("rule:xid:{}", x.gpu),
                    title: format!("GPU {} reported XID {}: {}", x.gpu, x.code, x.description),
                    severity: Severity::Critical,
                    source: IncidentSource::Rule,
                    signals: vec![Signal {
                        what: format!("hw.gpu xid {}", x.gpu),
                        observed: x.code as f64,
                        expected_low: None,
                        expected_high: None,
                        unit: "{xid}".into(),
                        contribution: 1.0,
                        model: "rule: rules.xid_errors (any XID error)".into(),
                    }],
                    context: IncidentContext {
                        gpus: vec![x.gpu.clone()],
                        ..Default::default()
                    },
                };
                self.active.raise(incidents, now, r)?;
            }
        }
        Ok(())
    }

    fn filesystems(
        &mut self,
        now: TimestampMs,
        store: &SharedStore,
        within: Duration,
        incidents: &mut Incidents,
    ) -> Result<(), StoreError> {
        // Per mount: free bytes over the last six hours, five-minute means;
        // and the newest free and used bytes, for what is free now.
        type Mount = (String, Vec<(i64, f64)>, Option<(f64, f64)>);
        let mounts: Vec<Mount> = {
            let s = store.lock();
            let usage = |state: &str| -> Vec<(SeriesId, String)> {
                s.series()
                    .filter(|(_, d)| {
                        d.key.name == "system.filesystem.usage"
                            && d.key.labels.get("system.filesystem.state") == Some(state)
                    })
                    .filter_map(|(id, d)| {
                        Some((
                            id,
                            d.key
                                .labels
                                .get("system.filesystem.mountpoint")?
                                .to_string(),
                        ))
                    })
                    .collect()
            };
            let used = usage("used");
            let mut out = Vec::new();
            for (id, mount) in usage("free") {
                let q = Query {
                    series: id,
                    start: now - FIT_OVER_MS,
                    end: now,
                    step: Some(FIT_STEP_MS),
                    agg: Aggregation::Avg,
                };
                let points = s.query(&q)?.into_iter().map(|p| (p.ts, p.value)).collect();
                let newest = |series| -> Result<Option<f64>, StoreError> {
                    let q = Query {
                        series,
                        start: now - FIT_STEP_MS,
                        end: now,
                        step: None,
                        agg: Aggregation::Avg,
                    };
                    Ok(s.query(&q)?.last().map(|p| p.value))
                };
                let used_id = used.iter().find(|(_, m)| *m == mount).map(|(u, _)| *u);
                let now_bytes = match (newest(id)?, used_id) {
                    (Some(free), Some(u)) => newest(u)?.map(|used| (free, used)),
                    _ => None,
                };
                out.push((mount, points, now_bytes));
            }
            out
        };
        let limit_h = within.as_secs_f64() / 3600.0;
        for (mount, points, now_bytes) in mounts {
            let key = format!("rule:filesystem-full:{mount}");
            let (Some(&(first, _)), Some(&(last, mean_free))) = (points.first(), points.last())
            else {
                continue;
            };
            // Too little history to say where it is going: nothing changes.
            if last - first < FIT_NEEDS_MS {
                continue;
            }
            let Some(slope) = slope_per_hour(&points) else {
                continue;
            };
            // Without the used bytes the share is unknown: never "in earnest".
            let (free, share) = match now_bytes {
                Some((free, used)) => (free, free / (used + free).max(1.0)),
                None => (mean_free, 1.0),
            };
            let left_h = if slope < 0.0 {
                free / -slope
            } else {
                f64::INFINITY
            };
            let severity = if left_h <= limit_h / 6.0 && share < CRITICAL_FREE {
                Some(Severity::Critical)
            } else if left_h <= limit_h && share < WARNING_FREE {
                Some(Severity::Warning)
            } else {
                None
            };
            match severity {
                Some(severity) => {
                    let r = Raise {
                        key,
                        title: format!(
                            "filesystem {mount} full in about {} at the last 6 hours' rate ({} free, {:.0}% of it, falling {}/h)",
                            hours(left_h),
                            gib(free),
                            share * 100.0,
                            gib(-slope)
                        ),
                        severity,
                        source: IncidentSource::Rule,
                        signals: vec![Signal {
                            what: format!("system.filesystem.usage free {mount}"),
                            observed: left_h,
                            expected_low: Some(limit_h),
                            expected_high: None,
                            unit: "h".into(),
                            contribution: 1.0,
                            model: format!(
                                "rule: linear fit of free space over the last 6 h ({} points of 5 min); warning when full within rules.filesystem_full_within = {limit_h} h and under {:.0}% free, critical within {} h and under {:.0}% free",
                                points.len(),
                                WARNING_FREE * 100.0,
                                limit_h / 6.0,
                                CRITICAL_FREE * 100.0
                            ),
                        }],
                        context: IncidentContext::default(),
                    };
                    self.active.raise(incidents, now, r)?;
                }
                None => {
                    self.active.clear(
                        incidents,
                        &key,
                        &format!(
                            "full in {} at the current rate, {:.0}% free",
                            hours(left_h),
                            share * 100.0
                        ),
                        now,
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::key;
    use crate::store::{Store, StoreSettings};
    use ward_shared::api::{GpuReading, XidEvent};
    use ward_shared::incident::IncidentState;
    use ward_shared::{Sample, SeriesDesc};

    const GIB: f64 = 1073741824.0;
    const HOUR: i64 = 3_600_000;

    /// A mount: its path, when its samples start, and the GiB free so
    /// many hours after that.
    type Fill<'a> = (&'a str, i64, &'a dyn Fn(f64) -> f64);

    /// 100 GiB filesystems, a sample a minute up to `end`, written in time
    /// order as the collector writes them (the store takes no sample older
    /// than a window it has sealed).
    fn fill(store: &SharedStore, end: i64, mounts: &[Fill]) {
        let usage = |mount: &str, state: &str| {
            key(
                "system.filesystem.usage",
                &[
                    ("system.device", "/dev/sda1"),
                    ("system.filesystem.mountpoint", mount),
                    ("system.filesystem.state", state),
                    ("system.filesystem.type", "ext4"),
                ],
            )
        };
        let mut s = store.lock();
        let ids: Vec<_> = mounts
            .iter()
            .map(|(mount, _, _)| {
                let free = s.register(SeriesDesc::gauge(usage(mount, "free"), "By"));
                let used = s.register(SeriesDesc::gauge(usage(mount, "used"), "By"));
                (free.unwrap(), used.unwrap())
            })
            .collect();
        let first = mounts.iter().map(|m| m.1).min().unwrap();
        let mut samples = Vec::new();
        for ts in (first..=end).step_by(60_000) {
            for ((_, start, free), (free_id, used_id)) in mounts.iter().zip(&ids) {
                if ts < *start {
                    continue;
                }
                let f = free((ts - start) as f64 / HOUR as f64);
                samples.push(Sample {
                    series: *free_id,
                    ts,
                    value: f * GIB,
                });
                samples.push(Sample {
                    series: *used_id,
                    ts,
                    value: (100.0 - f) * GIB,
                });
            }
        }
        let report = s.append(&samples).unwrap();
        assert_eq!(report.out_of_order, 0, "every sample is taken");
    }

    fn filesystem_incident(
        book: &Incidents,
        mount: &str,
    ) -> Option<ward_shared::incident::Incident> {
        let key = format!("rule:filesystem-full:{mount}");
        book.list(true).into_iter().find(|i| i.key == key)
    }

    #[test]
    fn a_filesystem_is_predicted_only_from_hours_of_history_and_when_filling_in_earnest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let now = 1_795_305_600_000;
        fill(
            &store,
            now,
            &[
                // Ten minutes after start, a package install writes 2 GiB a
                // minute on a disk 19% used: a straight line fills it in a day.
                ("/", now - 10 * 60_000, &|h| 83.0 - 120.0 * h),
                // Six hours at 3 GiB an hour, full in about 19 h, but still
                // 58% free: not filling up in earnest yet.
                ("/big", now - 6 * HOUR, &|h| 76.0 - 3.0 * h),
                // An hour of a fast fill to 20% free: too little history.
                ("/data", now - HOUR, &|h| 30.0 - 10.0 * h),
                // Six hours to 30% free, full in about 15 h: a warning.
                ("/srv", now - 6 * HOUR, &|h| 42.0 - 2.0 * h),
            ],
        );
        let mut book = Incidents::open(store.clone(), 60_000).unwrap();
        let mut rules = Rules::new(RuleSettings::default());
        rules
            .check(now, &store, &GpuTable::default(), &mut book)
            .unwrap();
        for mount in ["/", "/big", "/data"] {
            assert!(
                filesystem_incident(&book, mount).is_none(),
                "{mount}: {:?}",
                filesystem_incident(&book, mount).map(|i| i.title)
            );
        }
        let srv = filesystem_incident(&book, "/srv").expect("/srv fills in earnest");
        assert_eq!(srv.severity, Severity::Warning, "{}", srv.title);
        assert!(
            srv.title.contains("30.0 GiB free, 30% of it"),
            "{}",
            srv.title
        );
    }

    #[test]
    fn a_filesystem_that_fills_more_slowly_goes_back_to_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let start = 1_795_305_600_000;
        let mut book = Incidents::open(store.clone(), 60_000).unwrap();
        let mut rules = Rules::new(RuleSettings::default());
        let gpus = GpuTable::default();
        // Six hours at 3 GiB an hour down to 10 GiB free: critical.
        fill(
            &store,
            start + 6 * HOUR,
            &[("/var", start, &|h| 28.0 - 3.0 * h)],
        );
        rules
            .check(start + 6 * HOUR, &store, &gpus, &mut book)
            .unwrap();
        assert_eq!(
            filesystem_incident(&book, "/var").unwrap().severity,
            Severity::Critical
        );
        // Then six hours at half a GiB an hour, down to 7 GiB: full in about
        // 14 h, a warning again.
        fill(
            &store,
            start + 12 * HOUR,
            &[("/var", start + 6 * HOUR + 60_000, &|h| 10.0 - 0.5 * h)],
        );
        rules
            .check(start + 12 * HOUR, &store, &gpus, &mut book)
            .unwrap();
        let var = filesystem_incident(&book, "/var").unwrap();
        assert_eq!(var.severity, Severity::Warning, "{}", var.title);
        assert!(var.cleared.is_none(), "still filling within a day");
        assert!(
            var.history
                .iter()
                .any(|e| e.what == "severity lowered to warning"),
            "{:?}",
            var.history
        );
    }

    #[test]
    fn a_filesystem_filling_up_a_hot_gpu_and_an_xid_raise_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let now = 1_795_305_600_000;
        // /var: 100 GiB, losing 3 GiB an hour for six hours, down to 10 GiB
        // free: full in about 3.3 h, under 15% free. /home stays put.
        fill(
            &store,
            now,
            &[
                ("/var", now - 6 * HOUR, &|h| 28.0 - 3.0 * h),
                ("/home", now - 6 * HOUR, &|_| 80.0),
            ],
        );
        let gpus = GpuTable::default();
        gpus.update(|g| {
            g.devices = vec![GpuReading {
                uuid: "GPU-1".into(),
                name: "NVIDIA H100".into(),
                temperature_c: Some(91.0),
                ..GpuReading::default()
            }];
            g.xid_history.push_back(XidEvent {
                ts: now - 5000,
                gpu: "GPU-1".into(),
                code: 79,
                description: "GPU has fallen off the bus".into(),
            });
        });
        let mut book = Incidents::open(store.clone(), 60_000).unwrap();
        let mut rules = Rules::new(RuleSettings::default());
        rules.check(now, &store, &gpus, &mut book).unwrap();

        let by_key = |book: &Incidents, k: &str| book.list(true).into_iter().find(|i| i.key == k);
        let var = by_key(&book, "rule:filesystem-full:/var").expect("/var fills within a day");
        assert!(
            var.title.starts_with("filesystem /var full in about 3.3 h at the last 6 hours' rate (10.0 GiB free, 10% of it, falling 3.0 GiB/h)"),
            "{}",
            var.title
        );
        assert_eq!(
            var.severity,
            Severity::Critical,
            "3.3 h is within a sixth of the 24 h limit, and 10% is under 15% free"
        );
        assert!(
            by_key(&book, "rule:filesystem-full:/home").is_none(),
            "steady space is fine"
        );
        let hot = by_key(&book, "rule:gpu-hot:GPU-1").unwrap();
        assert_eq!(
            hot.title,
            "GPU NVIDIA H100 (GPU-1) at 91 °C, over the 85 °C limit"
        );
        let xid = by_key(&book, "rule:xid:GPU-1").unwrap();
        assert_eq!(
            xid.title,
            "GPU GPU-1 reported XID 79: GPU has fallen off the bus"
        );
        assert_eq!(xid.severity, Severity::Critical);
        assert!(
            book.list(true)
                .iter()
                .all(|i| i.source == IncidentSource::Rule)
        );

        // Ten seconds later: the GPU cooled down, no new XID.
        gpus.update(|g| g.devices[0].temperature_c = Some(70.0));
        rules.check(now + 10_000, &store, &gpus, &mut book).unwrap();
        assert!(
            by_key(&book, "rule:gpu-hot:GPU-1")
                .unwrap()
                .cleared
                .is_some()
        );
        assert!(by_key(&book, "rule:xid:GPU-1").unwrap().cleared.is_some());
        assert!(
            by_key(&book, "rule:filesystem-full:/var")
                .unwrap()
                .cleared
                .is_none()
        );
        book.tick(now + 80_000).unwrap();
        assert_eq!(
            by_key(&book, "rule:xid:GPU-1").unwrap().state,
            IncidentState::Resolved
        );

        // Off by config: nothing.
        let mut off = Rules::new(RuleSettings {
            filesystem_full_within: None,
            gpu_max_temperature: None,
            xid_errors: false,
        });
        let mut quiet = Incidents::open(store.clone(), 60_000).unwrap();
        let before = quiet.list(true).len();
        off.check(now, &store, &gpus, &mut quiet).unwrap();
        assert_eq!(quiet.list(true).len(), before);
    }
}
