//! Processes: counts by state, the top ones by CPU and by memory, and CPU
//! and memory per systemd service and container (cgroup v2).
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `system.process.count{system.process.status}` running, sleeping, blocked, stopped, defunct | gauge, {process} |
//! | `system.linux.cgroup.cpu.time{systemd.unit}` / `container.cpu.time{container.id}` | counter, s |
//! | `system.linux.cgroup.memory.usage{systemd.unit}` / `container.memory.usage{container.id}` | gauge, By |
//!
//! The top processes are a snapshot, not series (pids come and go; series
//! per pid would bloat the store): [`ProcessTable`] holds the latest top 10
//! by CPU and top 10 by memory, with pid, name, user and command line, for
//! the API and for incidents ("what was running"). Arguments that look like
//! secrets (`--password=x`, `--token x`, `API_KEY=x`, `https://user:pw@host`)
//! are replaced by `***` before they are kept anywhere.
//!
//! Threads are not counted as processes (sysinfo lists them on Linux unless
//! told not to). `blocked` is the uninterruptible sleep (D) state, the one
//! that shows up as iowait and load.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind, Users};
use ward_shared::SeriesDesc;
pub use ward_shared::api::{ProcessInfo, ProcessSnapshot};

use super::{CollectError, Collector, Emitter, HostPaths, LocalId, NamedSeries, key};

const TOP: usize = 10;
const STATES: [&str; 5] = ["running", "sleeping", "blocked", "stopped", "defunct"];
const SECRET_WORDS: [&str; 9] = [
    "pass",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "pwd",
    "private",
    "signature",
];

/// Shared view of the latest snapshot.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable(Arc<Mutex<ProcessSnapshot>>);

impl ProcessTable {
    pub fn latest(&self) -> ProcessSnapshot {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, snapshot: ProcessSnapshot) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }
}

fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// Redacts secret-looking arguments of a command line.
pub fn redact(args: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push("***".into());
            hide_next = false;
            continue;
        }
        if let Some((k, _)) = arg.split_once('=')
            && looks_secret(k)
        {
            out.push(format!("{k}=***"));
            continue;
        }
        if arg.starts_with('-') && looks_secret(arg.trim_start_matches('-')) {
            out.push(arg.clone());
            hide_next = true;
            continue;
        }
        // Credentials in a URL: scheme://user:password@host
        if let Some(scheme_end) = arg.find("://")
            && let Some(at) = arg[scheme_end + 3..].find('@').map(|i| i + scheme_end + 3)
            && let Some(colon) = arg[scheme_end + 3..at]
                .find(':')
                .map(|i| i + scheme_end + 3)
        {
            out.push(format!("{}:***{}", &arg[..colon], &arg[at..]));
            continue;
        }
        out.push(arg.clone());
    }
    out.join(" ")
}

fn state_of(status: ProcessStatus) -> Option<usize> {
    Some(match status {
        ProcessStatus::Run | ProcessStatus::Waking => 0,
        ProcessStatus::Sleep | ProcessStatus::Idle | ProcessStatus::Parked => 1,
        ProcessStatus::UninterruptibleDiskSleep | ProcessStatus::LockBlocked => 2,
        ProcessStatus::Stop | ProcessStatus::Tracing | ProcessStatus::Suspended => 3,
        ProcessStatus::Zombie | ProcessStatus::Dead => 4,
        _ => return None,
    })
}

/// What a cgroup directory stands for, if Ward reports it.
pub fn classify_cgroup(dir_name: &str) -> Option<(&'static str, String)> {
    if dir_name.ends_with(".service") {
        return Some(("unit", dir_name.to_string()));
    }
    for prefix in ["docker-", "cri-containerd-", "crio-", "libpod-"] {
        if let Some(id) = dir_name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(".scope"))
            && id.len() >= 12
            && id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(("container", id.to_string()));
        }
    }
    None
}

/// CPU seconds and memory bytes of one cgroup v2 directory.
pub fn read_cgroup(dir: &Path) -> Option<(f64, Option<u64>)> {
    let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()?;
    let memory = std::fs::read_to_string(dir.join("memory.current"))
        .ok()
        .and_then(|m| m.trim().parse().ok());
    Some((usec as f64 / 1e6, memory))
}

/// Cgroups worth reporting under `root`, walked a few levels deep.
fn find_cgroups(root: &Path, depth: usize, found: &mut Vec<(PathBuf, &'static str, String)>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match classify_cgroup(name) {
            Some((kind, id)) => found.push((entry.path(), kind, id)),
            None if depth > 0 => find_cgroups(&entry.path(), depth - 1, found),
            None => {}
        }
    }
}

#[derive(Debug)]
pub struct ProcessCollector {
    system: Option<System>,
    users: Option<Users>,
    host: String,
    boot_ms: i64,
    cgroup_root: PathBuf,
    cgroup_v2: bool,
    states: Option<[LocalId; 5]>,
    cgroups: NamedSeries,
    table: ProcessTable,
    found: Vec<(PathBuf, &'static str, String)>,
    /// Set by the resource budget: skip the (costly) process list.
    shed: Option<std::sync::Arc<crate::budget::Shed>>,
}

impl ProcessCollector {
    pub fn new(paths: &HostPaths, host: &str, table: ProcessTable) -> Self {
        let cgroup_root = paths.sys.join("fs/cgroup");
        Self {
            system: None,
            users: None,
            host: host.to_string(),
            boot_ms: super::boot_time_ms(&paths.proc).unwrap_or(0),
            cgroup_v2: cgroup_root.join("cgroup.controllers").exists(),
            cgroup_root,
            states: None,
            cgroups: NamedSeries::default(),
            table,
            found: Vec::new(),
            shed: None,
        }
    }

    /// Skips its work while the resource budget says so.
    pub fn with_shed(mut self, shed: std::sync::Arc<crate::budget::Shed>) -> Self {
        self.shed = Some(shed);
        self
    }

    fn collect_processes(&mut self, ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        let system = match &mut self.system {
            Some(s) => s,
            None => {
                let s = System::new()
                    .map_err(|e| CollectError::Unsupported(format!("process list: {e}")))?;
                self.system.insert(s)
            }
        };
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_user(UpdateKind::OnlyIfNotSet)
                .with_cmd(UpdateKind::OnlyIfNotSet)
                .without_tasks(),
        );
        let mut counts = [0u64; 5];
        let mut all: Vec<&sysinfo::Process> = Vec::with_capacity(system.processes().len());
        for p in system.processes().values() {
            if p.thread_kind().is_some() {
                continue;
            }
            if let Some(i) = state_of(p.status()) {
                counts[i] += 1;
            }
            all.push(p);
        }
        let host = self.host.as_str();
        let ids = *self.states.get_or_insert_with(|| {
            STATES.map(|s| {
                out.declare(SeriesDesc::gauge(
                    key(
                        "system.process.count",
                        &[("host.name", host), ("system.process.status", s)],
                    ),
                    "{process}",
                ))
            })
        });
        for (id, n) in ids.into_iter().zip(counts) {
            out.emit(id, n as f64);
        }

        if self.users.is_none() {
            self.users = Users::new_with_refreshed_list().ok();
        }
        let users = self.users.as_ref();
        let info = |p: &sysinfo::Process| ProcessInfo {
            pid: p.pid().as_u32(),
            name: p.name().to_string_lossy().into_owned(),
            user: p
                .user_id()
                .and_then(|uid| users.and_then(|u| u.get_user_by_id(uid)))
                .map(|u| u.name().to_string())
                .unwrap_or_default(),
            command: redact(
                &p.cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
            ),
            cpu: f64::from(p.cpu_usage()) / 100.0,
            memory_bytes: p.memory(),
        };
        all.sort_by(|a, b| b.cpu_usage().total_cmp(&a.cpu_usage()));
        let by_cpu = all.iter().take(TOP).map(|p| info(p)).collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.memory()));
        let by_memory = all.iter().take(TOP).map(|p| info(p)).collect();
        self.table.set(ProcessSnapshot {
            ts,
            by_cpu,
            by_memory,
        });
        Ok(())
    }

    fn collect_cgroups(&mut self, out: &mut Emitter) {
        if !self.cgroup_v2 {
            return;
        }
        self.found.clear();
        find_cgroups(&self.cgroup_root, 4, &mut self.found);
        let (host, boot) = (self.host.as_str(), self.boot_ms);
        for (dir, kind, id) in &self.found {
            let Some((cpu, memory)) = read_cgroup(dir) else {
                continue;
            };
            let ids = self.cgroups.get(id, out, |id| {
                let (cpu_name, mem_name, label) = if *kind == "unit" {
                    (
                        "system.linux.cgroup.cpu.time",
                        "system.linux.cgroup.memory.usage",
                        "systemd.unit",
                    )
                } else {
                    (
                        "container.cpu.time",
                        "container.memory.usage",
                        "container.id",
                    )
                };
                let labels = [("host.name", host), (label, id)];
                vec![
                    SeriesDesc::counter(key(cpu_name, &labels), "s", boot).with_precision(6),
                    SeriesDesc::gauge(key(mem_name, &labels), "By"),
                ]
            });
            out.emit(ids[0], cpu);
            if let Some(m) = memory {
                out.emit(ids[1], m as f64);
            }
        }
    }
}

impl Collector for ProcessCollector {
    fn name(&self) -> &'static str {
        "process"
    }

    fn collect(&mut self, ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        if self
            .shed
            .as_ref()
            .is_some_and(|s| s.processes.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Ok(());
        }
        self.collect_processes(ts, out)?;
        self.collect_cgroups(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::two_ticks;
    use std::collections::HashMap;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn secrets_in_command_lines_are_redacted() {
        assert_eq!(
            redact(&args("psql --password hunter2 -h db")),
            "psql --password *** -h db"
        );
        assert_eq!(
            redact(&args("app --api-key=abc123 --port=80")),
            "app --api-key=*** --port=80"
        );
        assert_eq!(
            redact(&args("env AWS_SECRET_ACCESS_KEY=xyz run")),
            "env AWS_SECRET_ACCESS_KEY=*** run"
        );
        assert_eq!(
            redact(&args("curl https://alice:s3cret@example.com/x")),
            "curl https://alice:***@example.com/x"
        );
        assert_eq!(redact(&args("sleep 10")), "sleep 10");
    }

    #[test]
    fn cgroups_of_units_and_containers() {
        assert_eq!(
            classify_cgroup("nginx.service"),
            Some(("unit", "nginx.service".into()))
        );
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            classify_cgroup(&format!("docker-{id}.scope")),
            Some(("container", id.into()))
        );
        assert_eq!(classify_cgroup("session-3.scope"), None);
        assert_eq!(classify_cgroup("user.slice"), None);

        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("fs/cgroup");
        let unit = cg.join("system.slice/nginx.service");
        let container = cg.join(format!("system.slice/docker-{id}.scope"));
        for (d, usec, mem) in [(&unit, 2_500_000, 1024), (&container, 500_000, 4096)] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(
                d.join("cpu.stat"),
                format!("usage_usec {usec}\nuser_usec 1\n"),
            )
            .unwrap();
            std::fs::write(d.join("memory.current"), format!("{mem}\n")).unwrap();
        }
        std::fs::write(cg.join("cgroup.controllers"), "cpu memory\n").unwrap();
        let paths = HostPaths {
            sys: dir.path().to_path_buf(),
            ..HostPaths::default()
        };
        let mut c = ProcessCollector::new(&paths, "h", ProcessTable::default());
        let mut out = Emitter::default();
        c.collect_cgroups(&mut out);
        let names: HashMap<_, _> = out
            .declared
            .iter()
            .map(|(id, d)| (*id, d.key.to_string()))
            .collect();
        let v: HashMap<String, f64> = out
            .values
            .iter()
            .map(|(id, v)| (names[id].clone(), *v))
            .collect();
        assert_eq!(
            v[r#"system.linux.cgroup.cpu.time{host.name="h",systemd.unit="nginx.service"}"#],
            2.5
        );
        assert_eq!(
            v[&format!(r#"container.memory.usage{{container.id="{id}",host.name="h"}}"#)],
            4096.0
        );
    }

    #[test]
    fn the_real_process_list_has_this_test_and_counts_states() {
        let table = ProcessTable::default();
        let mut c = ProcessCollector::new(&HostPaths::default(), "h", table.clone());
        let v = two_ticks(&mut c);
        let total: f64 = v
            .iter()
            .filter(|(k, _)| k.starts_with("system.process.count"))
            .map(|(_, v)| v)
            .sum();
        assert!(total >= 2.0, "{v:?}");
        let snap = table.latest();
        assert_eq!(snap.by_memory.len().min(TOP), snap.by_memory.len());
        let me = std::process::id();
        assert!(
            snap.by_cpu
                .iter()
                .chain(&snap.by_memory)
                .any(|p| p.pid == me)
                || snap.by_memory.len() == TOP,
            "this test process should be among the top unless ten others are bigger"
        );
        assert!(
            snap.by_memory
                .windows(2)
                .all(|w| w[0].memory_bytes >= w[1].memory_bytes)
        );
    }
}
