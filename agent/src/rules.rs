//! Static rules beside the models, from the config, raising the same
//! incidents (source `rule`):
//!
//! | key | raised when | cleared when |
//! | --- | --- | --- |
//! | `rule:filesystem-full:MOUNT` | at the rate of the last hour, the filesystem fills within `rules.filesystem_full_within` | the projection is further out, or free space grows |
//! | `rule:gpu-hot:UUID` | a GPU is hotter than `rules.gpu_max_temperature` °C | it is 3 °C under the limit again |
//! | `rule:xid:UUID` | a GPU reports an XID error (critical) | at the next check without a new one; it resolves after the quiet period |
//!
//! A failed job is a rule too; it lives with the jobs (`job:NAME:failed`).

use std::time::Duration;

use ward_shared::TimestampMs;
use ward_shared::incident::{IncidentContext, IncidentSource, Severity, Signal};

use crate::collect::gpu::GpuTable;
use crate::incidents::{Conditions, Incidents, Raise};
use crate::store::SharedStore;
use crate::store::{Aggregation, Query, StoreError};

/// Which rules run, and their limits.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// Raise when a filesystem fills within this, at the last hour's rate; `None`: off.
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
        // Free bytes per mount over the last hour, a point a minute.
        let mounts: Vec<(String, Vec<(i64, f64)>)> = {
            let s = store.lock();
            let free: Vec<_> = s
                .series()
                .filter(|(_, d)| {
                    d.key.name == "system.filesystem.usage"
                        && d.key.labels.get("system.filesystem.state") == Some("free")
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
                .collect();
            let mut out = Vec::new();
            for (id, mount) in free {
                let q = Query {
                    series: id,
                    start: now - 3_600_000,
                    end: now,
                    step: Some(60_000),
                    agg: Aggregation::Avg,
                };
                let points = s.query(&q)?.into_iter().map(|p| (p.ts, p.value)).collect();
                out.push((mount, points));
            }
            out
        };
        let limit_h = within.as_secs_f64() / 3600.0;
        for (mount, points) in mounts {
            let key = format!("rule:filesystem-full:{mount}");
            let (Some(slope), Some(&(_, free))) = (slope_per_hour(&points), points.last()) else {
                continue;
            };
            let left_h = if slope < 0.0 {
                free / -slope
            } else {
                f64::INFINITY
            };
            if left_h <= limit_h {
                let r = Raise {
                    key,
                    title: format!(
                        "filesystem {mount} full in about {} at the last hour's rate ({} free, falling {}/h)",
                        hours(left_h),
                        gib(free),
                        gib(-slope)
                    ),
                    severity: if left_h <= limit_h / 4.0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    source: IncidentSource::Rule,
                    signals: vec![Signal {
                        what: format!("system.filesystem.usage free {mount}"),
                        observed: left_h,
                        expected_low: Some(limit_h),
                        expected_high: None,
                        unit: "h".into(),
                        contribution: 1.0,
                        model: format!(
                            "rule: linear fit of free space over the last hour ({} points); rules.filesystem_full_within = {} h",
                            points.len(),
                            limit_h
                        ),
                    }],
                    context: IncidentContext::default(),
                };
                self.active.raise(incidents, now, r)?;
            } else {
                self.active.clear(
                    incidents,
                    &key,
                    &format!("full in {} at the current rate", hours(left_h)),
                    now,
                )?;
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

    #[test]
    fn a_filesystem_filling_up_a_hot_gpu_and_an_xid_raise_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let now = 1_795_305_600_000;
        let free = |mount: &str| {
            key(
                "system.filesystem.usage",
                &[
                    ("system.device", "/dev/sda1"),
                    ("system.filesystem.mountpoint", mount),
                    ("system.filesystem.state", "free"),
                    ("system.filesystem.type", "ext4"),
                ],
            )
        };
        {
            let mut s = store.lock();
            let var = s.register(SeriesDesc::gauge(free("/var"), "By")).unwrap();
            let home = s.register(SeriesDesc::gauge(free("/home"), "By")).unwrap();
            // /var loses 10 GiB an hour from 50 GiB; /home stays put.
            let samples: Vec<Sample> = (0..=60)
                .flat_map(|m| {
                    let ts = now - 3_600_000 + m * 60_000;
                    [
                        Sample {
                            series: var,
                            ts,
                            value: (60.0 - 10.0 * m as f64 / 60.0) * GIB,
                        },
                        Sample {
                            series: home,
                            ts,
                            value: 80.0 * GIB,
                        },
                    ]
                })
                .collect();
            s.append(&samples).unwrap();
        }
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
            var.title.starts_with("filesystem /var full in about 5.0 h at the last hour's rate (50.0 GiB free, falling 10.0 GiB/h)"),
            "{}",
            var.title
        );
        assert_eq!(
            var.severity,
            Severity::Critical,
            "5 h is within a quarter of the 24 h limit"
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
