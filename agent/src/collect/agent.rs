//! The agent's own health: memory, CPU time, and how much the store holds.
//!
//! | series | kind, unit |
//! | --- | --- |
//! | `ward.agent.memory.rss` | gauge, By (/proc/self/status VmRSS) |
//! | `ward.agent.cpu.time` | counter, s (/proc/self/stat utime + stime) |
//! | `ward.store.size` | gauge, By: what the disk budget counts |
//! | `ward.store.samples` | counter: samples accepted since start |

use ward_shared::SeriesDesc;

use super::{CollectError, Collector, Emitter, LocalId, key};
use crate::procfs::{own_cpu_seconds, own_rss_bytes};

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
