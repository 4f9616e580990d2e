//! Filesystems: space and inodes per mount.
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `system.filesystem.usage{system.device, system.filesystem.mountpoint, system.filesystem.type, system.filesystem.state}` used, free, reserved | gauge, By |
//! | `system.filesystem.utilization{…}` | gauge, 1: used / (used + free), as `df` shows it |
//! | `system.filesystem.inodes.usage{…, system.filesystem.state}` used, free | gauge, {inode} |
//!
//! Mounts come from the host's mountinfo (`<proc>/1/mountinfo`, else
//! `<proc>/self/mountinfo`) and are measured under `root` (so `/host` in a
//! container sees the host's). As node_exporter does by default, pseudo
//! filesystems (proc, sysfs, cgroup, overlay, squashfs, ...) and mounts under
//! /dev, /proc, /sys, /run/credentials and container storage are left out,
//! and a device mounted at several places is reported once, at its first.
//! A mount that cannot be measured (a dead NFS server answers with an error
//! after its timeout) is skipped for that tick; only this collector's thread
//! waits on it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ward_shared::SeriesDesc;

use super::{CollectError, Collector, Emitter, HostPaths, NamedSeries, key, read_into};

const IGNORED_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "erofs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// One line of mountinfo, the parts Ward uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device_id: String,
    pub mountpoint: String,
    pub fstype: String,
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut f = before.split(' ');
    let _id = f.next()?;
    let _parent = f.next()?;
    let device_id = f.next()?.to_string();
    let _root = f.next()?;
    let mountpoint = unescape(f.next()?);
    let mut a = after.split(' ');
    let fstype = a.next()?.to_string();
    let source = unescape(a.next().unwrap_or(""));
    Some(Mount {
        device_id,
        mountpoint,
        fstype,
        source,
    })
}

/// Whether node_exporter's defaults leave this mount out.
pub fn ignored_mount(m: &Mount) -> bool {
    if IGNORED_TYPES.contains(&m.fstype.as_str()) {
        return true;
    }
    let p = m.mountpoint.as_str();
    let under = |dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    under("/dev")
        || under("/proc")
        || under("/sys")
        || p.starts_with("/run/credentials/")
        || p.starts_with("/var/lib/docker/")
        || p.starts_with("/var/lib/containers/storage/")
}

#[derive(Debug)]
pub struct FilesystemCollector {
    mountinfo: [PathBuf; 2],
    root: PathBuf,
    host: String,
    buf: String,
    series: NamedSeries,
}

impl FilesystemCollector {
    pub fn new(paths: &HostPaths, host: &str) -> Self {
        Self {
            mountinfo: [
                paths.proc.join("1/mountinfo"),
                paths.proc.join("self/mountinfo"),
            ],
            root: paths.root.clone(),
            host: host.to_string(),
            buf: String::new(),
            series: NamedSeries::default(),
        }
    }

    fn under_root(&self, mountpoint: &str) -> PathBuf {
        self.root
            .join(Path::new(mountpoint.trim_start_matches('/')))
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        if read_into(&self.mountinfo[0], &mut self.buf).is_err() {
            read_into(&self.mountinfo[1], &mut self.buf)?;
        }
        let text = std::mem::take(&mut self.buf);
        let mut devices = HashSet::new();
        for line in text.lines() {
            let Some(m) = parse_mountinfo_line(line) else {
                continue;
            };
            if ignored_mount(&m) || !devices.insert(m.device_id.clone()) {
                continue;
            }
            let Ok(st) = rustix::fs::statvfs(self.under_root(&m.mountpoint)) else {
                continue;
            };
            if st.f_blocks == 0 {
                continue; // nothing to measure (some virtual filesystems)
            }
            let host = self.host.as_str();
            let ids = self.series.get(&m.mountpoint, out, |mp| {
                let labels = |state: &'static str| {
                    vec![
                        ("host.name", host),
                        ("system.device", m.source.as_str()),
                        ("system.filesystem.mountpoint", mp),
                        ("system.filesystem.state", state),
                        ("system.filesystem.type", m.fstype.as_str()),
                    ]
                };
                let mut d = Vec::new();
                for state in ["used", "free", "reserved"] {
                    d.push(SeriesDesc::gauge(
                        key("system.filesystem.usage", &labels(state)),
                        "By",
                    ));
                }
                d.push(
                    SeriesDesc::gauge(key("system.filesystem.utilization", &labels("used")), "1")
                        .with_precision(4),
                );
                for state in ["used", "free"] {
                    d.push(SeriesDesc::gauge(
                        key("system.filesystem.inodes.usage", &labels(state)),
                        "{inode}",
                    ));
                }
                d
            });
            let frsize = st.f_frsize.max(1) as f64;
            let used = st.f_blocks.saturating_sub(st.f_bfree) as f64 * frsize;
            let free = st.f_bavail as f64 * frsize;
            let reserved = st.f_bfree.saturating_sub(st.f_bavail) as f64 * frsize;
            out.emit(ids[0], used);
            out.emit(ids[1], free);
            out.emit(ids[2], reserved);
            if used + free > 0.0 {
                out.emit(ids[3], used / (used + free));
            }
            if st.f_files > 0 {
                out.emit(ids[4], st.f_files.saturating_sub(st.f_ffree) as f64);
                out.emit(ids[5], st.f_ffree as f64);
            }
        }
        self.buf = text;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::two_ticks;

    #[test]
    fn mountinfo_lines_and_what_is_left_out() {
        let m = parse_mountinfo_line(
            "36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 - ext4 /dev/sdb1 rw,errors=continue",
        )
        .unwrap();
        assert_eq!(m.mountpoint, "/mnt/my disk");
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str(), m.device_id.as_str()),
            ("ext4", "/dev/sdb1", "98:0")
        );
        assert!(!ignored_mount(&m));
        let pseudo = parse_mountinfo_line("22 27 0:21 / /proc rw,relatime - proc proc rw").unwrap();
        assert!(ignored_mount(&pseudo));
        let docker = Mount {
            mountpoint: "/var/lib/docker/overlay2/x".into(),
            fstype: "xfs".into(),
            ..m.clone()
        };
        assert!(ignored_mount(&docker));
        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn the_root_filesystem_is_measured_once_with_sane_numbers() {
        let v = two_ticks(&mut FilesystemCollector::new(&HostPaths::default(), "h"));
        let root_used = v
            .iter()
            .find(|(k, _)| {
                k.starts_with("system.filesystem.usage")
                    && k.contains(r#"system.filesystem.mountpoint="/","#)
                    && k.contains(r#"state="used""#)
            })
            .map(|(_, v)| *v);
        assert!(root_used.is_some_and(|u| u > 0.0), "{v:?}");
        let utilization: Vec<f64> = v
            .iter()
            .filter(|(k, _)| k.starts_with("system.filesystem.utilization"))
            .map(|(_, v)| *v)
            .collect();
        assert!(
            utilization.iter().all(|u| (0.0..=1.0).contains(u)),
            "{utilization:?}"
        );
        assert!(!v.keys().any(|k| k.contains(r#"mountpoint="/proc""#)));
    }
}
