//! Model-based property test of the store: random appends, late samples,
//! flushes, clock-driven seals, and reopenings (clean, and as after a crash
//! that follows a flush), checked against a plain in-memory model.
//!
//! What must hold after every step:
//! - a raw range query returns exactly the model's samples in that range
//!   (and at the end, each window's read on its own);
//! - a stepped query (avg, min, max, last at 10 s, 1 min and 1 h steps)
//!   equals the model's samples aggregated by hand, whichever tier answers;
//! - late samples are refused and counted, never stored.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ward_agent::store::{Aggregation, Query, Store, StoreSettings};
use ward_shared::{Labels, Sample, SeriesDesc, SeriesId, SeriesKey};

const SERIES: usize = 3;
const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone)]
enum Op {
    /// `count` samples of one series, `gap` ms apart, after the global clock.
    Append {
        series: usize,
        gap: i64,
        count: usize,
        pattern: u8,
    },
    /// A sample at or before the series' last timestamp.
    Late {
        series: usize,
        back: i64,
    },
    /// A sample after the series' last one but maybe before what other
    /// series have sealed: the store may take it or refuse it, and must
    /// stay consistent either way.
    Backfill {
        series: usize,
        frac: u16,
    },
    Flush,
    /// Nothing at all for hours, not even maintenance: past rollup windows.
    Silence {
        hours: i64,
    },
    /// The wall clock moves past the current window.
    Maintain,
    Reopen {
        clean: bool,
    },
    QueryRaw {
        series: usize,
        a: u16,
        b: u16,
    },
    QueryStep {
        series: usize,
        a: u16,
        b: u16,
        step: i64,
        agg: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SERIES, 1i64..4000, 1usize..400, 0u8..4)
            .prop_map(|(series, gap, count, pattern)| Op::Append { series, gap, count, pattern }),
        1 => (0..SERIES, 0i64..5000).prop_map(|(series, back)| Op::Late { series, back }),
        2 => (0..SERIES, any::<u16>()).prop_map(|(series, frac)| Op::Backfill { series, frac }),
        1 => Just(Op::Flush),
        1 => (5i64..9).prop_map(|hours| Op::Silence { hours }),
        1 => Just(Op::Maintain),
        2 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        3 => (0..SERIES, any::<u16>(), any::<u16>()).prop_map(|(series, a, b)| Op::QueryRaw { series, a, b }),
        3 => (0..SERIES, any::<u16>(), any::<u16>(), prop_oneof![Just(10_000i64), Just(60_000), Just(3_600_000)], 0u8..4)
            .prop_map(|(series, a, b, step, agg)| Op::QueryStep { series, a, b, step, agg }),
    ]
}

fn value(pattern: u8, i: usize) -> f64 {
    match pattern {
        0 => 7.0,                           // flat
        1 => (i % 13) as f64 * 0.25,        // decimals
        2 => ((i * 7919) % 100_003) as f64, // noisy integers
        _ => (i as f64 * 0.37).sin(),       // full-precision doubles
    }
}

fn options() -> StoreSettings {
    StoreSettings {
        raw_window: Duration::from_millis(WINDOW_MS as u64),
        ..StoreSettings::default()
    }
}

struct Harness {
    dir: tempfile::TempDir,
    store: Option<Store>,
    ids: Vec<SeriesId>,
    model: Vec<BTreeMap<i64, f64>>,
    clock: i64,
    appended: u64,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), options()).unwrap();
        let ids = (0..SERIES)
            .map(|i| {
                let key = SeriesKey::new(format!("test.series{i}"), Labels::default()).unwrap();
                store.register(SeriesDesc::gauge(key, "1")).unwrap()
            })
            .collect();
        Self {
            dir,
            store: Some(store),
            ids,
            model: vec![BTreeMap::new(); SERIES],
            clock: 1_700_000_000_000,
            appended: 0,
        }
    }

    fn store(&mut self) -> &mut Store {
        self.store.as_mut().unwrap()
    }

    fn span(&self) -> (i64, i64) {
        (1_700_000_000_000, self.clock.max(1_700_000_000_001))
    }

    fn at(&self, frac: u16) -> i64 {
        let (lo, hi) = self.span();
        lo + ((hi - lo) as i128 * i128::from(frac) / i128::from(u16::MAX)) as i64
    }

    /// A raw read of `[a, b]` returns exactly the model's samples there.
    fn check_raw(&mut self, series: usize, a: i64, b: i64) {
        let id = self.ids[series];
        let got: Vec<(i64, f64)> = self
            .store()
            .query(&Query {
                series: id,
                start: a,
                end: b,
                step: None,
                agg: Aggregation::Last,
            })
            .unwrap()
            .into_iter()
            .map(|p| (p.ts, p.value))
            .collect();
        let want: Vec<(i64, f64)> = self.model[series]
            .range(a..=b)
            .map(|(&t, &v)| (t, v))
            .collect();
        assert_eq!(got.len(), want.len(), "raw [{a}, {b}] of series {series}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.0 == w.0 && g.1.to_bits() == w.1.to_bits(),
                "{g:?} != {w:?}"
            );
        }
    }

    /// Every window that holds samples, read on its own, gives them all.
    fn check_each_window(&mut self, series: usize) {
        let windows: std::collections::BTreeSet<i64> = self.model[series]
            .keys()
            .map(|t| t - t.rem_euclid(WINDOW_MS))
            .collect();
        for w in windows {
            self.check_raw(series, w, w + WINDOW_MS - 1);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append {
                series,
                gap,
                count,
                pattern,
            } => {
                let id = self.ids[series];
                let samples: Vec<Sample> = (0..count)
                    .map(|i| Sample {
                        series: id,
                        ts: self.clock + gap * (i as i64 + 1),
                        value: value(pattern, i + self.appended as usize),
                    })
                    .collect();
                let report = self.store().append(&samples).unwrap();
                assert_eq!(report.accepted, count as u64);
                for s in &samples {
                    self.model[series].insert(s.ts, s.value);
                }
                self.clock += gap * count as i64;
                self.appended += count as u64;
            }
            Op::Late { series, back } => {
                let Some((&last, _)) = self.model[series].last_key_value() else {
                    return;
                };
                let id = self.ids[series];
                let report = self
                    .store()
                    .append(&[Sample {
                        series: id,
                        ts: last - back,
                        value: -1.0,
                    }])
                    .unwrap();
                assert_eq!((report.accepted, report.out_of_order), (0, 1));
            }
            Op::Backfill { series, frac } => {
                let last = self.model[series]
                    .last_key_value()
                    .map_or(self.span().0, |(&t, _)| t);
                if last >= self.clock {
                    return;
                }
                let ts = last
                    + 1
                    + ((self.clock - last - 1) as i128 * i128::from(frac) / i128::from(u16::MAX))
                        as i64;
                let id = self.ids[series];
                let report = self
                    .store()
                    .append(&[Sample {
                        series: id,
                        ts,
                        value: 0.5,
                    }])
                    .unwrap();
                assert_eq!(report.accepted + report.out_of_order, 1);
                if report.accepted == 1 {
                    self.model[series].insert(ts, 0.5);
                }
            }
            Op::Flush => self.store().flush().unwrap(),
            Op::Silence { hours } => self.clock += hours * 3_600_000,
            Op::Maintain => {
                self.clock += 2 * WINDOW_MS + 61_000;
                let now = self.clock;
                self.store().maintain(now).unwrap();
            }
            Op::Reopen { clean } => {
                let store = self.store.take().unwrap();
                if clean {
                    store.close().unwrap();
                } else {
                    let mut store = store;
                    store.flush().unwrap();
                    drop(store); // killed right after a flush
                }
                self.store = Some(Store::open(self.dir.path(), options()).unwrap());
            }
            Op::QueryRaw { series, a, b } => {
                let (a, b) = (self.at(a.min(b)), self.at(a.max(b)));
                self.check_raw(series, a, b);
            }
            Op::QueryStep {
                series,
                a,
                b,
                step,
                agg,
            } => {
                let floor = |t: i64| t - t.rem_euclid(step);
                let start = floor(self.at(a.min(b)));
                let end = floor(self.at(a.max(b))) + step - 1;
                let agg = [
                    Aggregation::Avg,
                    Aggregation::Min,
                    Aggregation::Max,
                    Aggregation::Last,
                ][usize::from(agg)];
                let id = self.ids[series];
                let got = self
                    .store()
                    .query(&Query {
                        series: id,
                        start,
                        end,
                        step: Some(step),
                        agg,
                    })
                    .unwrap();
                let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (&t, &v) in self.model[series].range(start..=end) {
                    buckets.entry(floor(t)).or_default().push(v);
                }
                assert_eq!(
                    got.iter().map(|p| p.ts).collect::<Vec<_>>(),
                    buckets.keys().copied().collect::<Vec<_>>(),
                    "bucket starts, step {step}"
                );
                for (p, vs) in got.iter().zip(buckets.values()) {
                    let want = match agg {
                        Aggregation::Avg => vs.iter().sum::<f64>() / vs.len() as f64,
                        Aggregation::Min => vs.iter().copied().fold(f64::INFINITY, f64::min),
                        Aggregation::Max => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        _ => *vs.last().unwrap(),
                    };
                    let tol = 1e-9 * want.abs().max(1.0);
                    assert!(
                        (p.value - want).abs() <= tol,
                        "{agg:?} step {step} at {}: {} vs {want}",
                        p.ts,
                        p.value
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        // Relative to the package root, where cargo runs the test; committed.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/store_model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_agrees_with_a_plain_model(ops in prop::collection::vec(op(), 1..30)) {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op);
        }
        // Whatever happened, a final reopen sees everything.
        h.apply(&Op::Reopen { clean: false });
        for series in 0..SERIES {
            h.apply(&Op::QueryRaw { series, a: 0, b: u16::MAX });
            h.check_each_window(series);
        }
    }
}
