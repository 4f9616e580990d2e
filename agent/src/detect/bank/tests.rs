//! The bank's tests: grouping into one incident that explains itself,
//! models kept across restarts, feedback as sensitivity.

use super::*;
use crate::detect::Model;
use crate::detect::Params;
use crate::incidents::Incidents;
use crate::incidents::SharedIncidents;
use crate::store::SharedStore;
use crate::store::{Store, StoreSettings};
use ward_shared::incident::IncidentState;
use ward_shared::incident::{IncidentContext, Signal};
use ward_shared::{Labels, SeriesKey};

fn desc(name: &str, kind: MetricKind) -> SeriesDesc {
    let key = SeriesKey::new(name, Labels::default()).unwrap();
    match kind {
        MetricKind::Counter => SeriesDesc::counter(key, "By", 0),
        MetricKind::Gauge => SeriesDesc::gauge(key, "1"),
    }
}

/// An incident book on a store in a directory of its own (kept while the
/// test runs).
fn incident_book() -> (tempfile::TempDir, SharedIncidents) {
    let dir = tempfile::tempdir().unwrap();
    let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
    let incidents = SharedIncidents::new(Incidents::open(store, 60_000).unwrap());
    (dir, incidents)
}

/// Smaller models than the agent's, for a test that runs in seconds.
fn three_small_models() -> DetectSettings {
    DetectSettings {
        params: Params {
            warm_up: 120,
            train_window: 300,
            retrain_every: 150,
            models: 3,
            ..Params::default()
        },
        ..DetectSettings::default()
    }
}

/// Ten quiet series for 12 minutes at 1 s; at minute 8, three of them
/// jump together for a few seconds.
#[test]
fn anomalies_that_start_together_become_one_incident_that_explains_itself() {
    let (_dir, incidents) = incident_book();
    let mut bank = Bank::new(three_small_models(), "db-7");
    for i in 0..10u32 {
        let kind = if i == 0 {
            MetricKind::Counter
        } else {
            MetricKind::Gauge
        };
        bank.describe(SeriesId(i), &desc(&format!("test.s{i}"), kind));
    }
    bank.describe(
        SeriesId(99),
        &desc("ward.agent.cpu.time", MetricKind::Counter),
    );
    let context = || IncidentContext {
        jobs: vec!["etl run 7".into()],
        ..Default::default()
    };
    let mut counter = 0.0;
    let mut opened_at = None;
    let mut rates = Vec::new();
    for t in 0..720i64 {
        let ts = t * 1000;
        let jump = (480..485).contains(&t);
        let mut samples = Vec::new();
        for i in 0..10u32 {
            let base = 50.0 + f64::from(i) + ((t as f64) / 30.0 + f64::from(i)).sin();
            let value = match i {
                0 => {
                    counter += if jump {
                        90_000.0
                    } else {
                        1000.0 + (t % 7) as f64
                    };
                    counter
                }
                1 | 2 if jump => base * 4.0,
                _ => base,
            };
            samples.push(Sample {
                series: SeriesId(i),
                ts,
                value,
            });
        }
        bank.score(&samples);
        rates.push(bank.group(ts, &incidents, &context));
        if opened_at.is_none() && !incidents.lock().list(false).is_empty() {
            opened_at = Some(t);
        }
    }
    let opened_at = opened_at.expect("the joint jump opens an incident");
    assert!((480..490).contains(&opened_at), "opened at {opened_at} s");
    let all = incidents.lock().list(true);
    assert_eq!(all.len(), 1, "one incident for the episode: {all:#?}");
    let i = &all[0];
    assert_eq!(i.key, "anomaly:db-7");
    assert_eq!(i.source, IncidentSource::Anomaly);
    // Unknown names read as their keys; known ones as phrases (detect::names).
    assert!(
        i.title.starts_with("test.s")
            && i.title.contains(" with test.s")
            && i.title
                .ends_with(" and 1 more unusual on db-7, since 00:08 (3 series)"),
        "{}",
        i.title
    );
    let what: HashSet<&str> = i.signals.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(what, HashSet::from(["test.s0", "test.s1", "test.s2"]));
    let s1 = i.signals.iter().find(|s| s.what == "test.s1").unwrap();
    assert!(s1.observed > s1.expected_high.unwrap(), "{s1:?}");
    let s0 = i.signals.iter().find(|s| s.what == "test.s0").unwrap();
    assert_eq!(s0.unit, "By/s", "a counter is judged by its rate");
    assert!(s0.observed > 80_000.0, "{s0:?}");
    assert!(
        s1.model
            .contains("3 models kept, the newest trained at 1970-01-01 00:0"),
        "{}",
        s1.model
    );
    // A jump of a few samples: the samples' view saw it, not the average's.
    assert!(
        s1.model
            .starts_with("k-means (k=2) on the shape and level of the samples, score"),
        "{}",
        s1.model
    );
    let total: f64 = i.signals.iter().map(|s| s.contribution).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert_eq!(i.context.jobs, ["etl run 7"]);
    // Quiet again: cleared after the quiet period.
    assert!(
        i.cleared.is_some(),
        "cleared after {} s of quiet",
        DetectSettings::default().quiet_ms / 1000
    );
    assert_eq!(
        i.state,
        IncidentState::Open,
        "the book resolves it on its own clock"
    );
    assert!(
        rates[485] > rates[400],
        "the anomaly rate rises with the episode"
    );
    assert!(rates.iter().all(|r| (0.0..=1.0).contains(r)));
}

/// Detectors that keep two models, the first after 60 rows.
fn two_quick_models() -> DetectSettings {
    DetectSettings {
        params: Params {
            warm_up: 60,
            train_window: 120,
            retrain_every: 60,
            models: 2,
            ..Params::default()
        },
        ..DetectSettings::default()
    }
}

#[test]
fn models_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
    let settings = two_quick_models();
    let mut bank = Bank::new(settings.clone(), "h").with_store(store.clone());
    bank.describe(SeriesId(0), &desc("test.s0", MetricKind::Gauge));
    for t in 0..300 {
        let value = (f64::from(t) / 9.0).sin();
        bank.score(&[Sample {
            series: SeriesId(0),
            ts: 1_000_000 + i64::from(t) * 1000,
            value,
        }]);
    }
    let before: Vec<Model> = bank.series[&SeriesId(0)]
        .detector
        .models()
        .cloned()
        .collect();
    assert_eq!(before.len(), 2);
    let slow_before: Vec<Model> = bank.series[&SeriesId(0)]
        .detector
        .slow_models()
        .cloned()
        .collect();
    assert_eq!(slow_before.len(), 2, "the slow view trains too");
    assert!(
        before
            .iter()
            .chain(&slow_before)
            .all(|m| m.trained_ts > 1_000_000),
        "each model says when: {before:?} {slow_before:?}"
    );
    assert_ne!(before, slow_before);
    bank.save();
    drop(bank);

    // A new agent over the same store: the series' detector has its models back.
    let mut again = Bank::new(settings.clone(), "h").with_store(store.clone());
    again.describe(SeriesId(5), &desc("test.s0", MetricKind::Gauge));
    let after: Vec<Model> = again.series[&SeriesId(5)]
        .detector
        .models()
        .cloned()
        .collect();
    assert_eq!(after, before);
    let slow_after: Vec<Model> = again.series[&SeriesId(5)]
        .detector
        .slow_models()
        .cloned()
        .collect();
    assert_eq!(slow_after, slow_before);
    // Other parameters, other models: the saved ones are not used.
    let mut other = Bank::new(
        DetectSettings {
            params: Params {
                train_window: 500,
                ..settings.params.clone()
            },
            ..settings
        },
        "h",
    )
    .with_store(store);
    other.describe(SeriesId(5), &desc("test.s0", MetricKind::Gauge));
    assert_eq!(other.series[&SeriesId(5)].detector.models().count(), 0);
}

#[test]
fn models_an_older_agent_kept_in_the_store_are_used_and_moved_to_the_models_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
    let settings = two_quick_models();
    // What an older agent left: a trained detector's models as a document.
    let mut trained = Detector::new(settings.params.clone());
    for t in 0..300 {
        trained.score(f64::from(t % 17));
    }
    let saved = trained.save().unwrap();
    let key = desc("test.s0", MetricKind::Gauge).key.to_string();
    store
        .lock()
        .put_doc(Collection::Models, key.as_bytes(), &saved.encode())
        .unwrap();
    let file = store.lock().model_file();

    let mut bank = Bank::new(settings.clone(), "h").with_store(store.clone());
    bank.describe(SeriesId(3), &desc("test.s0", MetricKind::Gauge));
    let models = |bank: &Bank, id| -> Vec<Model> {
        bank.series[&SeriesId(id)]
            .detector
            .models()
            .cloned()
            .collect()
    };
    assert_eq!(models(&bank, 3), saved.models);
    assert!(!file.path().exists(), "nothing written before a save");
    bank.save();
    assert!(file.path().exists());
    let left = store.lock().docs(Collection::Models, b"").unwrap();
    assert!(left.is_empty(), "moved out of the store: {left:?}");

    // An agent that never sees the series keeps its models all the same.
    Bank::new(settings.clone(), "h")
        .with_store(store.clone())
        .save();
    // The next agent reads them from the file.
    let mut again = Bank::new(settings, "h").with_store(store);
    again.describe(SeriesId(4), &desc("test.s0", MetricKind::Gauge));
    assert_eq!(models(&again, 4), saved.models);
}

#[test]
fn a_false_positive_raises_the_bar_for_its_series_until_taken_back() {
    let mut bank = Bank::new(DetectSettings::default(), "h");
    let incident = |feedback| ward_shared::incident::Incident {
        title: String::new(),
        state: ward_shared::incident::IncidentState::Resolved,
        source: IncidentSource::Anomaly,
        opened: 0,
        updated: 0,
        peak: 0,
        signals: vec![Signal {
            what: "test.s1".into(),
            observed: 1.0,
            expected_low: None,
            expected_high: None,
            unit: "1".into(),
            contribution: 1.0,
            model: String::new(),
        }],
        feedback,
        ..ward_shared::fixtures::incident(1, "anomaly:h")
    };
    bank.apply_feedback(&[incident(Some(Feedback::FalsePositive))]);
    assert!(bank.desensitized.contains("test.s1"));
    bank.apply_feedback(&[incident(Some(Feedback::Confirmed))]);
    assert!(bank.desensitized.is_empty(), "reversible");
}

/// A bursty byte counter (0 and 2000 By/s in turn: mean minus 3 sigma is
/// below zero) and a utilization near 0.95 (mean plus 3 sigma is above
/// one): when they misbehave, the incident's expected ranges stay within
/// what the quantities can be.
#[test]
fn expected_ranges_respect_what_a_metric_can_be() {
    let (_dir, incidents) = incident_book();
    let mut bank = Bank::new(three_small_models(), "h");
    bank.describe(SeriesId(0), &desc("test.bytes", MetricKind::Counter));
    bank.describe(
        SeriesId(1),
        &desc("test.cpu.utilization", MetricKind::Gauge),
    );
    bank.describe(SeriesId(2), &desc("test.level", MetricKind::Gauge));
    let context = IncidentContext::default;
    let mut counter = 0.0;
    for t in 0..600i64 {
        let jump = (480..485).contains(&t);
        counter += if jump {
            90_000.0
        } else if t % 2 == 0 {
            2000.0
        } else {
            0.0
        };
        let utilization = if jump {
            0.05
        } else {
            0.95 + 0.03 * ((t as f64) / 3.0).sin()
        };
        let level = 50.0 + ((t as f64) / 30.0).sin() + if jump { 150.0 } else { 0.0 };
        let ts = t * 1000;
        bank.score(&[
            Sample {
                series: SeriesId(0),
                ts,
                value: counter,
            },
            Sample {
                series: SeriesId(1),
                ts,
                value: utilization,
            },
            Sample {
                series: SeriesId(2),
                ts,
                value: level,
            },
        ]);
        bank.group(ts, &incidents, &context);
    }
    let all = incidents.lock().list(true);
    let signal = |what: &str| {
        all.iter()
            .flat_map(|i| &i.signals)
            .find(|s| s.what == what)
            .cloned()
            .unwrap_or_else(|| panic!("no signal for {what}: {all:#?}"))
    };
    let bytes = signal("test.bytes");
    assert_eq!(bytes.expected_low, Some(0.0), "a rate of bytes: {bytes:?}");
    let utilization = signal("test.cpu.utilization");
    assert!(
        utilization.expected_high.is_some_and(|h| h <= 1.0),
        "a share of one: {utilization:?}"
    );
    let level = signal("test.level");
    assert!(
        level.expected_low.is_some_and(|l| l > 0.0 && l < 50.0),
        "{level:?}"
    );
}
