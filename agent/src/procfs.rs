//! What this process reads of itself in /proc, for the resource budget and
//! the agent collector alike, and the clock tick of /proc's CPU times.
//!
//! Owns: reading `/proc/self`. Must not: register or write series (the
//! agent collector does that).

/// The clock tick of /proc/stat and /proc/<pid>/stat times (USER_HZ), which
/// Linux fixes at 100 on every architecture it exports to user space.
pub const USER_HZ: f64 = 100.0;

/// Resident set size of this process, in bytes.
pub fn own_rss_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// User plus system CPU time of this process, in seconds.
pub fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the parenthesised command: state is field 3, utime and stime 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}
