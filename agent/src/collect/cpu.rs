//! CPU: time per logical CPU and mode, utilization, context switches,
//! interrupts, load averages and pressure stall information.
//!
//! | series | kind, unit | from |
//! | --- | --- | --- |
//! | `system.cpu.time{cpu.logical_number, cpu.mode}` | counter, s | /proc/stat `cpuN` |
//! | `system.cpu.utilization{cpu.mode}` | gauge, 1 (whole host) | /proc/stat `cpu`, between ticks |
//! | `system.linux.context_switches` | counter | /proc/stat `ctxt` |
//! | `system.linux.interrupts` | counter | /proc/stat `intr` |
//! | `system.linux.processes.created` | counter | /proc/stat `processes` |
//! | `system.cpu.load_average.{1m,5m,15m}` | gauge | /proc/loadavg |
//! | `system.linux.pressure.stalled{resource, scope}` | counter, s | /proc/pressure/{cpu,memory,io} |
//!
//! Modes follow the semantic conventions: `interrupt` is irq plus softirq;
//! guest time is already inside user and nice. Load averages use the
//! OpenTelemetry Collector's hostmetrics names (the conventions have none);
//! context switches, interrupts and pressure have no convention either and
//! live under `system.linux.*`. Pressure is skipped on kernels without PSI.

use std::path::PathBuf;

use ward_shared::SeriesDesc;

use super::{
    CollectError, Collector, Emitter, HostPaths, LocalId, USER_HZ, boot_time_ms, key, read_into,
};

const MODES: [&str; 7] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "interrupt",
    "steal",
];

/// Jiffies per mode from one /proc/stat `cpu` line.
pub fn parse_cpu_line(rest: &str) -> Option<[u64; 7]> {
    let mut f = rest.split_ascii_whitespace().map(|x| x.parse::<u64>().ok());
    let mut next = || f.next().flatten();
    let (user, nice, system, idle) = (next()?, next()?, next()?, next()?);
    // Fields from iowait on are absent on very old kernels: zero then.
    let iowait = next().unwrap_or(0);
    let irq = next().unwrap_or(0);
    let softirq = next().unwrap_or(0);
    let steal = next().unwrap_or(0);
    Some([user, nice, system, idle, iowait, irq + softirq, steal])
}

/// Pressure totals (µs) of one /proc/pressure file: (some, full).
pub fn parse_pressure(text: &str) -> (Option<u64>, Option<u64>) {
    let total = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))?
            .split_ascii_whitespace()
            .find_map(|kv| kv.strip_prefix("total="))?
            .parse()
            .ok()
    };
    (total("some "), total("full "))
}

/// A /proc/pressure file and its series for `some` and `full`, where the kernel has them.
type PressureFile = (PathBuf, Option<LocalId>, Option<LocalId>);

#[derive(Debug)]
pub struct CpuCollector {
    stat: PathBuf,
    loadavg: PathBuf,
    pressure: PathBuf,
    host: String,
    boot_ms: i64,
    buf: String,
    cores: Vec<[LocalId; 7]>,
    total_util: Option<[LocalId; 7]>,
    prev_total: Option<[u64; 7]>,
    counters: Option<[LocalId; 3]>,
    load: Option<[LocalId; 3]>,
    /// cpu, memory, io × some, full; `None` inside when the kernel lacks it.
    psi: Option<Vec<PressureFile>>,
}

impl CpuCollector {
    pub fn new(paths: &HostPaths, host: &str) -> Self {
        Self {
            stat: paths.proc.join("stat"),
            loadavg: paths.proc.join("loadavg"),
            pressure: paths.proc.join("pressure"),
            host: host.to_string(),
            boot_ms: boot_time_ms(&paths.proc).unwrap_or(0),
            buf: String::new(),
            cores: Vec::new(),
            total_util: None,
            prev_total: None,
            counters: None,
            load: None,
            psi: None,
        }
    }

    fn core_ids(&mut self, cpu: usize, out: &mut Emitter) -> [LocalId; 7] {
        while self.cores.len() <= cpu {
            let n = self.cores.len().to_string();
            let ids = MODES.map(|mode| {
                out.declare(
                    SeriesDesc::counter(
                        key(
                            "system.cpu.time",
                            &[
                                ("cpu.logical_number", &n),
                                ("cpu.mode", mode),
                                ("host.name", &self.host),
                            ],
                        ),
                        "s",
                        self.boot_ms,
                    )
                    .with_precision(2),
                )
            });
            self.cores.push(ids);
        }
        self.cores[cpu]
    }

    fn collect_stat(&mut self, out: &mut Emitter) -> Result<(), CollectError> {
        read_into(&self.stat, &mut self.buf)?;
        let text = std::mem::take(&mut self.buf);
        let mut found = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("cpu ") {
                let modes = parse_cpu_line(rest)
                    .ok_or_else(|| CollectError::parse(&self.stat, "the cpu line"))?;
                self.utilization(modes, out);
                found = true;
            } else if let Some(rest) = line.strip_prefix("cpu") {
                let (n, fields) = rest.split_once(' ').unwrap_or((rest, ""));
                let (Ok(cpu), Some(modes)) = (n.parse::<usize>(), parse_cpu_line(fields)) else {
                    continue;
                };
                let ids = self.core_ids(cpu, out);
                for (id, jiffies) in ids.into_iter().zip(modes) {
                    out.emit(id, jiffies as f64 / USER_HZ);
                }
            } else if let Some(rest) = line
                .strip_prefix("ctxt ")
                .map(|r| (0, r))
                .or_else(|| line.strip_prefix("intr ").map(|r| (1, r)))
                .or_else(|| line.strip_prefix("processes ").map(|r| (2, r)))
            {
                let ids = *self.counters.get_or_insert_with(|| {
                    [
                        ("system.linux.context_switches", "{switch}"),
                        ("system.linux.interrupts", "{interrupt}"),
                        ("system.linux.processes.created", "{process}"),
                    ]
                    .map(|(name, unit)| {
                        out.declare(SeriesDesc::counter(
                            key(name, &[("host.name", &self.host)]),
                            unit,
                            self.boot_ms,
                        ))
                    })
                });
                let (which, value) = rest;
                // `intr` is followed by per-interrupt counts; the first number is the total.
                if let Some(v) = value
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    out.emit(ids[which], v as f64);
                }
            }
        }
        self.buf = text;
        if found {
            Ok(())
        } else {
            Err(CollectError::parse(&self.stat, "a cpu line"))
        }
    }

    fn utilization(&mut self, modes: [u64; 7], out: &mut Emitter) {
        let ids = *self.total_util.get_or_insert_with(|| {
            MODES.map(|mode| {
                out.declare(
                    SeriesDesc::gauge(
                        key(
                            "system.cpu.utilization",
                            &[("cpu.mode", mode), ("host.name", &self.host)],
                        ),
                        "1",
                    )
                    .with_precision(4),
                )
            })
        });
        if let Some(prev) = self.prev_total.replace(modes) {
            let deltas: Vec<u64> = modes
                .iter()
                .zip(prev)
                .map(|(&n, p)| n.saturating_sub(p))
                .collect();
            let total: u64 = deltas.iter().sum();
            if total > 0 {
                for (id, d) in ids.into_iter().zip(deltas) {
                    out.emit(id, d as f64 / total as f64);
                }
            }
        }
    }

    fn collect_load(&mut self, out: &mut Emitter) -> Result<(), CollectError> {
        read_into(&self.loadavg, &mut self.buf)?;
        let ids = *self.load.get_or_insert_with(|| {
            [
                "system.cpu.load_average.1m",
                "system.cpu.load_average.5m",
                "system.cpu.load_average.15m",
            ]
            .map(|name| {
                out.declare(
                    SeriesDesc::gauge(key(name, &[("host.name", &self.host)]), "{thread}")
                        .with_precision(2),
                )
            })
        });
        let mut fields = self.buf.split_ascii_whitespace();
        for id in ids {
            let v: f64 = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| CollectError::parse(&self.loadavg, "the load averages"))?;
            out.emit(id, v);
        }
        Ok(())
    }

    fn collect_pressure(&mut self, out: &mut Emitter) {
        if self.psi.is_none() {
            let host = self.host.clone();
            let mut psi = Vec::new();
            for resource in ["cpu", "memory", "io"] {
                let path = self.pressure.join(resource);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let (some, full) = parse_pressure(&text);
                let declare = |scope: &str, out: &mut Emitter| {
                    out.declare(
                        SeriesDesc::counter(
                            key(
                                "system.linux.pressure.stalled",
                                &[
                                    ("host.name", &host),
                                    ("resource", resource),
                                    ("scope", scope),
                                ],
                            ),
                            "s",
                            self.boot_ms,
                        )
                        .with_precision(6),
                    )
                };
                let some = some.map(|_| declare("some", out));
                let full = full.map(|_| declare("full", out));
                psi.push((path, some, full));
            }
            self.psi = Some(psi);
        }
        for (path, some_id, full_id) in self.psi.iter().flatten() {
            let Ok(()) = read_into(path, &mut self.buf) else {
                continue;
            };
            let (some, full) = parse_pressure(&self.buf);
            for (id, total) in [(some_id, some), (full_id, full)] {
                if let (Some(id), Some(us)) = (id, total) {
                    out.emit(*id, us as f64 / 1e6);
                }
            }
        }
    }
}

impl Collector for CpuCollector {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        self.collect_stat(out)?;
        self.collect_load(out)?;
        self.collect_pressure(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::two_ticks;
    use std::collections::HashMap;

    fn fake_proc(stat: &[&str]) -> (tempfile::TempDir, HostPaths) {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(proc.join("pressure")).unwrap();
        std::fs::write(proc.join("stat"), stat[0]).unwrap();
        std::fs::write(proc.join("loadavg"), "0.52 0.58 0.59 2/1123 4567\n").unwrap();
        std::fs::write(
            proc.join("pressure/cpu"),
            "some avg10=1.00 avg60=0.50 avg300=0.20 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        let paths = HostPaths {
            proc,
            sys: dir.path().join("sys"),
            root: dir.path().to_path_buf(),
        };
        (dir, paths)
    }

    const STAT: &str = "cpu  100 0 50 800 10 5 5 0 0 0\n\
cpu0 60 0 30 400 5 3 2 0 0 0\n\
cpu1 40 0 20 400 5 2 3 0 0 0\n\
intr 12345 1 2 3\nctxt 999\nbtime 1700000000\nprocesses 4321\nprocs_running 3\nprocs_blocked 0\n";

    #[test]
    fn times_utilization_load_and_pressure_from_a_fake_proc() {
        let (_dir, paths) = fake_proc(&[STAT]);
        let mut c = CpuCollector::new(&paths, "h");
        let mut out = Emitter::default();
        c.collect(0, &mut out).unwrap();
        // Second tick: 100 more jiffies, 40 user, 10 system, 50 idle.
        std::fs::write(
            paths.proc.join("stat"),
            STAT.replace("cpu  100 0 50 800", "cpu  140 0 60 850"),
        )
        .unwrap();
        let mut names = HashMap::new();
        for (id, d) in &out.declared {
            names.insert(*id, d.key.to_string());
        }
        let time = out
            .declared
            .iter()
            .find(|(_, d)| d.key.name == "system.cpu.time")
            .unwrap();
        assert_eq!(
            time.1.start_ts,
            Some(1_700_000_000_000),
            "counters start at boot"
        );
        out.clear();
        c.collect(1000, &mut out).unwrap();
        let v: HashMap<String, f64> = out
            .values
            .iter()
            .map(|(id, v)| (names[id].clone(), *v))
            .collect();
        let get = |k: &str| *v.get(k).unwrap_or_else(|| panic!("no {k} in {v:?}"));
        assert_eq!(
            get(r#"system.cpu.time{cpu.logical_number="0",cpu.mode="user",host.name="h"}"#),
            0.6
        );
        assert_eq!(
            get(r#"system.cpu.time{cpu.logical_number="1",cpu.mode="interrupt",host.name="h"}"#),
            0.05
        );
        assert_eq!(
            get(r#"system.cpu.utilization{cpu.mode="user",host.name="h"}"#),
            0.4
        );
        assert_eq!(
            get(r#"system.cpu.utilization{cpu.mode="idle",host.name="h"}"#),
            0.5
        );
        assert_eq!(
            get(r#"system.linux.context_switches{host.name="h"}"#),
            999.0
        );
        assert_eq!(get(r#"system.linux.interrupts{host.name="h"}"#), 12345.0);
        assert_eq!(get(r#"system.cpu.load_average.15m{host.name="h"}"#), 0.59);
        assert_eq!(
            get(r#"system.linux.pressure.stalled{host.name="h",resource="cpu",scope="some"}"#),
            2.5
        );
    }

    #[test]
    fn a_garbled_stat_is_an_error_naming_the_file() {
        let (_dir, paths) = fake_proc(&["nothing useful\n"]);
        let mut c = CpuCollector::new(&paths, "h");
        let err = c
            .collect(0, &mut Emitter::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("proc/stat: cannot parse a cpu line"), "{err}");
    }

    #[test]
    fn the_real_proc_gives_every_cpu() {
        let mut c = CpuCollector::new(&HostPaths::default(), "h");
        let v = two_ticks(&mut c);
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let idle = v
            .keys()
            .filter(|k| k.starts_with("system.cpu.time") && k.contains("\"idle\""))
            .count();
        assert!(idle >= cpus, "{idle} idle series for {cpus} CPUs");
        let util: f64 = v
            .iter()
            .filter(|(k, _)| k.starts_with("system.cpu.utilization"))
            .map(|(_, v)| v)
            .sum();
        assert!(
            (util - 1.0).abs() < 1e-3 || util == 0.0,
            "utilization adds up to {util}"
        );
    }
}
