//! Anomalies grouped into the host's incident: those of at least
//! `min_series` series within the group window open it, later ones join
//! it while it lasts, and a quiet period clears it. The incident explains
//! itself: each series against its expected range, and the model that
//! fired.

use std::collections::{BTreeMap, HashSet};

use tracing::warn;
use ward_shared::incident::{IncidentContext, IncidentSource, Severity, Signal};
use ward_shared::{SeriesId, TimestampMs};

use super::{Bank, Flag};
use crate::detect::SAVED_FORMAT;
use crate::incidents::{Raise, SharedIncidents};

impl Bank {
    /// Groups the anomalies up to `now`: opens, updates or clears the host's
    /// incident; returns the anomaly rate to record.
    pub fn group(
        &mut self,
        now: TimestampMs,
        incidents: &SharedIncidents,
        context: &dyn Fn() -> IncidentContext,
    ) -> f64 {
        let window = self.settings.group_window_ms;
        while self.flags.front().is_some_and(|f| f.ts < now - window) {
            self.flags.pop_front();
        }
        let recent: HashSet<SeriesId> = self
            .flags
            .iter()
            .filter(|f| f.ts >= now - 10_000)
            .map(|f| f.series)
            .collect();
        let share = recent.len() as f64 / self.series.len().max(1) as f64;
        self.rate += (share - self.rate) / 60.0;
        let in_window: HashSet<SeriesId> = self.flags.iter().map(|f| f.series).collect();
        let key = format!("anomaly:{}", self.host);
        let grows = match &self.episode {
            None => in_window.len() >= self.settings.min_series,
            Some(seen) => self.flags.iter().any(|f| {
                seen.get(&f.series)
                    .is_none_or(|old| f.score > old.score && f.ts > old.ts)
            }),
        };
        if grows {
            let seen = self.episode.get_or_insert_with(BTreeMap::new);
            for f in &self.flags {
                let keep = seen.get(&f.series).is_none_or(|old| f.score >= old.score);
                if keep {
                    seen.insert(f.series, f.clone());
                }
            }
            let raise = self.describe_episode(&key, context());
            if let Err(e) = incidents.lock().raise(raise, now) {
                warn!(error = %e, "could not record the anomaly incident");
            }
        } else if let Some(seen) = &self.episode {
            let last = seen.values().map(|f| f.ts).max().unwrap_or(now);
            let latest = self.flags.back().map_or(last, |f| f.ts.max(last));
            if now - latest >= self.settings.quiet_ms {
                self.episode = None;
                let quiet = self.settings.quiet_ms / 1000;
                if let Err(e) =
                    incidents
                        .lock()
                        .clear(&key, &format!("no anomaly for {quiet} s"), now)
                {
                    warn!(error = %e, "could not clear the anomaly incident");
                }
            }
        }
        self.rate
    }

    fn describe_episode(&self, key: &str, context: IncidentContext) -> Raise {
        let mut flags: Vec<&Flag> = self
            .episode
            .as_ref()
            .map(|s| s.values().collect())
            .unwrap_or_default();
        flags.sort_by(|a, b| b.score.total_cmp(&a.score));
        let total: f64 = flags.iter().map(|f| f.score).sum::<f64>().max(1e-9);
        let signals: Vec<Signal> = flags
            .iter()
            .filter_map(|f| {
                let w = self.series.get(&f.series)?;
                let (models, view): (Vec<_>, String) = if f.slow {
                    (
                        w.detector.slow_models().collect(),
                        format!(
                            "the {}-sample moving average",
                            self.settings.params.slow_window
                        ),
                    )
                } else {
                    (w.detector.models().collect(), "the samples".to_string())
                };
                let newest = models.last();
                Some(Signal {
                    what: w.key.clone(),
                    observed: f.value,
                    expected_low: f.expected.0.is_finite().then_some(f.expected.0),
                    expected_high: f.expected.1.is_finite().then_some(f.expected.1),
                    unit: if w.counter { format!("{}/s", w.unit) } else { w.unit.clone() },
                    contribution: f.score / total,
                    model: match newest {
                        Some(m) => format!(
                            "k-means (k=2) on the shape and level of {view}, score {:.2}; {} models kept, the newest trained {} on the {} samples before it (model format {SAVED_FORMAT})",
                            f.score,
                            models.len(),
                            if m.trained_ts > 0 {
                                format!("at {} (row {})", ward_shared::time::utc(m.trained_ts), m.trained_at)
                            } else {
                                format!("at row {}", m.trained_at)
                            },
                            m.trained_on
                        ),
                        None => format!("k-means (k=2) on {view}, score {:.2}", f.score),
                    },
                })
            })
            // The twenty that explain most.
            .take(20)
            .collect();
        let share = flags.len() as f64 / self.series.len().max(1) as f64;
        // "disk writes on nvme0n1 with iowait and 3 more unusual on db-7, since 14:32"
        let mut names: Vec<&str> = Vec::new();
        for f in &flags {
            if let Some(w) = self.series.get(&f.series)
                && !names.contains(&w.human.as_str())
            {
                names.push(&w.human);
            }
        }
        let lead = match names.as_slice() {
            [] => "?".to_string(),
            [one] => one.to_string(),
            [one, two] => format!("{one} with {two}"),
            [one, two, rest @ ..] => format!("{one} with {two} and {} more", rest.len()),
        };
        let since = flags.iter().map(|f| f.ts).min().unwrap_or(0);
        Raise {
            key: key.to_string(),
            title: format!(
                "{lead} unusual on {}, since {} ({} series)",
                self.host,
                &ward_shared::time::utc(since)[11..16],
                flags.len()
            ),
            severity: if share >= 0.25 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            source: IncidentSource::Anomaly,
            signals,
            context,
        }
    }
}
