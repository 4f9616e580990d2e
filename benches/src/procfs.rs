//! A process's CPU time and memory, read from /proc, for the whole-agent
//! benches.

/// User + system CPU seconds of `pid` (utime + stime, 100 ticks a second).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the agent is running");
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().expect("a number"))
        .collect();
    (f[0] + f[1]) / 100.0
}

/// A `kB` field of /proc/PID/status (`VmRSS:`, `VmHWM:`), in kB.
pub fn status_kb(pid: u32, field: &str) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the agent is running");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("a kB field")
}

/// Builds the release `ward-agent` and returns its path.
pub fn release_agent() -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "ward-agent",
            "--bin",
            "ward-agent",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "building ward-agent failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/ward-agent")
}
