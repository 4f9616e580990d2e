//! Store speed: append throughput and range reads.
//!
//! - `append`: one hour of a simulated 141-series host (507,600 samples)
//!   into a fresh store, on one thread, seals included, flushes excluded
//!   (the agent flushes once a second; `store_size` measures with flushes).
//! - `read`: 100 series over a store holding 7 days: the last hour at 1 s
//!   (raw points) and the whole week at a 1 h step (the hour tier).
//!
//! Run: `cargo bench -p ward-benches --bench store`

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ward_agent::store::{Aggregation, Query, Store, StoreSettings};
use ward_benches::HostSim;
use ward_shared::{Sample, SeriesId};

const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const HOUR: i64 = 3_600_000;
const WEEK: i64 = 7 * 24 * HOUR;

fn hour_of_samples() -> Vec<Sample> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), StoreSettings::default()).expect("open");
    let mut host = HostSim::register(&mut store, 8, 7).expect("register");
    let mut out = Vec::new();
    for s in 0..3600 {
        host.tick(START + s * 1000, &mut out);
    }
    out
}

fn append(c: &mut Criterion) {
    let samples = hour_of_samples();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.sample_size(10);
    group.bench_function("host_hour_141_series", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temporary directory");
                let mut store = Store::open(dir.path(), StoreSettings::default()).expect("open");
                // Same registration order as when the samples were made: same ids.
                HostSim::register(&mut store, 8, 7).expect("register");
                (dir, store)
            },
            |(dir, mut store)| {
                for tick in samples.chunks(141) {
                    store.append(tick).expect("append");
                }
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// A store with 7 days of a simulated host: 10 s samples, then the last hour at 1 s.
fn week_store() -> (tempfile::TempDir, Store, Vec<SeriesId>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), StoreSettings::default()).expect("open");
    let mut host = HostSim::register(&mut store, 8, 11).expect("register");
    let mut batch = Vec::new();
    let mut ts = START;
    while ts < START + WEEK {
        batch.clear();
        host.tick(ts, &mut batch);
        store.append(&batch).expect("append");
        ts += if ts < START + WEEK - HOUR {
            10_000
        } else {
            1000
        };
    }
    store.flush().expect("flush");
    let ids = store.series().map(|(id, _)| id).take(100).collect();
    (dir, store, ids)
}

fn read(c: &mut Criterion) {
    let (_dir, store, ids) = week_store();
    let end = START + WEEK - 1;
    let mut group = c.benchmark_group("read_100_series");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("last_hour_raw_1s", |b| {
        b.iter(|| {
            let mut points = 0;
            for &series in &ids {
                let q = Query {
                    series,
                    start: end - HOUR + 1,
                    end,
                    step: None,
                    agg: Aggregation::Last,
                };
                points += store.query(&q).expect("query").len();
            }
            assert!(points >= 100 * 3599, "{points} points");
            points
        });
    });
    group.bench_function("week_at_1h_step", |b| {
        b.iter(|| {
            let mut points = 0;
            for &series in &ids {
                let q = Query {
                    series,
                    start: START,
                    end,
                    step: Some(HOUR),
                    agg: Aggregation::Avg,
                };
                points += store.query(&q).expect("query").len();
            }
            assert!(points >= 100 * 167, "{points} points");
            points
        });
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
