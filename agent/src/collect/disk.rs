//! Block devices: bytes, operations, merges, time, queue depth, latency.
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `system.disk.io{system.device, disk.io.direction}` | counter, By |
//! | `system.disk.operations{…}` | counter, {operation} |
//! | `system.disk.merged{…}` | counter, {operation} |
//! | `system.disk.operation_time{…}` | counter, s |
//! | `system.disk.io_time{system.device}` | counter, s (busy time) |
//! | `system.disk.weighted_io_time{system.device}` | counter, s |
//! | `system.disk.pending_operations{system.device}` | gauge, {operation} (queue depth) |
//! | `system.linux.disk.await{…}` | gauge, s: mean time per operation over the last tick |
//!
//! From /proc/diskstats. Like node_exporter, partitions and loop, RAM and
//! floppy devices are left out (`sda1`, `nvme0n1p2`, `loop3`, `zram0`).
//! `await` (iostat's name) has no convention; the rest follow the
//! OpenTelemetry Collector's hostmetrics receiver.

use std::collections::HashMap;
use std::path::PathBuf;

use ward_shared::SeriesDesc;

use super::{
    CollectError, Collector, Emitter, HostPaths, NamedSeries, boot_time_ms, key, read_into,
};

const SECTOR: f64 = 512.0;

/// The counters of one /proc/diskstats line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    pub in_progress: u64,
    pub io_ms: u64,
    pub weighted_ms: u64,
}

pub fn parse_diskstats_line(line: &str) -> Option<(&str, DiskStats)> {
    let mut f = line.split_ascii_whitespace();
    let _major = f.next()?;
    let _minor = f.next()?;
    let name = f.next()?;
    let mut n = || f.next().and_then(|v| v.parse::<u64>().ok());
    Some((
        name,
        DiskStats {
            reads: n()?,
            reads_merged: n()?,
            sectors_read: n()?,
            read_ms: n()?,
            writes: n()?,
            writes_merged: n()?,
            sectors_written: n()?,
            write_ms: n()?,
            in_progress: n()?,
            io_ms: n()?,
            weighted_ms: n()?,
        },
    ))
}

/// Partitions and pseudo devices, which node_exporter leaves out by default.
pub fn ignored_device(name: &str) -> bool {
    let digits_after = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    if ["ram", "zram", "loop", "fd"]
        .iter()
        .any(|p| digits_after(p))
    {
        return true;
    }
    // sda1, hdb2, vdc3, xvda1: a letter-named disk followed by a partition number.
    for prefix in ["sd", "hd", "vd", "xvd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            let tail = &rest[letters..];
            if letters > 0 && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return true;
            }
        }
    }
    // nvme0n1p2, mmcblk0p1.
    name.rsplit_once('p').is_some_and(|(head, part)| {
        (head.starts_with("nvme") || head.starts_with("mmcblk"))
            && !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && head.bytes().last().is_some_and(|b| b.is_ascii_digit())
    })
}

#[derive(Debug)]
pub struct DiskCollector {
    path: PathBuf,
    host: String,
    boot_ms: i64,
    buf: String,
    series: NamedSeries,
    prev: HashMap<String, DiskStats>,
}

impl DiskCollector {
    pub fn new(paths: &HostPaths, host: &str) -> Self {
        Self {
            path: paths.proc.join("diskstats"),
            host: host.to_string(),
            boot_ms: boot_time_ms(&paths.proc).unwrap_or(0),
            buf: String::new(),
            series: NamedSeries::default(),
            prev: HashMap::new(),
        }
    }
}

fn describe(host: &str, boot: i64, device: &str) -> Vec<SeriesDesc> {
    let mut descs = Vec::new();
    for direction in ["read", "write"] {
        let labels = [
            ("disk.io.direction", direction),
            ("host.name", host),
            ("system.device", device),
        ];
        descs.push(SeriesDesc::counter(
            key("system.disk.io", &labels),
            "By",
            boot,
        ));
        descs.push(SeriesDesc::counter(
            key("system.disk.operations", &labels),
            "{operation}",
            boot,
        ));
        descs.push(SeriesDesc::counter(
            key("system.disk.merged", &labels),
            "{operation}",
            boot,
        ));
        descs.push(
            SeriesDesc::counter(key("system.disk.operation_time", &labels), "s", boot)
                .with_precision(3),
        );
        descs.push(
            SeriesDesc::gauge(key("system.linux.disk.await", &labels), "s").with_precision(6),
        );
    }
    let labels = [("host.name", host), ("system.device", device)];
    descs.push(
        SeriesDesc::counter(key("system.disk.io_time", &labels), "s", boot).with_precision(3),
    );
    descs.push(
        SeriesDesc::counter(key("system.disk.weighted_io_time", &labels), "s", boot)
            .with_precision(3),
    );
    descs.push(SeriesDesc::gauge(
        key("system.disk.pending_operations", &labels),
        "{operation}",
    ));
    descs
}

/// Mean ms per operation between two readings, if any completed.
fn await_s(ops: u64, prev_ops: u64, ms: u64, prev_ms: u64) -> Option<f64> {
    let n = ops.checked_sub(prev_ops)?;
    let t = ms.checked_sub(prev_ms)?;
    (n > 0).then(|| t as f64 / n as f64 / 1000.0)
}

impl Collector for DiskCollector {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        read_into(&self.path, &mut self.buf)?;
        let (host, boot) = (self.host.as_str(), self.boot_ms);
        for line in self.buf.lines() {
            let (name, s) = parse_diskstats_line(line)
                .ok_or_else(|| CollectError::parse(&self.path, format!("line {line:?}")))?;
            if ignored_device(name) {
                continue;
            }
            let ids = self.series.get(name, out, |d| describe(host, boot, d));
            let prev = self.prev.get(name);
            let per_direction = [
                (
                    s.sectors_read,
                    s.reads,
                    s.reads_merged,
                    s.read_ms,
                    prev.map(|p| (p.reads, p.read_ms)),
                ),
                (
                    s.sectors_written,
                    s.writes,
                    s.writes_merged,
                    s.write_ms,
                    prev.map(|p| (p.writes, p.write_ms)),
                ),
            ];
            for (d, (sectors, ops, merged, ms, before)) in per_direction.into_iter().enumerate() {
                let base = d * 5;
                out.emit(ids[base], sectors as f64 * SECTOR);
                out.emit(ids[base + 1], ops as f64);
                out.emit(ids[base + 2], merged as f64);
                out.emit(ids[base + 3], ms as f64 / 1000.0);
                if let Some(lat) = before.and_then(|(po, pm)| await_s(ops, po, ms, pm)) {
                    out.emit(ids[base + 4], lat);
                }
            }
            out.emit(ids[10], s.io_ms as f64 / 1000.0);
            out.emit(ids[11], s.weighted_ms as f64 / 1000.0);
            out.emit(ids[12], s.in_progress as f64);
            match self.prev.get_mut(name) {
                Some(p) => *p = s,
                None => {
                    self.prev.insert(name.to_string(), s);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_pseudo_devices_are_left_out() {
        for name in [
            "sda1",
            "vdb12",
            "xvda1",
            "nvme0n1p2",
            "mmcblk0p1",
            "loop3",
            "ram0",
            "zram1",
            "fd0",
        ] {
            assert!(ignored_device(name), "{name} should be left out");
        }
        for name in [
            "sda", "vdb", "nvme0n1", "mmcblk0", "dm-0", "md127", "sr0", "loopback",
        ] {
            assert!(!ignored_device(name), "{name} should be kept");
        }
    }

    #[test]
    fn bytes_operations_and_latency_between_ticks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("diskstats");
        let line = |reads: u64, read_ms: u64| {
            format!(
                " 259 0 nvme0n1 {reads} 3 2000 {read_ms} 50 1 800 100 2 400 700 0 0 0 0\n 259 1 nvme0n1p1 1 0 8 1 0 0 0 0 0 1 1 0 0 0 0\n"
            )
        };
        std::fs::write(&file, line(100, 300)).unwrap();
        let paths = HostPaths {
            proc: dir.path().to_path_buf(),
            ..HostPaths::default()
        };
        let mut c = DiskCollector::new(&paths, "h");
        let mut out = Emitter::default();
        c.collect(0, &mut out).unwrap();
        let names: HashMap<_, _> = out
            .declared
            .iter()
            .map(|(id, d)| (*id, d.key.to_string()))
            .collect();
        assert!(
            names
                .values()
                .all(|n| n.contains(r#"system.device="nvme0n1""#)),
            "the partition is left out"
        );
        // 20 more reads taking 100 ms: 5 ms each.
        std::fs::write(&file, line(120, 400)).unwrap();
        out.clear();
        c.collect(1000, &mut out).unwrap();
        let v: HashMap<String, f64> = out
            .values
            .iter()
            .map(|(id, v)| (names[id].clone(), *v))
            .collect();
        let k = |m: &str| {
            format!(r#"{m}{{disk.io.direction="read",host.name="h",system.device="nvme0n1"}}"#)
        };
        assert_eq!(v[&k("system.disk.io")], 2000.0 * 512.0);
        assert_eq!(v[&k("system.disk.operations")], 120.0);
        assert_eq!(v[&k("system.linux.disk.await")], 0.005);
        assert_eq!(
            v[r#"system.disk.pending_operations{host.name="h",system.device="nvme0n1"}"#],
            2.0
        );
        assert_eq!(
            v[r#"system.disk.io_time{host.name="h",system.device="nvme0n1"}"#],
            0.4
        );
    }

    #[test]
    fn a_short_line_is_an_error_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("diskstats"), "8 0 sda 1 2\n").unwrap();
        let paths = HostPaths {
            proc: dir.path().to_path_buf(),
            ..HostPaths::default()
        };
        let err = DiskCollector::new(&paths, "h")
            .collect(0, &mut Emitter::default())
            .unwrap_err();
        assert!(err.to_string().contains(r#"line "8 0 sda 1 2""#), "{err}");
    }
}
