//! The agent's own resource budget: it watches its RSS and CPU and sheds
//! optional work before it overruns, and takes it back once calm.
//!
//! Optional work, shed in this order and taken back in reverse:
//! 1. detector training (scoring goes on with the models there are);
//! 2. process snapshots (the top-processes table and per-service usage).
//!
//! Usage is the larger of RSS / `agent.budget_rss` and CPU share /
//! `agent.budget_cpu`. At every check over 90% sheds one more thing; below
//! 60% for [`CALM_FOR`] takes one back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

const CALM_FOR: Duration = Duration::from_secs(60);

/// What is shed now; read by the parts that do the optional work.
#[derive(Debug, Default)]
pub struct Shed {
    pub training: AtomicBool,
    pub processes: AtomicBool,
}

impl Shed {
    /// Names of what is shed, for the status.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.training.load(Ordering::Relaxed) {
            out.push("detector training".to_string());
        }
        if self.processes.load(Ordering::Relaxed) {
            out.push("process snapshots".to_string());
        }
        out
    }
}

#[derive(Debug)]
pub struct Budget {
    pub max_rss: u64,
    /// Share of one core.
    pub max_cpu: f64,
    pub shed: Arc<Shed>,
    level: u8,
    last_cpu: Option<(Instant, f64)>,
    calm_since: Option<Instant>,
    /// The latest measurements, for the status.
    pub rss: u64,
    pub cpu: f64,
}

impl Budget {
    pub fn new(max_rss: u64, max_cpu: f64) -> Self {
        Self {
            max_rss,
            max_cpu,
            shed: Arc::new(Shed::default()),
            level: 0,
            last_cpu: None,
            calm_since: None,
            rss: 0,
            cpu: 0.0,
        }
    }

    /// Takes a measurement: RSS in bytes and the process's CPU seconds so far.
    pub fn check(&mut self, rss: u64, cpu_seconds: f64, now: Instant) {
        let share = match self.last_cpu.replace((now, cpu_seconds)) {
            Some((t, c)) if now > t => (cpu_seconds - c) / now.duration_since(t).as_secs_f64(),
            _ => return,
        };
        (self.rss, self.cpu) = (rss, share);
        let usage = (rss as f64 / self.max_rss as f64).max(share / self.max_cpu);
        if usage > 0.9 {
            self.calm_since = None;
            if self.level < 2 {
                self.level += 1;
                self.apply();
                warn!(
                    rss_mb = rss / 1_000_000,
                    cpu_percent = share * 100.0,
                    shedding = ?self.shed.names(),
                    "over 90% of the agent's resource budget: shedding optional work"
                );
            }
        } else if usage < 0.6 && self.level > 0 {
            let since = *self.calm_since.get_or_insert(now);
            if now.duration_since(since) >= CALM_FOR {
                self.level -= 1;
                self.calm_since = Some(now);
                self.apply();
                info!(shedding = ?self.shed.names(), "back under the resource budget: optional work resumes");
            }
        } else {
            self.calm_since = None;
        }
    }

    fn apply(&self) {
        self.shed.training.store(self.level >= 1, Ordering::Relaxed);
        self.shed
            .processes
            .store(self.level >= 2, Ordering::Relaxed);
    }
}

/// This process's RSS (bytes) and CPU time (seconds), read as the agent
/// collector reads them.
pub fn measure() -> Option<(u64, f64)> {
    use crate::procfs::{own_cpu_seconds, own_rss_bytes};
    Some((own_rss_bytes()? as u64, own_cpu_seconds()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_sheds_training_then_processes_and_takes_them_back_when_calm() {
        let mut b = Budget::new(100 << 20, 0.05);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        b.check(10 << 20, 0.0, at(0));
        assert!(b.shed.names().is_empty());
        // 2% of a core, 95 MiB: over 90% of the memory budget.
        b.check(95 << 20, 0.1, at(5));
        assert_eq!(b.shed.names(), ["detector training"]);
        b.check(96 << 20, 0.2, at(10));
        assert_eq!(b.shed.names(), ["detector training", "process snapshots"]);
        // CPU alone can be the reason too, and nothing more is left to shed.
        b.check(10 << 20, 1.2, at(15));
        assert_eq!(b.shed.names().len(), 2);
        // Calm for a minute: processes come back first, then training.
        b.check(10 << 20, 1.21, at(20));
        b.check(10 << 20, 1.22, at(79));
        assert_eq!(b.shed.names().len(), 2, "not calm for a minute yet");
        b.check(10 << 20, 1.23, at(80));
        assert_eq!(b.shed.names(), ["detector training"]);
        b.check(10 << 20, 1.24, at(140));
        assert!(b.shed.names().is_empty());
        assert!((b.cpu - 0.01 / 60.0).abs() < 1e-6, "{}", b.cpu);
    }

    #[test]
    fn this_process_can_be_measured() {
        let (rss, cpu) = measure().unwrap();
        assert!(rss > 1 << 20 && cpu >= 0.0);
    }
}
