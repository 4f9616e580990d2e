//! Scores Ward's detector on the NAB subset beside the repository, or a
//! published detector's outputs with `--reference NAME` (ARTime, numenta).
//!
//! Run: `cargo run --release -p ward-benches --bin nab [-- --files --why]`
//! (`--why`: per file, the windows found and missed and the false
//! detections at the standard profile's threshold).

use ward_agent::detect::{Detector, Params};
use ward_benches::nab::{
    Breakdown, PROFILES, breakdown, default_dataset, load, reference_scores, score,
};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dataset = default_dataset();
    let files = load(&dataset)?;
    let reference = args
        .iter()
        .position(|a| a == "--reference")
        .and_then(|i| args.get(i + 1));
    // Parameter overrides for tuning: warm_up=300 models=10 ...
    let mut params = Params::default();
    for arg in args.iter().filter_map(|a| a.split_once('=')) {
        let n: f64 = arg
            .1
            .parse()
            .map_err(|_| format!("{}: not a number", arg.1))?;
        match arg.0 {
            "warm_up" => params.warm_up = n as usize,
            "train_window" => params.train_window = n as usize,
            "retrain_every" => params.retrain_every = n as usize,
            "models" => params.models = n as usize,
            "edge_window" => params.edge_window = n as usize,
            "level_weight" => params.level_weight = n,
            "damping" => params.damping = n,
            "record_decay" => params.record_decay = n,
            "slow_window" => params.slow_window = n as usize,
            "slow_level_weight" => params.slow_level_weight = n,
            other => return Err(format!("unknown parameter {other}")),
        }
    }
    let scores: Vec<Vec<f64>> = match reference {
        Some(name) => reference_scores(&dataset, name, &files)?,
        None => files
            .iter()
            .map(|f| {
                let mut d = Detector::new(params.clone());
                f.values.iter().map(|&v| d.score(v)).collect()
            })
            .collect(),
    };
    let who = reference.map_or("ward", String::as_str);
    for p in &PROFILES {
        let s = score(&files, &scores, p);
        println!(
            "{who} {:<20} {:6.2}  (threshold {:.4})",
            p.name, s.normalised, s.threshold
        );
    }
    if args.iter().any(|a| a == "--why") {
        // Each file at the standard profile's best threshold.
        let t = score(&files, &scores, &PROFILES[0]).threshold;
        let mut total = Breakdown::default();
        for (f, s) in files.iter().zip(&scores) {
            let b = breakdown(f, s, &PROFILES[0], t);
            println!(
                "{:55} found {} missed {} false detections {:3} ({:6.2}) reward {:5.2}",
                f.name, b.found, b.missed, b.false_detections, b.fp_cost, b.tp_reward
            );
            total += b;
        }
        println!(
            "all files: found {} missed {} false detections {} ({:.2}) reward {:.2}",
            total.found, total.missed, total.false_detections, total.fp_cost, total.tp_reward
        );
    }
    if args.iter().any(|a| a == "--files") {
        for (f, s) in files.iter().zip(&scores) {
            let one = std::slice::from_ref(f);
            let r = score(one, std::slice::from_ref(s), &PROFILES[0]);
            println!(
                "{:60} windows {} standard {:7.2}",
                f.name,
                f.windows.len(),
                r.normalised
            );
        }
    }
    Ok(())
}
