//! The spool: job reports that could not reach the agent wait here, one
//! file per run, and the agent takes them in when it is back.
//!
//! A file is a JSON array of [`JobEvent`]s, written to a temporary name and
//! renamed, so the agent never reads half a file. Names start with the
//! run's start time, so runs are delivered in the order they started. A
//! file that does not parse is renamed `*.bad` and counted, never retried
//! in a loop and never deleted: it may be all there is of a run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{info, warn};
use ward_shared::jobs::JobEvent;

/// Writes `events` of one run into `dir`.
pub fn write(
    dir: &Path,
    started_ms: i64,
    run: &str,
    events: &[JobEvent],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let safe: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let name = format!("{started_ms:013}-{safe}.json");
    let tmp = dir.join(format!(".{name}.tmp"));
    let json = serde_json::to_vec_pretty(events).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// What one pass over the spool did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub files: usize,
    pub events: usize,
    /// Events the agent refused (counted by the job book too).
    pub refused: usize,
    /// Files that did not parse, set aside as `*.bad`.
    pub bad_files: usize,
}

/// Spool files taken in and set aside since start, for the status.
#[derive(Debug, Clone, Default)]
pub struct SpoolCounts {
    pub delivered: Arc<AtomicU64>,
    pub bad: Arc<AtomicU64>,
}

impl SpoolCounts {
    pub fn add(&self, d: Drained) {
        self.delivered.fetch_add(d.files as u64, Ordering::Relaxed);
        self.bad.fetch_add(d.bad_files as u64, Ordering::Relaxed);
    }
}

/// Hands every spooled event to `apply`, oldest run first, and removes
/// each file once its events were handed over.
pub fn drain(dir: &Path, mut apply: impl FnMut(&JobEvent) -> Result<(), String>) -> Drained {
    let mut out = Drained::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    for path in files {
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Vec<JobEvent>>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(events) => {
                for e in &events {
                    if let Err(why) = apply(e) {
                        out.refused += 1;
                        warn!(file = %path.display(), job = %e.job, run = %e.run, error = %why, "spooled job event refused");
                    }
                }
                out.events += events.len();
                out.files += 1;
                if let Err(e) = std::fs::remove_file(&path) {
                    warn!(file = %path.display(), error = %e, "could not remove a delivered spool file");
                }
            }
            Err(why) => {
                out.bad_files += 1;
                let bad = path.with_extension("bad");
                warn!(file = %path.display(), error = %why, moved_to = %bad.display(), "unreadable spool file set aside");
                let _ = std::fs::rename(&path, &bad);
            }
        }
    }
    if out.files > 0 {
        info!(
            files = out.files,
            events = out.events,
            refused = out.refused,
            "spooled job reports delivered"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_shared::jobs::JobEventKind;

    #[test]
    fn spooled_runs_come_back_in_start_order_and_bad_files_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let ev = |job: &str, kind| JobEvent::new(job, "r1", kind);
        write(dir.path(), 2000, "r1", &[ev("second", JobEventKind::Start)]).unwrap();
        write(
            dir.path(),
            1000,
            "r/1",
            &[
                ev("first", JobEventKind::Start),
                ev("first", JobEventKind::Finish),
            ],
        )
        .unwrap();
        std::fs::write(dir.path().join("0000000000500-torn.json"), b"[{\"job\":").unwrap();
        let mut seen = Vec::new();
        let d = drain(dir.path(), |e| {
            seen.push(format!("{} {:?}", e.job, e.kind));
            if e.job == "second" {
                Err("refused".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(seen, ["first Start", "first Finish", "second Start"]);
        assert_eq!(
            d,
            Drained {
                files: 2,
                events: 3,
                refused: 1,
                bad_files: 1
            }
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["0000000000500-torn.bad"]);
        // A second pass finds nothing to do.
        assert_eq!(drain(dir.path(), |_| Ok(())), Drained::default());
    }
}
