//! Network interfaces: bytes, packets, errors and drops, each way.
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `system.network.io{network.interface.name, network.io.direction}` | counter, By |
//! | `system.network.packet.count{…}` | counter, {packet} |
//! | `system.network.errors{…}` | counter, {error} |
//! | `system.network.packet.dropped{…}` | counter, {packet} |
//!
//! From /proc/net/dev (of the host's network namespace when `proc` is the
//! host's). Every interface is reported, loopback included, as node_exporter does.

use std::path::PathBuf;

use ward_shared::SeriesDesc;

use super::{
    CollectError, Collector, Emitter, HostPaths, NamedSeries, boot_time_ms, key, read_into,
};

/// One interface's counters: (receive, transmit) × (bytes, packets, errors, drops).
pub fn parse_net_dev_line(line: &str) -> Option<(&str, [u64; 8])> {
    let (name, rest) = line.split_once(':')?;
    let f: Vec<u64> = rest
        .split_ascii_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() < 16 {
        return None;
    }
    Some((
        name.trim(),
        [f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11]],
    ))
}

#[derive(Debug)]
pub struct NetworkCollector {
    path: PathBuf,
    host: String,
    boot_ms: i64,
    buf: String,
    series: NamedSeries,
}

impl NetworkCollector {
    pub fn new(paths: &HostPaths, host: &str) -> Self {
        Self {
            path: paths.proc.join("net/dev"),
            host: host.to_string(),
            boot_ms: boot_time_ms(&paths.proc).unwrap_or(0),
            buf: String::new(),
            series: NamedSeries::default(),
        }
    }
}

impl Collector for NetworkCollector {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        read_into(&self.path, &mut self.buf)?;
        let (host, boot) = (self.host.as_str(), self.boot_ms);
        let mut seen = 0;
        // Two header lines, then one line per interface.
        for line in self.buf.lines().skip(2) {
            let (name, values) = parse_net_dev_line(line)
                .ok_or_else(|| CollectError::parse(&self.path, format!("line {line:?}")))?;
            let ids = self.series.get(name, out, |name| {
                let mut descs = Vec::new();
                for direction in ["receive", "transmit"] {
                    for (metric, unit) in [
                        ("system.network.io", "By"),
                        ("system.network.packet.count", "{packet}"),
                        ("system.network.errors", "{error}"),
                        ("system.network.packet.dropped", "{packet}"),
                    ] {
                        descs.push(SeriesDesc::counter(
                            key(
                                metric,
                                &[
                                    ("host.name", host),
                                    ("network.interface.name", name),
                                    ("network.io.direction", direction),
                                ],
                            ),
                            unit,
                            boot,
                        ));
                    }
                }
                descs
            });
            for (id, v) in ids.iter().zip(values) {
                out.emit(*id, v as f64);
            }
            seen += 1;
        }
        if seen == 0 {
            return Err(CollectError::parse(&self.path, "any interface"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::two_ticks;

    #[test]
    fn every_interface_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(
            dir.path().join("net/dev"),
            "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n\
    lo: 3193 29 0 0 0 0 0 0 3193 29 0 0 0 0 0 0\n\
  eth0: 1000 10 1 2 0 0 0 0 500 5 3 4 0 0 0 0\n",
        )
        .unwrap();
        let paths = HostPaths {
            proc: dir.path().to_path_buf(),
            ..HostPaths::default()
        };
        let v = two_ticks(&mut NetworkCollector::new(&paths, "h"));
        let k = |m: &str, dir: &str| {
            format!(
                r#"{m}{{host.name="h",network.interface.name="eth0",network.io.direction="{dir}"}}"#
            )
        };
        assert_eq!(v[&k("system.network.io", "receive")], 1000.0);
        assert_eq!(v[&k("system.network.io", "transmit")], 500.0);
        assert_eq!(v[&k("system.network.errors", "transmit")], 3.0);
        assert_eq!(v[&k("system.network.packet.dropped", "receive")], 2.0);
        assert_eq!(v.len(), 16);
    }

    #[test]
    fn the_real_proc_has_loopback() {
        let v = two_ticks(&mut NetworkCollector::new(&HostPaths::default(), "h"));
        assert!(
            v.keys()
                .any(|k| k.contains(r#"network.interface.name="lo""#)),
            "{:?}",
            v.keys()
        );
    }
}
