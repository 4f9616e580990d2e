//! Memory and swap: usage by state, utilization, available, OOM kills.
//!
//! | series | kind, unit | from |
//! | --- | --- | --- |
//! | `system.memory.usage{system.memory.state}` used, free, buffers, cached | gauge, By | /proc/meminfo |
//! | `system.memory.limit` | gauge, By | MemTotal |
//! | `system.memory.utilization{system.memory.state="used"}` | gauge, 1 | |
//! | `system.linux.memory.available` | gauge, By | MemAvailable |
//! | `system.paging.usage{system.paging.state}` used, free | gauge, By | SwapTotal, SwapFree |
//! | `system.paging.utilization{system.paging.state="used"}` | gauge, 1 | |
//! | `system.linux.memory.oom_kills` | counter | /proc/vmstat `oom_kill` (kernels from 4.13) |
//!
//! "used" is what `free` calls used: total minus free, buffers, page cache
//! and reclaimable slab.

use std::path::PathBuf;

use ward_shared::SeriesDesc;

use super::{CollectError, Collector, Emitter, HostPaths, LocalId, boot_time_ms, key, read_into};

/// The /proc/meminfo fields Ward reads, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: Option<u64>,
    pub buffers: u64,
    pub cached: u64,
    pub reclaimable: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let mut m = MemInfo::default();
    let mut have_total = false;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let kb: u64 = match rest
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
        {
            Some(v) => v,
            None => continue,
        };
        let bytes = kb * 1024;
        match name {
            "MemTotal" => {
                m.total = bytes;
                have_total = true;
            }
            "MemFree" => m.free = bytes,
            "MemAvailable" => m.available = Some(bytes),
            "Buffers" => m.buffers = bytes,
            "Cached" => m.cached = bytes,
            "SReclaimable" => m.reclaimable = bytes,
            "SwapTotal" => m.swap_total = bytes,
            "SwapFree" => m.swap_free = bytes,
            _ => {}
        }
    }
    have_total.then_some(m)
}

#[derive(Debug)]
struct Ids {
    used: LocalId,
    free: LocalId,
    buffers: LocalId,
    cached: LocalId,
    limit: LocalId,
    utilization: LocalId,
    available: LocalId,
    swap_used: LocalId,
    swap_free: LocalId,
    swap_utilization: LocalId,
}

#[derive(Debug)]
pub struct MemoryCollector {
    meminfo: PathBuf,
    vmstat: PathBuf,
    host: String,
    boot_ms: i64,
    buf: String,
    ids: Option<Ids>,
    oom: Option<Option<LocalId>>,
}

impl MemoryCollector {
    pub fn new(paths: &HostPaths, host: &str) -> Self {
        Self {
            meminfo: paths.proc.join("meminfo"),
            vmstat: paths.proc.join("vmstat"),
            host: host.to_string(),
            boot_ms: boot_time_ms(&paths.proc).unwrap_or(0),
            buf: String::new(),
            ids: None,
            oom: None,
        }
    }

    fn declare(&self, out: &mut Emitter) -> Ids {
        let h = self.host.as_str();
        let mut gauge = |name: &str, labels: &[(&str, &str)], unit: &str, precision: Option<u8>| {
            let mut all = vec![("host.name", h)];
            all.extend_from_slice(labels);
            let mut desc = SeriesDesc::gauge(key(name, &all), unit);
            desc.precision = precision;
            out.declare(desc)
        };
        let state = |s| [("system.memory.state", s)];
        let paging = |s| [("system.paging.state", s)];
        Ids {
            used: gauge("system.memory.usage", &state("used"), "By", None),
            free: gauge("system.memory.usage", &state("free"), "By", None),
            buffers: gauge("system.memory.usage", &state("buffers"), "By", None),
            cached: gauge("system.memory.usage", &state("cached"), "By", None),
            limit: gauge("system.memory.limit", &[], "By", None),
            utilization: gauge("system.memory.utilization", &state("used"), "1", Some(4)),
            available: gauge("system.linux.memory.available", &[], "By", None),
            swap_used: gauge("system.paging.usage", &paging("used"), "By", None),
            swap_free: gauge("system.paging.usage", &paging("free"), "By", None),
            swap_utilization: gauge("system.paging.utilization", &paging("used"), "1", Some(4)),
        }
    }
}

impl Collector for MemoryCollector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        read_into(&self.meminfo, &mut self.buf)?;
        let m = parse_meminfo(&self.buf)
            .ok_or_else(|| CollectError::parse(&self.meminfo, "MemTotal"))?;
        if self.ids.is_none() {
            self.ids = Some(self.declare(out));
        }
        let Some(ids) = &self.ids else { return Ok(()) };
        let used = m
            .total
            .saturating_sub(m.free + m.buffers + m.cached + m.reclaimable);
        out.emit(ids.used, used as f64);
        out.emit(ids.free, m.free as f64);
        out.emit(ids.buffers, m.buffers as f64);
        out.emit(ids.cached, (m.cached + m.reclaimable) as f64);
        out.emit(ids.limit, m.total as f64);
        if m.total > 0 {
            out.emit(ids.utilization, used as f64 / m.total as f64);
        }
        if let Some(a) = m.available {
            out.emit(ids.available, a as f64);
        }
        let swap_used = m.swap_total.saturating_sub(m.swap_free);
        out.emit(ids.swap_used, swap_used as f64);
        out.emit(ids.swap_free, m.swap_free as f64);
        if m.swap_total > 0 {
            out.emit(ids.swap_utilization, swap_used as f64 / m.swap_total as f64);
        }

        // OOM kills: only where the kernel counts them.
        if read_into(&self.vmstat, &mut self.buf).is_ok() {
            let count = self
                .buf
                .lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let id = *self.oom.get_or_insert_with(|| {
                count.map(|_| {
                    out.declare(SeriesDesc::counter(
                        key(
                            "system.linux.memory.oom_kills",
                            &[("host.name", &self.host)],
                        ),
                        "{kill}",
                        self.boot_ms,
                    ))
                })
            });
            if let (Some(id), Some(count)) = (id, count) {
                out.emit(id, count as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::two_ticks;

    const MEMINFO: &str = "MemTotal:       16000000 kB\nMemFree:         2000000 kB\n\
MemAvailable:    9000000 kB\nBuffers:          500000 kB\nCached:          6000000 kB\n\
SReclaimable:     500000 kB\nSwapTotal:       4000000 kB\nSwapFree:        3000000 kB\n";

    #[test]
    fn usage_by_state_like_free_does() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().to_path_buf();
        std::fs::write(proc.join("meminfo"), MEMINFO).unwrap();
        std::fs::write(proc.join("vmstat"), "pgfault 1\noom_kill 3\n").unwrap();
        let paths = HostPaths {
            proc,
            ..HostPaths::default()
        };
        let v = two_ticks(&mut MemoryCollector::new(&paths, "h"));
        let kb = 1024.0;
        assert_eq!(
            v[r#"system.memory.usage{host.name="h",system.memory.state="used"}"#],
            7_000_000.0 * kb
        );
        assert_eq!(
            v[r#"system.memory.usage{host.name="h",system.memory.state="cached"}"#],
            6_500_000.0 * kb
        );
        assert_eq!(
            v[r#"system.memory.utilization{host.name="h",system.memory.state="used"}"#],
            0.4375
        );
        assert_eq!(
            v[r#"system.linux.memory.available{host.name="h"}"#],
            9_000_000.0 * kb
        );
        assert_eq!(
            v[r#"system.paging.usage{host.name="h",system.paging.state="used"}"#],
            1_000_000.0 * kb
        );
        assert_eq!(v[r#"system.linux.memory.oom_kills{host.name="h"}"#], 3.0);
    }

    #[test]
    fn a_meminfo_without_total_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemFree: 1 kB\n").unwrap();
        let paths = HostPaths {
            proc: dir.path().to_path_buf(),
            ..HostPaths::default()
        };
        let err = MemoryCollector::new(&paths, "h")
            .collect(0, &mut Emitter::default())
            .unwrap_err();
        assert!(
            err.to_string().ends_with("meminfo: cannot parse MemTotal"),
            "{err}"
        );
    }

    #[test]
    fn the_real_proc_adds_up() {
        let v = two_ticks(&mut MemoryCollector::new(&HostPaths::default(), "h"));
        let limit = v[r#"system.memory.limit{host.name="h"}"#];
        let parts: f64 = v
            .iter()
            .filter(|(k, _)| k.starts_with("system.memory.usage"))
            .map(|(_, v)| v)
            .sum();
        assert!(
            limit > 0.0 && (parts - limit).abs() / limit < 0.01,
            "{parts} of {limit}"
        );
    }
}
