//! The detector's tests: what it flags and what it does not, its models
//! and their training, what it keeps and restores.

use super::*;

#[test]
fn a_surprise_too_large_for_a_double_to_tell_from_one_still_scores_below_one() {
    let mut d = Detector::new(Params::default());
    for i in 0..1100 {
        let score = d.score((i as f64 / 9.0).sin());
        assert!((0.0..1.0).contains(&score), "row {i} scored {score}");
    }
    // Some 10^20 times anything seen: s / (s + record) rounds to 1.
    let score = d.score(1e20);
    assert!((0.99..1.0).contains(&score), "scored {score}");
}

#[test]
fn a_detectors_history_grows_with_its_rows_up_to_what_is_budgeted() {
    let params = Params::default();
    let mut d = Detector::new(params.clone());
    assert_eq!(d.values.capacity(), 0, "nothing held before the first row");
    for i in 0..100 {
        d.score((i as f64 * 0.3).sin());
    }
    assert!(d.values.capacity() <= 128, "{}", d.values.capacity());
    let young = d.heap_bytes();
    for i in 0..10_000 {
        d.score((i as f64 * 0.3).sin());
    }
    assert_eq!(d.values.len(), params.train_window + SPAN - 1);
    assert_eq!(d.values.capacity(), params.train_window + SPAN);
    assert_eq!(d.recent.capacity(), params.edge_window + 1);
    assert_eq!(d.models.len(), params.models);
    assert_eq!(
        d.models.capacity(),
        params.models + 1,
        "taken whole, not doubled"
    );
    // What the agent budgets per series covers what a full detector
    // holds, closely: the status reports `heap_bytes`.
    let held = d.heap_bytes() + std::mem::size_of::<Detector>();
    let budgeted = Detector::full_bytes(&params);
    assert!(held <= budgeted, "{held} > {budgeted}");
    assert!(held * 100 >= budgeted * 95, "{held} < 95% of {budgeted}");
    assert!(young * 3 < held, "{young} held after 100 rows");
}

#[test]
fn a_spike_in_a_steady_signal_scores_highest_and_once() {
    let mut d = Detector::new(Params::default());
    let signal = |i: usize| (i as f64 / 20.0).sin() * 10.0 + if i == 2500 { 60.0 } else { 0.0 };
    let scores: Vec<f64> = (0..3000).map(|i| d.score(signal(i))).collect();
    let (argmax, max) = scores
        .iter()
        .enumerate()
        .skip(300)
        .fold((0, 0.0), |a, (i, &s)| if s > a.1 { (i, s) } else { a });
    assert!((2500..2505).contains(&argmax), "peak at {argmax} ({max})");
    let others = scores[300..2490].iter().copied().fold(0.0, f64::max);
    assert!(max > others + 0.2, "spike {max} against {others} elsewhere");
    assert!(scores.iter().all(|s| (0.0..1.0).contains(s)));
}

#[test]
fn a_level_shift_after_a_large_spike_is_still_seen() {
    // A steady, noisy signal (10 give or take 1), one wild sample at row
    // 2000, then the level steps up by 3 at row 2600: the step is 300
    // times smaller than the spike, and still the clearest event since.
    let noise = |i: usize| ((i * 7919) % 101) as f64 / 50.0 - 1.0;
    let signal = |i: usize| {
        10.0 + noise(i) + if i == 2000 { 1000.0 } else { 0.0 } + if i >= 2600 { 3.0 } else { 0.0 }
    };
    let mut d = Detector::new(Params::default());
    let scores: Vec<f64> = (0..2700).map(|i| d.score(signal(i))).collect();
    let step = scores[2600..2610].iter().copied().fold(0.0, f64::max);
    let before = scores[2010..2600].iter().copied().fold(0.0, f64::max);
    assert!(step >= 0.5, "the step scores {step}");
    assert!(
        step > before + 0.2,
        "step {step} against {before} before it"
    );
}

#[test]
fn a_slow_sag_in_the_noise_is_flagged_sooner_by_the_slow_view() {
    // Noise of about N(0, 1) around 10; from row 3000 the level sags by
    // 0.7 over 200 rows. Sample to sample it hides in the noise until
    // the values leave the range seen; the moving average leaves its
    // range much sooner.
    let noise = |i: usize| {
        // A sum of twelve uniforms from a multiplicative hash of the row.
        (0..12u64)
            .map(|k| {
                let h = (i as u64 * 12 + k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                h as f64 / (1u64 << 24) as f64
            })
            .sum::<f64>()
            - 6.0
    };
    let signal =
        |i: usize| 10.0 + noise(i) - 0.7 * (i.saturating_sub(3000) as f64 / 200.0).min(1.0);
    // Rows after the start of the sag until one scores above every
    // score of the 2,000 rows before it.
    let delay = |params: Params| -> usize {
        let mut d = Detector::new(params);
        let scores: Vec<f64> = (0..3600).map(|i| d.score(signal(i))).collect();
        let before = scores[1000..3000].iter().copied().fold(0.0, f64::max);
        scores[3000..]
            .iter()
            .position(|&s| s > before)
            .unwrap_or(usize::MAX)
    };
    let both = delay(Params::default());
    let alone = delay(Params {
        slow_window: 0,
        ..Params::default()
    });
    assert!(both <= 60, "flagged {both} rows into the sag");
    assert!(
        alone >= 100,
        "the samples alone flagged it after {alone} rows"
    );
}

#[test]
fn scores_are_causal() {
    let values: Vec<f64> = (0..1200).map(|i| ((i * 37) % 101) as f64).collect();
    let mut a = Detector::new(Params::default());
    let full: Vec<f64> = values.iter().map(|&v| a.score(v)).collect();
    let mut b = Detector::new(Params::default());
    let prefix: Vec<f64> = values[..700].iter().map(|&v| b.score(v)).collect();
    assert_eq!(
        &full[..700],
        &prefix[..],
        "later rows changed earlier scores"
    );
}

#[test]
fn a_training_over_the_budget_waits_for_a_row_that_may_train() {
    let mut d = Detector::new(Params::default());
    for i in 0..299 {
        d.score_at(i, (i % 17) as f64, true);
    }
    // Row 300 is due, but the budget is spent: no model, one waiting.
    assert!(!d.score_at(299, 3.0, false).1);
    assert!(d.training_deferred());
    assert_eq!(d.models().count(), 0);
    assert!(!d.score_at(300, 4.0, false).1, "still over the budget");
    let (_, trained) = d.score_at(301, 5.0, true);
    assert!(trained && !d.training_deferred());
    let m = d.models().next().unwrap();
    assert_eq!((m.trained_at, m.trained_ts), (302, 301));
}

#[test]
fn every_model_says_when_and_on_what_it_was_trained() {
    let mut d = Detector::new(Params::default());
    for i in 0..1000 {
        d.score((i % 17) as f64);
    }
    let models: Vec<_> = d.models().collect();
    assert!(models.len() >= 3);
    assert_eq!(models[0].trained_at, 300);
    assert!(
        models
            .iter()
            .all(|m| m.trained_on > 0 && m.scale > 0.0 && m.centroids[0] != m.centroids[1])
    );
}

/// A detector with every model it keeps, in both views.
fn full_detector() -> Detector {
    let params = Params {
        warm_up: 60,
        train_window: 120,
        retrain_every: 60,
        ..Params::default()
    };
    let mut d = Detector::new(params);
    for i in 0..1500 {
        d.score_at(
            1_000 + i,
            (i as f64 / 7.0).sin() * 10.0 + (i % 5) as f64,
            true,
        );
    }
    assert_eq!(d.models().count(), 18);
    assert_eq!(d.slow_models().count(), 18);
    d
}

#[test]
fn a_full_detectors_models_are_stored_in_six_kilobytes_and_come_back_equal() {
    let d = full_detector();
    let saved = d.save().unwrap();
    let bytes = saved.encode();
    // 36 models of 160 bytes, and a few fixed fields: the JSON of
    // format 3 took about 17 KB for the same detector.
    assert!(bytes.len() <= 36 * 160 + 400, "{} bytes", bytes.len());
    assert_eq!(Saved::decode(&bytes).unwrap(), saved);
    let again = Detector::restore(d.params.clone(), &Saved::decode(&bytes).unwrap());
    assert!(again.models().eq(d.models()));
    assert!(again.slow_models().eq(d.slow_models()));
    assert_eq!(again.save().unwrap(), saved);
}

#[test]
fn stored_models_cut_short_garbled_or_of_another_format_are_refused_not_misread() {
    let bytes = full_detector().save().unwrap().encode();
    for n in 0..bytes.len() {
        assert!(
            Saved::decode(&bytes[..n]).is_err(),
            "{n} of {} bytes read as models",
            bytes.len()
        );
    }
    let json = br#"{"format":3,"params":"k=2","rows":5,"record":1.0,"models":[]}"#;
    assert_eq!(Saved::decode(json), Err(SavedError::OtherFormat(3)));
    let mut other = bytes.clone();
    other[..4].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(Saved::decode(&other), Err(SavedError::OtherFormat(9)));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Saved::decode(&longer),
        Err(SavedError::Malformed(_))
    ));
    // The first model's scale (after the format, the parameters, rows,
    // record, the count and its centroids) set to 0.
    let params = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    let scale = 4 + 2 + params + 16 + 2 + K * DIM * 8;
    let mut zero = bytes.clone();
    zero[scale..scale + 8].copy_from_slice(&0f64.to_le_bytes());
    assert!(
        matches!(Saved::decode(&zero), Err(SavedError::Malformed(m)) if m.contains("scale")),
        "{:?}",
        Saved::decode(&zero)
    );
    // Numbers no training writes, which would blind the series for good.
    let record = 4 + 2 + params + 8;
    let centroid = scale - K * DIM * 8;
    for (at, v, says) in [
        (record, f64::INFINITY, "record"),
        (record, -1.0, "record"),
        (centroid, f64::NAN, "centroids"),
        (scale, f64::INFINITY, "scale"),
        (scale + 4 * 8, f64::NAN, "level"),
        (scale + 5 * 8, f64::INFINITY, "range"),
    ] {
        let mut bad = bytes.clone();
        bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
        assert!(
            matches!(Saved::decode(&bad), Err(SavedError::Malformed(m)) if m.contains(says)),
            "{v} at byte {at}: {:?}",
            Saved::decode(&bad)
        );
    }
}
