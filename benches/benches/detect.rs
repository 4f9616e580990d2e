//! Detector cost: scoring one sample with a full set of models in both
//! views (the samples and their moving average), and the row on which a
//! series trains (a model for each view, on a full window). Targets: at
//! most 2 µs a sample, at most 20 ms a series' training.
//!
//! Run: `cargo bench -p ward-benches --bench detect`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

use ward_agent::detect::{Detector, Params};

fn value(i: usize) -> f64 {
    (i as f64 / 30.0).sin() * 10.0 + ((i * 7919) % 97) as f64 / 50.0
}

fn detect(c: &mut Criterion) {
    let params = Params::default();
    // Past warm-up with every model slot filled: the steady state of a live series.
    let rows = params.warm_up + params.retrain_every * (params.models + 1);
    let mut warm = Detector::new(params.clone());
    for i in 0..rows {
        warm.score(value(i));
    }
    assert_eq!(warm.models().count(), params.models);
    assert_eq!(warm.slow_models().count(), params.models);

    // Scoring only: the rows between two trainings, one after another, as a
    // live series sees them; cloning the detector is not timed.
    let first = rows + 1;
    let between = params.retrain_every - 1 - (first % params.retrain_every);
    c.bench_function("score_one_sample_2_views_18_models_each", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let mut d = warm.clone();
                let n = (iters - done).min(between as u64) as usize;
                let start = std::time::Instant::now();
                for i in first..first + n {
                    std::hint::black_box(d.score(value(i)));
                }
                total += start.elapsed();
                done += n as u64;
            }
            total
        })
    });
    // The row on which a training falls: scoring plus a k-means on 1,440
    // rows for each view.
    let before_training = rows + params.retrain_every - 1 - (rows % params.retrain_every);
    let mut at = warm.clone();
    for i in rows..before_training {
        at.score(value(i));
    }
    c.bench_function("train_one_series_2_views_1440_rows", |b| {
        b.iter_batched(
            || at.clone(),
            |mut d| (d.score(value(before_training)), d),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, detect);
criterion_main!(benches);
