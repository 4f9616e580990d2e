//! Collectors: one module per source; each turns what the host says into
//! values for a tick, and only that. A collector declares a series once (its
//! description) and then refers to it by a small local id, so that a
//! steady-state tick allocates nothing per sample; the runner's writer
//! hands the values to a [`runner::SampleSink`] (the store, then detection)
//! and is the only part here that sees the store's errors.
//!
//! - [`cpu`] reads /proc/stat, /proc/loadavg, /proc/pressure
//! - [`memory`] reads /proc/meminfo, /proc/vmstat
//! - [`disk`] reads /proc/diskstats
//! - [`filesystem`] reads mounts and statvfs
//! - [`network`] reads /proc/net/dev
//! - [`gpu`] reads NVIDIA GPUs through NVML, loaded at run time
//! - [`process`] reads processes by state, the top ones by CPU and memory, cgroups
//! - [`statsd`] listens for StatsD / DogStatsD packets (Airflow and friends);
//!   [`airflow`] reads Airflow's names and DAG runs in them
//! - [`agent`] reads the agent's own health
//!
//! [`runner`] gives each collector a thread of its own, so that a slow or
//! stuck one (a dead NFS mount) delays nobody, and reports how each is doing.

pub mod agent;
pub mod airflow;
pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod gpu;
pub mod memory;
pub mod network;
pub mod process;
pub mod runner;
pub mod statsd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use thiserror::Error;
use ward_shared::{Labels, SeriesDesc, SeriesKey};

/// Why a collector produced nothing this tick.
#[derive(Debug, Error)]
pub enum CollectError {
    /// The host cannot give this (no /proc/pressure, no GPU driver): logged
    /// once, and the collector is stopped.
    #[error("unsupported on this host: {0}")]
    Unsupported(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot parse {what}")]
    Parse { path: PathBuf, what: String },
}

impl CollectError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CollectError + '_ {
        move |source| CollectError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn parse(path: &Path, what: impl Into<String>) -> CollectError {
        CollectError::Parse {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

/// Where the host's kernel interfaces are: `/proc`, `/sys` and `/` on the
/// host itself; `/host/proc` and so on in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub root: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            proc: "/proc".into(),
            sys: "/sys".into(),
            root: "/".into(),
        }
    }
}

/// A series as a collector knows it: an index into its own declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalId(pub u32);

/// What a collector hands over for one tick.
#[derive(Debug, Default)]
pub struct Emitter {
    next: u32,
    /// Series declared this tick.
    pub declared: Vec<(LocalId, SeriesDesc)>,
    pub values: Vec<(LocalId, f64)>,
}

impl Emitter {
    /// Declares a new series; the returned id stays valid for the collector's life.
    pub fn declare(&mut self, desc: SeriesDesc) -> LocalId {
        let id = LocalId(self.next);
        self.next += 1;
        self.declared.push((id, desc));
        id
    }

    pub fn emit(&mut self, id: LocalId, value: f64) {
        if value.is_finite() {
            self.values.push((id, value));
        }
    }

    /// Empties the tick's values and declarations, keeping the id counter.
    pub fn clear(&mut self) {
        self.declared.clear();
        self.values.clear();
    }
}

/// `[collect]`: what the agent collects, and where the host's kernel
/// interfaces are.
#[derive(Debug, Clone)]
pub struct CollectSettings {
    pub paths: HostPaths,
    /// The collectors that run, in the order they start.
    pub enabled: Vec<CollectorKind>,
    pub process_interval: std::time::Duration,
}

/// The host collectors there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorKind {
    Cpu,
    Memory,
    Disk,
    Filesystem,
    Network,
    Process,
    Gpu,
    Agent,
}

impl CollectorKind {
    /// Every collector and its name, in the order they start.
    pub const NAMES: [(&'static str, CollectorKind); 8] = [
        ("cpu", CollectorKind::Cpu),
        ("memory", CollectorKind::Memory),
        ("disk", CollectorKind::Disk),
        ("filesystem", CollectorKind::Filesystem),
        ("network", CollectorKind::Network),
        ("process", CollectorKind::Process),
        ("gpu", CollectorKind::Gpu),
        ("agent", CollectorKind::Agent),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }
}

/// What every collector does.
pub trait Collector: Send {
    /// Short and stable: "cpu", "disk"; used in logs, status and labels.
    fn name(&self) -> &'static str;

    /// Reads the source and emits the values for the tick stamped `ts` (ms).
    fn collect(&mut self, ts: i64, out: &mut Emitter) -> Result<(), CollectError>;
}

/// Series keyed by a device-like name, each with a fixed set of metrics:
/// looking one up by `&str` allocates nothing once it exists.
#[derive(Debug, Default)]
pub struct NamedSeries {
    ids: HashMap<String, Vec<LocalId>>,
}

impl NamedSeries {
    /// The ids of `name`'s series, declaring them with `make` on first sight.
    pub fn get(
        &mut self,
        name: &str,
        out: &mut Emitter,
        make: impl FnOnce(&str) -> Vec<SeriesDesc>,
    ) -> &[LocalId] {
        if !self.ids.contains_key(name) {
            let ids = make(name).into_iter().map(|d| out.declare(d)).collect();
            self.ids.insert(name.to_string(), ids);
        }
        self.ids.get(name).map_or(&[], Vec::as_slice)
    }
}

/// A series key from a name and label pairs that the collector controls.
/// Label values come from the host (device names) and are kept as they are;
/// only a bug in a collector's own names could fail, and that yields a key
/// without labels rather than a crash.
pub fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    let labels = Labels::new(labels.iter().copied()).unwrap_or_default();
    SeriesKey::new(name, labels.clone()).unwrap_or(SeriesKey {
        name: name.to_string(),
        labels,
    })
}

/// Reads a whole (small) file from /proc or /sys.
pub fn read(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(CollectError::io(path))
}

/// Reads a file into `buf`, reusing its allocation.
pub fn read_into(path: &Path, buf: &mut String) -> Result<(), CollectError> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(buf))
        .map(|_| ())
        .map_err(CollectError::io(path))
}

pub use crate::procfs::USER_HZ;

/// Seconds since the epoch at which the host booted, for counters' start time.
pub fn boot_time_ms(proc: &Path) -> Option<i64> {
    let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(secs * 1000)
}

#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashMap;

    use super::{Collector, Emitter};

    /// Ticks a collector, keeping the names of the series it declared.
    #[derive(Default)]
    pub struct Ticks {
        /// One emitter for the collector's life, as the runner keeps it: ids stay unique.
        out: Emitter,
        names: HashMap<super::LocalId, String>,
    }

    impl Ticks {
        /// One tick at `ts`: `series -> value`.
        pub fn tick(&mut self, c: &mut dyn Collector, ts: i64) -> HashMap<String, f64> {
            self.out.clear();
            c.collect(ts, &mut self.out).unwrap();
            for (id, d) in &self.out.declared {
                self.names.insert(*id, d.key.to_string());
            }
            self.out
                .values
                .iter()
                .map(|(id, v)| (self.names[id].clone(), *v))
                .collect()
        }
    }

    /// Runs a collector twice and returns `series -> value` of the second tick.
    pub fn two_ticks(c: &mut dyn Collector) -> HashMap<String, f64> {
        let mut t = Ticks::default();
        t.tick(c, 0);
        t.tick(c, 1000)
    }
}
