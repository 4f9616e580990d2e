//! The store's unit tests: restarts and crashes, format conversion, late
//! samples, every tier's answers, retention, damaged chunks, failed seals.

use super::*;
use ward_shared::{Labels, MetricKind};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn opts() -> StoreSettings {
    StoreSettings {
        raw_window: Duration::from_secs(600),
        ..StoreSettings::default()
    }
}

fn key(name: &str) -> SeriesKey {
    SeriesKey::new(name, Labels::default()).unwrap()
}

fn raw(store: &Store, id: SeriesId, start: i64, end: i64) -> Vec<(i64, f64)> {
    store
        .query(&Query {
            series: id,
            start,
            end,
            step: None,
            agg: Aggregation::Last,
        })
        .unwrap()
        .into_iter()
        .map(|p| (p.ts, p.value))
        .collect()
}

fn stepped(
    store: &Store,
    id: SeriesId,
    start: i64,
    end: i64,
    step: i64,
    agg: Aggregation,
) -> Vec<(i64, f64)> {
    store
        .query(&Query {
            series: id,
            start,
            end,
            step: Some(step),
            agg,
        })
        .unwrap()
        .into_iter()
        .map(|p| (p.ts, p.value))
        .collect()
}

#[test]
fn samples_survive_a_clean_restart_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let id = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    let samples: Vec<Sample> = (0..1500)
        .map(|i| Sample {
            series: id,
            ts: i * 1000,
            value: (i % 17) as f64,
        })
        .collect();
    store.append(&samples[..1000]).unwrap();
    store.close().unwrap();

    let mut store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.lookup(&key("g")), Some(id));
    assert_eq!(raw(&store, id, 0, i64::MAX).len(), 1000);
    store.append(&samples[1000..]).unwrap();
    store.flush().unwrap();
    drop(store); // no close: as if killed after the flush

    let store = Store::open(dir.path(), opts()).unwrap();
    let got = raw(&store, id, 0, i64::MAX);
    let want: Vec<(i64, f64)> = samples.iter().map(|s| (s.ts, s.value)).collect();
    assert_eq!(got, want);
}

#[test]
fn a_second_open_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), opts()).unwrap();
    let err = Store::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn a_store_reopened_while_the_engine_still_lets_go_waits_for_it() {
    // sled's drop returns a moment before its threads let go of its lock
    // file: here that moment is held open on purpose, then for good.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let id = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    store
        .append(&[Sample {
            series: id,
            ts: 1000,
            value: 1.0,
        }])
        .unwrap();
    store.close().unwrap();
    let engine_lock = || {
        let file = std::fs::File::open(dir.path().join("db").join("db")).unwrap();
        file.lock().unwrap();
        file
    };
    let held = engine_lock();
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    });
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(raw(&store, id, 0, i64::MAX), vec![(1000, 1.0)]);
    letting_go.join().unwrap();
    drop(store);

    let _held_for_good = engine_lock();
    let err = Store::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(err.contains("could not acquire lock"), "{err}");
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), opts()).unwrap());
    {
        let kv = Kv::open(&dir.path().join("db"), 1 << 20).unwrap();
        kv.insert(META_FORMAT, &7u32.to_le_bytes()).unwrap();
        kv.flush().unwrap();
    }
    let err = Store::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(err.contains("format version 7"), "{err}");
    assert!(err.contains("reads version 2"), "{err}");
}

/// Rewrites the chunk index of the store in `dir` as format 1 wrote it
/// (an entry per chunk), but for the first `keep` groups, left as they
/// are (as an open cut short while converting leaves them).
fn write_format_1_index(dir: &Path, keep: usize) {
    let kv = Kv::open(&dir.join("db"), 1 << 20).unwrap();
    let groups: Vec<_> = kv.scan_prefix(b"C").map(Result::unwrap).collect();
    assert!(groups.len() > keep + 2, "{} groups", groups.len());
    let mut batch = KvBatch::default();
    for (key, value) in &groups[keep..] {
        let (tier, window, _) = index::parse_key(key).unwrap();
        for e in index::decode_group(value).unwrap() {
            let mut old = window_prefix(tier, window).to_vec();
            old.extend_from_slice(&e.series.0.to_be_bytes());
            old.extend_from_slice(&index::be_ts(e.first_ts));
            batch.insert(&old, &e.at.encode());
        }
        batch.remove(key);
    }
    batch.insert(META_FORMAT, &1u32.to_le_bytes());
    kv.apply(batch).unwrap();
    kv.flush().unwrap();
}

#[test]
fn a_format_1_directory_is_converted_and_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let ids: Vec<SeriesId> = ["a", "b", "c"]
        .map(|n| store.register(SeriesDesc::gauge(key(n), "1")).unwrap())
        .to_vec();
    // Six hours, a sample every 2 s: 36 raw windows and a 6-hour window
    // of minute rows; the restart half-way gives windows a second append.
    for half in 0..2i64 {
        let samples: Vec<Sample> = (half * 5400..(half + 1) * 5400)
            .flat_map(|i| {
                ids.iter().map(move |&series| Sample {
                    series,
                    ts: i * 2000 + 500,
                    value: (i % 97) as f64 + f64::from(series.0),
                })
            })
            .collect();
        store.append(&samples).unwrap();
        store.close().unwrap();
        store = Store::open(dir.path(), opts()).unwrap();
    }
    let answers = |store: &Store| -> Vec<Vec<(i64, f64)>> {
        ids.iter()
            .flat_map(|&id| {
                [
                    raw(store, id, 0, i64::MAX),
                    raw(store, id, 3_000_000, 7_000_000),
                    stepped(store, id, 0, 21_600_000, 60_000, Aggregation::Max),
                    stepped(store, id, 0, 21_600_000, 3_600_000, Aggregation::Avg),
                ]
            })
            .collect()
    };
    let before = answers(&store);
    assert_eq!(before[0].len(), 10_800);
    store.close().unwrap();

    for keep in [0, 1] {
        write_format_1_index(dir.path(), keep);
        let store = Store::open(dir.path(), opts()).unwrap();
        assert_eq!(
            answers(&store),
            before,
            "converted with {keep} group(s) left"
        );
        store.close().unwrap();
        let kv = Kv::open(&dir.path().join("db"), 1 << 20).unwrap();
        assert_eq!(
            kv.get(META_FORMAT).unwrap(),
            Some(FORMAT_VERSION.to_le_bytes().to_vec())
        );
        let keys: Vec<_> = kv.scan_prefix(b"C").map(|r| r.unwrap().0).collect();
        assert!(
            keys.iter().all(|k| index::parse_key(k).is_some()),
            "{keys:?}"
        );
    }
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(answers(&store), before, "and opens again as it is");
}

#[test]
fn late_and_repeated_samples_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let id = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    let s = |ts, value| Sample {
        series: id,
        ts,
        value,
    };
    let r = store
        .append(&[
            s(1000, 1.0),
            s(1000, 2.0),
            s(500, 3.0),
            Sample {
                series: SeriesId(9),
                ts: 1,
                value: 0.0,
            },
        ])
        .unwrap();
    assert_eq!(
        r,
        AppendReport {
            accepted: 1,
            out_of_order: 2,
            unknown_series: 1
        }
    );
    assert_eq!(raw(&store, id, 0, 2000), vec![(1000, 1.0)]);
}

#[test]
fn a_sample_taken_for_a_window_gone_quiet_is_found_once_sealed() {
    // After the clock has sealed a window, the next window opens with the
    // first sample to come; another series may still report for a quiet
    // window in between, and its head then spans windows when sealed.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let a = store.register(SeriesDesc::gauge(key("a"), "1")).unwrap();
    let b = store.register(SeriesDesc::gauge(key("b"), "1")).unwrap();
    let s = |series, ts, value| Sample { series, ts, value };
    store.append(&[s(a, 1000, 1.0), s(b, 1000, 1.0)]).unwrap();
    assert!(store.maintain(11 * MIN + 1000).unwrap().sealed);
    // Window 30-40 min opens; b reports late for minute 15, then on time.
    store.append(&[s(a, 31 * MIN, 2.0)]).unwrap();
    let r = store
        .append(&[s(b, 15 * MIN, 3.0), s(b, 32 * MIN, 4.0)])
        .unwrap();
    assert_eq!(r.accepted, 2);
    let want = vec![(15 * MIN, 3.0), (32 * MIN, 4.0)];
    assert_eq!(raw(&store, b, 10 * MIN, 40 * MIN), want);
    // The next window seals them.
    store.append(&[s(a, 41 * MIN, 5.0)]).unwrap();
    assert_eq!(raw(&store, b, 10 * MIN, 40 * MIN), want);
    assert_eq!(raw(&store, b, 30 * MIN, 40 * MIN), want[1..]);
    assert_eq!(raw(&store, b, 12 * MIN, 20 * MIN), want[..1]);
    assert_eq!(
        stepped(
            &store,
            b,
            30 * MIN,
            40 * MIN - 1,
            10 * MIN,
            Aggregation::Max
        ),
        vec![(30 * MIN, 4.0)]
    );
    store.close().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(raw(&store, b, 30 * MIN, 40 * MIN), want[1..]);
    assert_eq!(
        raw(&store, b, 0, 40 * MIN),
        [vec![(1000, 1.0)], want].concat()
    );
}

#[test]
fn precision_rounds_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let id = store
        .register(SeriesDesc::gauge(key("u"), "1").with_precision(3))
        .unwrap();
    store
        .append(&[Sample {
            series: id,
            ts: 0,
            value: 0.123_456,
        }])
        .unwrap();
    assert_eq!(raw(&store, id, 0, 0), vec![(0, 0.123)]);
}

#[test]
fn every_tier_gives_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    let c = store
        .register(SeriesDesc::counter(key("c"), "By", 0))
        .unwrap();
    // Three hours at 1 s; the counter runs at 5/s with a reset at 01:30.
    let mut batch = Vec::new();
    for i in 0..(3 * 3600) {
        let ts = i * 1000;
        let counter = if i < 5400 { i * 5 } else { (i - 5400) * 5 };
        batch.push(Sample {
            series: g,
            ts,
            value: ((i * 37) % 101) as f64,
        });
        batch.push(Sample {
            series: c,
            ts,
            value: counter as f64,
        });
    }
    store.append(&batch).unwrap();
    store.compact().unwrap();
    let end = 3 * HOUR - 1;

    // Hour buckets from the 1 h tier match the mean of the raw samples.
    let hours = stepped(&store, g, 0, end, HOUR, Aggregation::Avg);
    let minutes = stepped(&store, g, 0, end, MIN, Aggregation::Avg);
    assert_eq!(hours.len(), 3);
    assert_eq!(minutes.len(), 180);
    for (h, &(ts, v)) in hours.iter().enumerate() {
        let raw_mean = raw(&store, g, ts, ts + HOUR - 1)
            .iter()
            .map(|p| p.1)
            .sum::<f64>()
            / 3600.0;
        assert!((v - raw_mean).abs() < 1e-9, "hour {h}: {v} vs {raw_mean}");
        let from_minutes = minutes[h * 60..(h + 1) * 60]
            .iter()
            .map(|p| p.1)
            .sum::<f64>()
            / 60.0;
        assert!((v - from_minutes).abs() < 1e-9);
    }
    let max = stepped(&store, g, 0, end, HOUR, Aggregation::Max);
    assert_eq!(max, vec![(0, 100.0), (HOUR, 100.0), (2 * HOUR, 100.0)]);

    // The counter's rate is 5/s in every bucket at every step. The reset
    // to exactly 0 hides one second's increase, so the bucket holding it
    // reads a little low, never negative or huge.
    for step in [10_000, MIN, HOUR] {
        let rates = stepped(&store, c, 0, end, step, Aggregation::Rate);
        assert_eq!(rates.len() as i64, 3 * HOUR / step);
        for (ts, rate) in rates {
            if ts == floor_to(5_400_000, step) {
                assert!((4.5..5.0).contains(&rate), "step {step} at {ts}: {rate}");
            } else {
                assert!((rate - 5.0).abs() < 1e-9, "step {step} at {ts}: {rate}");
            }
        }
    }
    assert!(matches!(
        store.query(&Query {
            series: g,
            start: 0,
            end,
            step: None,
            agg: Aggregation::Rate
        }),
        Err(StoreError::RateOfGauge(_))
    ));
}

#[test]
fn the_newest_bucket_comes_from_finer_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    // 90 minutes and 30 seconds: no hour tier row yet for the second hour.
    let batch: Vec<Sample> = (0..5430)
        .map(|i| Sample {
            series: g,
            ts: i * 1000,
            value: 2.0,
        })
        .collect();
    store.append(&batch).unwrap();
    let hours = stepped(&store, g, 0, 2 * HOUR, HOUR, Aggregation::Avg);
    assert_eq!(hours, vec![(0, 2.0), (HOUR, 2.0)]);
    let last = stepped(&store, g, 0, 2 * HOUR, HOUR, Aggregation::Last);
    assert_eq!(last[1], (HOUR, 2.0));
}

#[test]
fn retention_and_the_disk_budget_drop_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.raw_retention = Duration::from_secs(3600);
    let mut store = Store::open(dir.path(), o).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    let batch: Vec<Sample> = (0..(3 * 3600))
        .map(|i| Sample {
            series: g,
            ts: i * 1000,
            value: (i % 1000) as f64,
        })
        .collect();
    store.append(&batch).unwrap();
    store.compact().unwrap();
    assert_eq!(store.raw_dropped_through(), None);
    let report = store.maintain(3 * HOUR).unwrap();
    assert_eq!(report.windows_expired, 12, "two hours of 10-minute windows");
    // What the exporter tells apart: samples gone, not never there.
    assert_eq!(store.raw_dropped_through(), Some(2 * HOUR));
    let kept = raw(&store, g, 0, i64::MAX);
    assert_eq!(kept.first().map(|p| p.0), Some(2 * HOUR));
    // Older data is still there at minute resolution.
    assert_eq!(
        stepped(&store, g, 0, HOUR - 1, MIN, Aggregation::Max).len(),
        60
    );

    // Squeeze the budget: raw windows go before any rollup.
    store.opts.disk_budget = store.stored_bytes() - 1;
    let report = store.maintain(3 * HOUR).unwrap();
    assert_eq!(report.windows_evicted_for_budget, 1);
    assert_eq!(store.raw_dropped_through(), Some(2 * HOUR + 10 * MIN));
    assert_eq!(
        raw(&store, g, 0, i64::MAX).first().map(|p| p.0),
        Some(2 * HOUR + 10 * MIN)
    );
    assert_eq!(
        stepped(&store, g, 0, HOUR - 1, MIN, Aggregation::Max).len(),
        60
    );
}

#[test]
fn a_damaged_chunk_is_quarantined_and_counted_and_the_rest_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let a = store.register(SeriesDesc::gauge(key("a"), "1")).unwrap();
    let b = store.register(SeriesDesc::gauge(key("b"), "1")).unwrap();
    let batch: Vec<Sample> = (0..1200)
        .flat_map(|i| {
            [a, b].map(|series| Sample {
                series,
                ts: i * 1000,
                value: i as f64,
            })
        })
        .collect();
    store.append(&batch).unwrap();
    store.close().unwrap();
    // Flip a byte in the middle of the first window's file: series a's chunk.
    let path = dir.path().join("blocks/0-0.blk");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let store = Store::open(dir.path(), opts()).unwrap();
    let got_a = raw(&store, a, 0, i64::MAX);
    let got_b = raw(&store, b, 0, i64::MAX);
    assert_eq!(
        got_a.first().map(|p| p.0),
        Some(600_000),
        "a's first window is gone"
    );
    assert_eq!(got_a.len(), 600);
    assert_eq!(got_b.len(), 1200, "b is untouched");
    assert_eq!(store.stats().chunks_unreadable, 1);
    assert_eq!(store.stats().chunks_quarantined, 1);

    // Quarantined: its bytes copied aside as they were found, and no
    // later read trips on it again, in this run or the next.
    let aside: Vec<_> = std::fs::read_dir(dir.path().join(QUARANTINE_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let name = aside[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("0-0-") && name.ends_with(".chunk"),
        "{name}"
    );
    let kept = std::fs::read(&aside[0]).unwrap();
    let damaged = std::fs::read(&path).unwrap();
    assert_eq!(kept.as_slice(), &damaged[8..8 + kept.len()]);
    assert_eq!(raw(&store, a, 0, i64::MAX).len(), 600);
    assert_eq!(store.stats().chunks_unreadable, 1, "counted once");
    store.close().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(raw(&store, a, 0, i64::MAX).len(), 600);
    assert_eq!(raw(&store, b, 0, i64::MAX).len(), 1200);
    let stats = store.stats();
    assert_eq!((stats.chunks_unreadable, stats.chunks_quarantined), (0, 1));
}

#[test]
fn rollups_survive_a_restart_followed_by_a_long_silence() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    let at = |from: i64, n: i64| -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                series: g,
                ts: from + i * 1000,
                value: (i % 10) as f64,
            })
            .collect()
    };
    // Ten and a half minutes, closed mid-minute; then silence until 7 h
    // later, past the end of the 6-hour rollup window.
    store.append(&at(0, 630)).unwrap();
    store.close().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    store.append(&at(7 * HOUR, 600)).unwrap();
    store.compact().unwrap();
    drop(store);

    let store = Store::open(dir.path(), opts()).unwrap();
    let minutes = stepped(&store, g, 0, 8 * HOUR, MIN, Aggregation::Max);
    assert_eq!(minutes.len(), 11 + 10, "{minutes:?}");
    assert_eq!(
        minutes[10],
        (10 * MIN, 9.0),
        "the minute the close cut in two"
    );
    let hours = stepped(&store, g, 0, 8 * HOUR, HOUR, Aggregation::Avg);
    assert_eq!(
        hours.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![0, 7 * HOUR]
    );
    assert_eq!(hours[0].1, 4.5);
}

#[test]
fn a_query_ending_inside_a_coarse_row_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    // 05:00 to 07:00: the 05:00 hour row ends in the next 6-hour window.
    let batch: Vec<Sample> = (0..7200)
        .map(|i| Sample {
            series: g,
            ts: 5 * HOUR + i * 1000,
            value: 1.0,
        })
        .collect();
    store.append(&batch).unwrap();
    store.compact().unwrap();
    // The hour row covers past the end: nothing is left for finer tiers.
    let got = stepped(
        &store,
        g,
        5 * HOUR,
        5 * HOUR + 30 * MIN,
        HOUR,
        Aggregation::Avg,
    );
    assert_eq!(got, vec![(5 * HOUR, 1.0)]);
}

#[test]
fn a_seal_that_fails_leaves_everything_to_the_next_one() {
    // Six hours and ten minutes of a gauge and a counter at 1 s; the
    // seal at 06:00 also closes the first 6-hour window of minutes.
    let (g, c) = (SeriesId(0), SeriesId(1));
    let sample = |i: i64| {
        [
            Sample {
                series: g,
                ts: i * 1000,
                value: ((i * 37) % 101) as f64,
            },
            Sample {
                series: c,
                ts: i * 1000,
                value: (i * 5 % 40_000) as f64,
            },
        ]
    };
    let open = |dir: &Path| {
        let mut store = Store::open(dir, opts()).unwrap();
        store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
        store
            .register(SeriesDesc::counter(key("c"), "By", 0))
            .unwrap();
        store
    };
    let six = 6 * 3600;
    let (before, after): (Vec<Sample>, Vec<Sample>) = (
        (0..six).flat_map(sample).collect(),
        (six..six + 600).flat_map(sample).collect(),
    );

    let plain = tempfile::tempdir().unwrap();
    let mut expected = open(plain.path());
    expected.append(&before).unwrap();
    expected.append(&after).unwrap();
    expected.compact().unwrap();

    let failed = tempfile::tempdir().unwrap();
    let mut store = open(failed.path());
    store.append(&before).unwrap();
    // The blocks directory becomes a file: the seal that the first sample
    // of 06:00 starts cannot write its chunks.
    let blocks = failed.path().join("blocks");
    let aside = failed.path().join("blocks.aside");
    std::fs::rename(&blocks, &aside).unwrap();
    std::fs::write(&blocks, b"in the way").unwrap();
    let err = store.append(&after[..2]).unwrap_err().to_string();
    assert!(err.contains("blocks"), "{err}");
    std::fs::remove_file(&blocks).unwrap();
    std::fs::rename(&aside, &blocks).unwrap();
    store.append(&after).unwrap();
    store.compact().unwrap();

    type Points = Vec<(i64, f64)>;
    let answers = |store: &Store| -> [(Points, Points, Points); 2] {
        [g, c].map(|id| {
            (
                raw(store, id, 0, six * 1000 + 600_000),
                stepped(store, id, 0, 7 * HOUR, MIN, Aggregation::Avg),
                stepped(store, id, 0, 7 * HOUR, HOUR, Aggregation::Max),
            )
        })
    };
    let want = answers(&expected);
    assert_eq!(want[0].1.len(), 370, "minutes of the gauge");
    // Which answers differ, by series: raw samples, minutes, hours.
    let differ = |got: &[(Points, Points, Points); 2]| {
        got.iter()
            .zip(&want)
            .map(|(g, w)| [g.0 == w.0, g.1 == w.1, g.2 == w.2].map(|same| !same))
            .collect::<Vec<_>>()
    };
    let none = vec![[false; 3]; 2];
    assert_eq!(differ(&answers(&store)), none, "after the seal that failed");
    drop(store);
    assert_eq!(
        differ(&answers(&open(failed.path()))),
        none,
        "after a restart"
    );
}

#[test]
fn an_idle_window_is_sealed_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), opts()).unwrap();
    let g = store.register(SeriesDesc::gauge(key("g"), "1")).unwrap();
    store
        .append(&[Sample {
            series: g,
            ts: 1000,
            value: 1.0,
        }])
        .unwrap();
    assert!(!store.maintain(2000).unwrap().sealed);
    assert!(store.maintain(11 * MIN + 1000).unwrap().sealed);
    assert_eq!(store.stats().pending_samples, 0);
    assert_eq!(raw(&store, g, 0, i64::MAX), vec![(1000, 1.0)]);
    let kind = store.describe(g).map(|d| d.kind);
    assert_eq!(kind, Some(MetricKind::Gauge));
}
