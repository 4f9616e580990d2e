//! The agent's own health: memory, CPU time, and how much the store holds.
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `ward.agent.memory.rss` | gauge, By (/proc/self/status VmRSS) |
//! | `ward.agent.cpu.time` | counter, s (/proc/self/stat utime + stime) |
//! | `ward.store.size` | gauge, By: what the disk budget counts |
//! | `ward.store.samples` | counter: samples accepted since start |

use ward_shared::SeriesDesc;

use super::{CollectError, Collector, Emitter, LocalId, USER_HZ, key};

/// What the store says of itself: (bytes stored, samples accepted).
pub type StoreFigures = Box<dyn Fn() -> (u64, u64) + Send>;

pub struct AgentCollector {
    host: String,
    start_ms: i64,
    figures: StoreFigures,
    ids: Option<[LocalId; 4]>,
}

impl std::fmt::Debug for AgentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCollector")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl AgentCollector {
    pub fn new(host: &str, start_ms: i64, figures: StoreFigures) -> Self {
        Self {
            host: host.to_string(),
            start_ms,
            figures,
            ids: None,
        }
    }
}

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

impl Collector for AgentCollector {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn collect(&mut self, _ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        let (host, start) = (self.host.as_str(), self.start_ms);
        let ids = *self.ids.get_or_insert_with(|| {
            let l = [("host.name", host)];
            [
                out.declare(SeriesDesc::gauge(key("ward.agent.memory.rss", &l), "By")),
                out.declare(
                    SeriesDesc::counter(key("ward.agent.cpu.time", &l), "s", start)
                        .with_precision(2),
                ),
                out.declare(SeriesDesc::gauge(key("ward.store.size", &l), "By")),
                out.declare(SeriesDesc::counter(
                    key("ward.store.samples", &l),
                    "{sample}",
                    start,
                )),
            ]
        });
        if let Some(rss) = own_rss_bytes() {
            out.emit(ids[0], rss);
        }
        if let Some(cpu) = own_cpu_seconds() {
            out.emit(ids[1], cpu);
        }
        let (stored, accepted) = (self.figures)();
        out.emit(ids[2], stored as f64);
        out.emit(ids[3], accepted as f64);
        Ok(())
    }
}
