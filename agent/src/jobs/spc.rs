//! Statistical process control over a job's past runs: a Shewhart chart
//! (mean +/- 3 sigma) with the Western Electric run rules.
//!
//! The control limits come from a baseline of earlier runs; the newest runs
//! (up to [`RECENT`]) are left out of it so that a shift is judged against
//! what came before it. A rule fires only when the newest run is part of the
//! pattern, so an alarm is about the run that just finished.

/// Newest runs kept out of the baseline.
pub const RECENT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// One point beyond 3 sigma.
    Beyond3Sigma,
    /// Two of three consecutive points beyond 2 sigma, on one side.
    TwoOfThreeBeyond2Sigma,
    /// Four of five consecutive points beyond 1 sigma, on one side.
    FourOfFiveBeyond1Sigma,
    /// Eight consecutive points on one side of the mean.
    EightOnOneSide,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Beyond3Sigma => "one run beyond 3 sigma",
            Rule::TwoOfThreeBeyond2Sigma => "2 of the last 3 runs beyond 2 sigma",
            Rule::FourOfFiveBeyond1Sigma => "4 of the last 5 runs beyond 1 sigma",
            Rule::EightOnOneSide => "8 runs in a row on one side of the mean",
        }
    }
}

/// An out-of-control newest point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breach {
    pub rule: Rule,
    pub value: f64,
    pub mean: f64,
    pub sigma: f64,
    /// Runs the limits were computed from.
    pub baseline: usize,
}

/// Checks the newest of `values` (oldest first) against limits from the
/// runs before it; `None` while fewer than `min_baseline` runs came before,
/// or when the newest run is in control.
pub fn check(values: &[f64], min_baseline: usize) -> Option<Breach> {
    let n = values.len();
    if n <= min_baseline {
        return None;
    }
    let recent = (n - min_baseline).min(RECENT);
    let base = &values[..n - recent];
    let mean = base.iter().sum::<f64>() / base.len() as f64;
    let var = base.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (base.len() - 1).max(1) as f64;
    // Identical runs would make any change infinitely significant: a
    // floor of 1% of the mean keeps the chart about changes that matter.
    let sigma = var.sqrt().max(mean.abs() * 0.01).max(1e-9);
    let z: Vec<f64> = values.iter().map(|v| (v - mean) / sigma).collect();
    let last = z[n - 1];
    let side = last.signum();
    let breach = |rule| Breach {
        rule,
        value: values[n - 1],
        mean,
        sigma,
        baseline: base.len(),
    };
    if last.abs() > 3.0 {
        return Some(breach(Rule::Beyond3Sigma));
    }
    let beyond = |k: usize, limit: f64| {
        z[n.saturating_sub(k)..]
            .iter()
            .filter(|v| v.signum() == side && v.abs() > limit)
            .count()
    };
    if last.abs() > 2.0 && n >= 3 && beyond(3, 2.0) >= 2 {
        return Some(breach(Rule::TwoOfThreeBeyond2Sigma));
    }
    if last.abs() > 1.0 && n >= 5 && beyond(5, 1.0) >= 4 {
        return Some(breach(Rule::FourOfFiveBeyond1Sigma));
    }
    if n >= 8 && side != 0.0 && z[n - 8..].iter().all(|v| v.signum() == side && *v != 0.0) {
        return Some(breach(Rule::EightOnOneSide));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations around 60 s with a little noise, deterministic.
    fn steady(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 60.0 + [-1.5, 0.5, 1.0, -0.5, 1.5, -1.0][i % 6])
            .collect()
    }

    #[test]
    fn a_steady_job_is_in_control() {
        let v = steady(40);
        for n in 1..=v.len() {
            assert_eq!(check(&v[..n], 10), None, "after {n} runs");
        }
    }

    #[test]
    fn one_run_far_out_breaks_the_three_sigma_limit() {
        let mut v = steady(20);
        v.push(200.0);
        let b = check(&v, 10).unwrap();
        assert_eq!(b.rule, Rule::Beyond3Sigma);
        assert_eq!(b.value, 200.0);
        assert!((b.mean - 60.0).abs() < 1.0, "{b:?}");
        // Far fewer rows than usual is caught the same way, below the mean.
        let mut rows = vec![1_000_000.0; 15];
        rows.push(120_000.0);
        assert_eq!(check(&rows, 10).unwrap().rule, Rule::Beyond3Sigma);
    }

    #[test]
    fn too_few_runs_judge_nothing() {
        let mut v = steady(5);
        v.push(500.0);
        assert_eq!(check(&v, 10), None);
    }

    #[test]
    fn the_run_rules_catch_a_shift_no_single_run_shows() {
        // sigma of steady() is about 1.15: runs at +2.5 sigma.
        let mut v = steady(24);
        v.extend([62.9, 63.0]);
        assert_eq!(check(&v, 10).unwrap().rule, Rule::TwoOfThreeBeyond2Sigma);

        let mut v = steady(24);
        v.extend([61.8, 61.7, 60.2, 61.9, 61.8]);
        assert_eq!(check(&v, 10).unwrap().rule, Rule::FourOfFiveBeyond1Sigma);

        let mut v = steady(24);
        v.extend([60.6; 8]);
        assert_eq!(check(&v, 10).unwrap().rule, Rule::EightOnOneSide);
        // Seven are not enough.
        let mut v = steady(24);
        v.extend([60.6; 7]);
        assert_eq!(check(&v, 10), None);
    }

    #[test]
    fn identical_runs_still_notice_a_real_change() {
        let mut v = vec![1000.0; 12];
        assert_eq!(check(&v, 10), None);
        v.push(900.0);
        assert_eq!(check(&v, 10).unwrap().rule, Rule::Beyond3Sigma);
    }
}
