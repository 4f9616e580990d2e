//! A scorer for the Numenta Anomaly Benchmark, written from the rules in
//! `../shared/datasets/nab/README.md` and checked against the published
//! per-row outputs kept there (tests/nab.rs).
//!
//! Per file: the first `min(floor(0.15 N), 750)` rows are probation and never
//! count. Each labelled window counts once: the best weight among its
//! detections (a detection on its first row is worth `tp`, later ones less),
//! or `-fn` if it has none. Detections outside windows cost `fp` times a
//! sigmoid of their distance after the last window (`-fp` before the first).
//! One threshold is chosen for the whole corpus, the one that maximises the
//! raw score; the normalised score maps "detect nothing" to 0 and perfect
//! to 100.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Weights of a scoring profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// One data file: its timestamps and values, and its labelled windows.
#[derive(Debug, Clone)]
pub struct LabelledFile {
    /// `category/file.csv`
    pub name: String,
    pub timestamps: Vec<String>,
    pub values: Vec<f64>,
    /// Inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

fn sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

pub fn probation(rows: usize) -> usize {
    (rows * 15 / 100).min(750)
}

/// Reads a `timestamp,value` CSV (header, CRLF or LF, last newline optional).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<f64>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| format!("{}:{}: no comma in {line:?}", path.display(), n + 1))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{}:{}: {v:?} is not a number", path.display(), n + 1))?;
        ts.push(t.trim().to_string());
        vs.push(v);
    }
    Ok((ts, vs))
}

/// The data set: every file of `windows.json`, with its rows and windows.
pub fn load(dataset: &Path) -> Result<Vec<LabelledFile>, String> {
    let windows_path = dataset.join("windows.json");
    let text = std::fs::read_to_string(&windows_path)
        .map_err(|e| format!("{}: {e}", windows_path.display()))?;
    let labels: HashMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", windows_path.display()))?;
    let mut names: Vec<&String> = labels.keys().collect();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let (timestamps, values) = read_csv(&dataset.join("data").join(name))?;
        // Window bounds carry a ".000000" suffix; rows are compared on the first 19 characters.
        let key = |t: &str| t.get(..19).unwrap_or(t).to_string();
        let windows = labels[name]
            .iter()
            .filter_map(|(start, end)| {
                let (start, end) = (key(start), key(end));
                let first = timestamps.iter().position(|t| key(t) >= start)?;
                let last = timestamps.iter().rposition(|t| key(t) <= end)?;
                (first <= last).then_some((first, last))
            })
            .collect();
        files.push(LabelledFile {
            name: name.clone(),
            timestamps,
            values,
            windows,
        });
    }
    Ok(files)
}

/// Per row of a file: the window it lies in (if any) and its weight.
fn row_weights(file: &LabelledFile, p: &Profile) -> Vec<(Option<usize>, f64)> {
    let n = file.timestamps.len();
    let mut out = Vec::with_capacity(n);
    let mut last_window: Option<(usize, usize)> = None;
    let mut w = 0;
    for i in 0..n {
        while w < file.windows.len() && file.windows[w].1 < i {
            last_window = Some(file.windows[w]);
            w += 1;
        }
        match file.windows.get(w) {
            Some(&(s, e)) if i >= s && i <= e => {
                let width = (e - s + 1) as f64;
                let y = -((e - i + 1) as f64) / width;
                out.push((Some(w), p.tp * sigmoid(y) / sigmoid(-1.0)));
            }
            _ => match last_window {
                Some((s, e)) => {
                    let width = (e - s + 1) as f64;
                    let y = (i - e) as f64 / (width - 1.0).max(1.0);
                    out.push((None, p.fp * sigmoid(y)));
                }
                None => out.push((None, -p.fp)),
            },
        }
    }
    out
}

/// The result for one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub normalised: f64,
    pub raw: f64,
    pub threshold: f64,
}

/// Scores a detector's per-row outputs (`scores[f][i]` for row `i` of file `f`).
pub fn score(files: &[LabelledFile], scores: &[Vec<f64>], p: &Profile) -> Score {
    let total_windows: usize = files.iter().map(|f| f.windows.len()).sum();
    // Every candidate detection, best score first.
    let mut rows: Vec<(f64, usize, usize)> = Vec::new();
    let mut weights = Vec::with_capacity(files.len());
    for (f, file) in files.iter().enumerate() {
        weights.push(row_weights(file, p));
        let start = probation(file.timestamps.len());
        for (i, &s) in scores[f].iter().enumerate().skip(start) {
            rows.push((s, f, i));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let null = -p.fn_ * total_windows as f64;
    let perfect = p.tp * total_windows as f64;
    // Detect nothing: every window missed.
    let mut raw = null;
    let mut best = (raw, f64::INFINITY);
    let mut window_best: Vec<Vec<Option<f64>>> =
        files.iter().map(|f| vec![None; f.windows.len()]).collect();
    let mut k = 0;
    while k < rows.len() {
        let threshold = rows[k].0;
        // Add every row at this score at once: one threshold takes them all.
        while k < rows.len() && rows[k].0 == threshold {
            let (_, f, i) = rows[k];
            match weights[f][i] {
                (Some(w), weight) => {
                    let slot = &mut window_best[f][w];
                    let old = slot.unwrap_or(-p.fn_);
                    if slot.is_none_or(|b| weight > b) {
                        *slot = Some(weight);
                        raw += weight - old;
                    }
                }
                (None, weight) => raw += weight,
            }
            k += 1;
        }
        if raw > best.0 {
            best = (raw, threshold);
        }
    }
    Score {
        normalised: 100.0 * (best.0 - null) / (perfect - null),
        raw: best.0,
        threshold: best.1,
    }
}

/// Reads a published detector's outputs from `reference/<detector>/`.
pub fn reference_scores(
    dataset: &Path,
    detector: &str,
    files: &[LabelledFile],
) -> Result<Vec<Vec<f64>>, String> {
    files
        .iter()
        .map(|f| {
            let path: PathBuf = dataset.join("reference").join(detector).join(&f.name);
            let (ts, scores) = read_csv(&path)?;
            if ts.len() != f.timestamps.len() {
                return Err(format!(
                    "{}: {} rows, the data has {}",
                    path.display(),
                    ts.len(),
                    f.timestamps.len()
                ));
            }
            Ok(scores)
        })
        .collect()
}

/// The data set beside the repository: `../shared/datasets/nab`.
pub fn default_dataset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/nab")
}

/// What one file's rows at or above `threshold` earn under profile `p`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Breakdown {
    pub found: usize,
    pub missed: usize,
    /// Detections outside every window, and what they cost (negative).
    pub false_detections: usize,
    pub fp_cost: f64,
    /// What the windows found earn.
    pub tp_reward: f64,
}

impl std::ops::AddAssign for Breakdown {
    fn add_assign(&mut self, b: Self) {
        self.found += b.found;
        self.missed += b.missed;
        self.false_detections += b.false_detections;
        self.fp_cost += b.fp_cost;
        self.tp_reward += b.tp_reward;
    }
}

/// Where a file's score comes from at a threshold: which windows were
/// found, and how many detections fell outside them.
pub fn breakdown(file: &LabelledFile, scores: &[f64], p: &Profile, threshold: f64) -> Breakdown {
    let weights = row_weights(file, p);
    let start = probation(file.timestamps.len());
    let mut best: Vec<Option<f64>> = vec![None; file.windows.len()];
    let (mut fpn, mut fps) = (0, 0.0);
    for (i, &s) in scores.iter().enumerate().skip(start) {
        if s >= threshold {
            match weights[i] {
                (Some(w), weight) => {
                    if best[w].is_none_or(|b| weight > b) {
                        best[w] = Some(weight);
                    }
                }
                (None, weight) => {
                    fpn += 1;
                    fps += weight;
                }
            }
        }
    }
    let found = best.iter().filter(|b| b.is_some()).count();
    Breakdown {
        found,
        missed: best.len() - found,
        false_detections: fpn,
        fp_cost: fps,
        tp_reward: best.iter().flatten().sum(),
    }
}
