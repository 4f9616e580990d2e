//! What the whole agent costs: CPU and memory of the real `ward-agent`,
//! every collector on at its default interval, read from /proc.
//!
//! Builds the release binary, starts it on a fresh data directory, lets it
//! warm up for 10 s, then measures for `WARD_BENCH_SECONDS` (default 60):
//! CPU time (utime + stime from /proc/PID/stat) over wall time, and RSS
//! (VmRSS now, VmHWM as the peak) from /proc/PID/status.
//!
//! Run: `cargo bench -p ward-benches --bench agent_overhead`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ward_benches::procfs::{cpu_seconds, release_agent, status_kb};

fn main() {
    let seconds: u64 = std::env::var("WARD_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let agent = release_agent();

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut child = Command::new(&agent)
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WARD_LOG_LEVEL", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the agent starts");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(10));
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let mut rss_samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(5));
        rss_samples.push(status_kb(pid, "VmRSS:"));
    }
    let (cpu1, wall) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
    let peak = status_kb(pid, "VmHWM:");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mean_rss = rss_samples.iter().sum::<f64>() / rss_samples.len().max(1) as f64;
    println!("machine:        {cores} CPUs");
    println!(
        "measured:       {wall:.0} s after a 10 s warm-up, every collector at its default interval"
    );
    println!(
        "cpu:            {:.3}% of one core ({:.2} s CPU)",
        (cpu1 - cpu0) / wall * 100.0,
        cpu1 - cpu0
    );
    println!(
        "rss:            {:.1} MB mean, {:.1} MB last, {:.1} MB peak",
        mean_rss / 1024.0,
        rss_samples.last().copied().unwrap_or(0.0) / 1024.0,
        peak / 1024.0
    );
}
