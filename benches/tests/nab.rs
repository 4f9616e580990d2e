//! The NAB scorer reproduces the published scores of the reference outputs
//! in ../shared/datasets/nab (the table in its README), to the second decimal.

use ward_benches::nab::{PROFILES, breakdown, default_dataset, load, reference_scores, score};

fn check(detector: &str, expected: [f64; 3]) {
    let dataset = default_dataset();
    let files = load(&dataset).expect("the NAB data set beside the repository");
    assert_eq!(files.len(), 39);
    assert_eq!(files.iter().map(|f| f.windows.len()).sum::<usize>(), 66);
    let scores = reference_scores(&dataset, detector, &files).expect("reference outputs");
    for (profile, want) in PROFILES.iter().zip(expected) {
        let got = score(&files, &scores, profile).normalised;
        assert!(
            (got - want).abs() < 0.005,
            "{detector} {}: {got:.3}, published {want}",
            profile.name
        );
    }
}

#[test]
fn artime_scores_as_published() {
    check("ARTime", [75.02, 66.82, 80.31]);
}

#[test]
fn numenta_htm_scores_as_published() {
    check("numenta", [71.83, 65.67, 76.17]);
}

#[test]
fn detecting_nothing_scores_zero_and_everything_scores_below() {
    let files = load(&default_dataset()).unwrap();
    let zeros: Vec<Vec<f64>> = files.iter().map(|f| vec![0.0; f.values.len()]).collect();
    // One threshold flags every row (all at 0.0) or none; none is better, and scores 0.
    let s = score(&files, &zeros, &PROFILES[0]);
    assert_eq!(s.normalised, 0.0);
    assert!(s.threshold.is_infinite());
}

#[test]
fn the_per_file_breakdown_adds_up_to_the_score() {
    let dataset = default_dataset();
    let files = load(&dataset).unwrap();
    let scores = reference_scores(&dataset, "numenta", &files).unwrap();
    for profile in &PROFILES {
        let s = score(&files, &scores, profile);
        let parts: Vec<_> = files
            .iter()
            .zip(&scores)
            .map(|(f, sc)| breakdown(f, sc, profile, s.threshold))
            .collect();
        let found: usize = parts.iter().map(|b| b.found).sum();
        let missed: usize = parts.iter().map(|b| b.missed).sum();
        assert_eq!(found + missed, 66);
        assert!(found > 0 && parts.iter().any(|b| b.false_detections > 0));
        let raw: f64 = parts
            .iter()
            .map(|b| b.tp_reward + b.fp_cost - profile.fn_ * b.missed as f64)
            .sum();
        assert!(
            (raw - s.raw).abs() < 1e-9,
            "{}: {raw} against {}",
            profile.name,
            s.raw
        );
    }
}
