//! `ward-agent job run --name NAME -- COMMAND...`: runs a command as a job
//! run, with its output passed through, and reports it to the local agent.
//!
//! What a run records: start, end, exit code or the signal that killed it,
//! duration, CPU time (user + system of the command and every descendant
//! it waited for, from this process's `cutime`/`cstime`), peak RSS (the
//! largest sum over the command's process tree, sampled every 250 ms, or
//! the command's own high-water mark if larger) and peak GPU memory of the
//! tree when NVML is there.
//!
//! Reports go to the agent's API; when it cannot be reached, the run's
//! events are written to the spool (see [`crate::jobs::spool`]) and the agent
//! takes them in when it is back. The exit code is the command's, or
//! 128 + the signal number when a signal killed it (as shells do); 127 when
//! the command could not be started.
//!
//! SIGTERM and SIGHUP sent to the wrapper are passed to the command; SIGINT
//! is not (from a terminal the command gets it already, being in the same
//! process group), but it does not stop the wrapper from reporting.
//!
//! A client of the agent: it runs beside it, not inside it, and reaches it
//! through the API or the spool only.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use ward_shared::client::{Client, ClientError};
use ward_shared::jobs::{JobEvent, JobEventKind};

use crate::collect::gpu::GpuSource;
use ward_shared::time::now_ms;

use crate::procfs::USER_HZ as TICKS_PER_S;

/// Opens NVML (or a fake) to measure the run's GPU memory.
pub type OpenGpus = fn() -> Result<Box<dyn GpuSource>, String>;
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// What to run and where to report.
#[derive(Debug)]
pub struct RunSpec {
    pub name: String,
    pub expect_every: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub command: Vec<OsString>,
    pub client: Client,
    pub spool: PathBuf,
    pub heartbeat: Duration,
    /// Opens NVML (or a fake) to measure GPU memory; `None`: not measured.
    pub gpus: Option<OpenGpus>,
    pub proc_path: PathBuf,
}

/// How it went.
#[derive(Debug)]
pub struct Outcome {
    pub exit_code: i32,
    /// Where the report went when the agent could not be reached.
    pub spooled: Option<PathBuf>,
}

/// Sends events in order; what cannot be sent waits in `pending`.
struct Reporter {
    client: Client,
    pending: Vec<JobEvent>,
    warned: bool,
}

impl Reporter {
    async fn report(&mut self, event: JobEvent, spool: &Path) {
        self.pending.push(event);
        while let Some(first) = self.pending.first() {
            match self.client.job_event(first).await {
                Ok(_) => {
                    self.pending.remove(0);
                }
                // Refused for what it says: spooling would not change that.
                Err(ClientError::Refused {
                    status: 400,
                    message,
                }) => {
                    eprintln!("ward-agent job run: the agent refused a report: {message}");
                    self.pending.remove(0);
                }
                Err(e) => {
                    if !self.warned {
                        eprintln!(
                            "ward-agent job run: cannot report to the agent ({e}); the run will be spooled in {} and delivered when the agent is back",
                            spool.display()
                        );
                        self.warned = true;
                    }
                    return;
                }
            }
        }
    }
}

/// Runs the job. A report that neither the agent nor the spool took is
/// said on standard error; the exit code is the command's all the same.
pub async fn run(spec: RunSpec) -> Outcome {
    let started = now_ms();
    let run_id = format!("{}-{}", started, std::process::id());
    let mut reporter = Reporter {
        client: spec.client.clone(),
        pending: Vec::new(),
        warned: false,
    };
    let mut start = JobEvent::new(&spec.name, &run_id, JobEventKind::Start);
    start.at = Some(started);
    start.expect_every_s = spec.expect_every.map(|d| d.as_secs_f64());
    start.max_duration_s = spec.max_duration.map(|d| d.as_secs_f64());
    reporter.report(start, &spec.spool).await;

    let cpu_before = children_cpu_seconds(&spec.proc_path);
    let mut finish = JobEvent::new(&spec.name, &run_id, JobEventKind::Finish);
    let exit_code = match spawn(&spec.command) {
        Err(e) => {
            eprintln!(
                "ward-agent job run: cannot run {:?}: {e}",
                spec.command
                    .first()
                    .map(|c| c.to_string_lossy())
                    .unwrap_or_default()
            );
            finish.exit_code = Some(127);
            127
        }
        Ok(mut child) => {
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = child.id().map(|pid| {
                let (stop, proc_path, gpus) = (stop.clone(), spec.proc_path.clone(), spec.gpus);
                std::thread::spawn(move || sample(pid, &proc_path, gpus, &stop))
            });
            let status = supervise(&mut child, &spec, &run_id, &mut reporter).await;
            stop.store(true, Ordering::Relaxed);
            if let Some(peaks) = sampler.and_then(|s| s.join().ok()) {
                finish.peak_rss_bytes = (peaks.rss > 0).then_some(peaks.rss);
                finish.gpu_memory_bytes = (peaks.gpu > 0).then_some(peaks.gpu);
            }
            use std::os::unix::process::ExitStatusExt;
            match status.map(|s| (s.code(), s.signal())) {
                Ok((Some(code), _)) => {
                    finish.exit_code = Some(code);
                    code
                }
                Ok((None, Some(sig))) => {
                    finish.signal = Some(sig);
                    128 + sig
                }
                Ok((None, None)) => 1,
                Err(e) => {
                    eprintln!("ward-agent job run: lost track of the command: {e}");
                    finish.success = Some(false);
                    1
                }
            }
        }
    };
    let ended = now_ms();
    finish.at = Some(ended);
    finish.duration_s = Some((ended - started) as f64 / 1000.0);
    if let (Some(before), Some(after)) = (cpu_before, children_cpu_seconds(&spec.proc_path)) {
        finish.cpu_seconds = Some((after - before).max(0.0));
    }
    reporter.report(finish, &spec.spool).await;
    let spooled = if reporter.pending.is_empty() {
        None
    } else {
        match crate::jobs::spool::write(&spec.spool, started, &run_id, &reporter.pending) {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!(
                    "ward-agent job run: the run could not be spooled in {}: {e}; it is not reported",
                    spec.spool.display()
                );
                None
            }
        }
    };
    Outcome { exit_code, spooled }
}

fn spawn(command: &[OsString]) -> std::io::Result<tokio::process::Child> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given"))?;
    tokio::process::Command::new(program).args(args).spawn()
}

/// Waits for the command, sending heartbeats and passing signals on.
async fn supervise(
    child: &mut tokio::process::Child,
    spec: &RunSpec,
    run_id: &str,
    reporter: &mut Reporter,
) -> std::io::Result<std::process::ExitStatus> {
    let (mut term, mut hup, mut int) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
        signal(SignalKind::interrupt())?,
    );
    let mut beat = tokio::time::interval(spec.heartbeat);
    beat.tick().await;
    loop {
        tokio::select! {
            status = child.wait() => return status,
            _ = beat.tick() => {
                let mut e = JobEvent::new(&spec.name, run_id, JobEventKind::Heartbeat);
                e.at = Some(now_ms());
                reporter.report(e, &spec.spool).await;
            }
            _ = term.recv() => forward(child, rustix::process::Signal::TERM),
            _ = hup.recv() => forward(child, rustix::process::Signal::HUP),
            // The terminal sent it to the whole process group already.
            _ = int.recv() => {}
        }
    }
}

fn forward(child: &tokio::process::Child, sig: rustix::process::Signal) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// User + system seconds of the children this process has waited for.
fn children_cpu_seconds(proc_path: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(proc_path.join("self/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 16 and 17 of stat(5), counting from 1 with pid and comm first.
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) / TICKS_PER_S)
}

#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    rss: u64,
    gpu: u64,
}

/// Samples the process tree under `root` until `stop`.
fn sample(root: u32, proc_path: &Path, gpus: Option<OpenGpus>, stop: &AtomicBool) -> Peaks {
    let mut source = gpus.and_then(|open| open().ok());
    let mut peaks = Peaks::default();
    while !stop.load(Ordering::Relaxed) {
        let tree = tree(proc_path, root);
        let rss: u64 = tree
            .iter()
            .filter_map(|&p| status_kb(proc_path, p, "VmRSS:"))
            .sum();
        let hwm = status_kb(proc_path, root, "VmHWM:").unwrap_or(0);
        peaks.rss = peaks.rss.max(rss * 1024).max(hwm * 1024);
        if let Some(src) = source.as_mut()
            && let Ok(readings) = src.read()
        {
            let gpu: u64 = readings
                .iter()
                .flat_map(|r| r.processes.iter())
                .filter(|p| tree.contains(&p.pid))
                .filter_map(|p| p.memory_bytes)
                .sum();
            peaks.gpu = peaks.gpu.max(gpu);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    peaks
}

/// `root` and its descendants, from /proc/*/stat.
fn tree(proc_path: &Path, root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir(proc_path) {
        for entry in dir.filter_map(Result::ok) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// A `kB` line of /proc/PID/status.
fn status_kb(proc_path: &Path, pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(proc_path.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use ward_shared::api::{GpuProcess, GpuReading};

    static JOB_PID: AtomicU32 = AtomicU32::new(0);

    /// One GPU with two processes: the job's and someone else's.
    fn fake_gpus() -> Result<Box<dyn GpuSource>, String> {
        let fake = crate::collect::gpu::FakeGpus::default();
        let proc = |pid, gib: u64| GpuProcess {
            pid,
            memory_bytes: Some(gib << 30),
            sm_utilization: None,
        };
        fake.readings.lock().unwrap().push(GpuReading {
            uuid: "GPU-1".into(),
            processes: vec![proc(JOB_PID.load(Ordering::Relaxed), 3), proc(1, 20)],
            ..GpuReading::default()
        });
        Ok(Box::new(fake))
    }

    #[test]
    fn the_peaks_count_the_jobs_own_processes_only() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5"])
            .spawn()
            .unwrap();
        JOB_PID.store(child.id(), Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (stop, pid) = (stop.clone(), child.id());
            std::thread::spawn(move || sample(pid, Path::new("/proc"), Some(fake_gpus), &stop))
        };
        std::thread::sleep(Duration::from_millis(600));
        stop.store(true, Ordering::Relaxed);
        let peaks = sampler.join().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            peaks.gpu,
            3 << 30,
            "the job's 3 GiB, not the other process's 20"
        );
        assert!(
            peaks.rss > 100 << 10,
            "sh and sleep have some resident memory: {peaks:?}"
        );
    }

    #[test]
    fn the_tree_of_this_process_holds_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let t = tree(Path::new("/proc"), me);
        assert_eq!(t[0], me);
        assert!(t.contains(&child.id()), "{t:?} lacks {}", child.id());
        assert!(status_kb(Path::new("/proc"), me, "VmRSS:").unwrap() > 100);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(children_cpu_seconds(Path::new("/proc")).is_some());
    }
}
