//! The collectors the config turns on, each with its interval, and the
//! StatsD listener with the Airflow DAG runs it hands to the job book.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};
use ward_shared::time::now_ms;

use crate::budget::Shed;
use crate::collect::agent::AgentCollector;
use crate::collect::cpu::CpuCollector;
use crate::collect::disk::DiskCollector;
use crate::collect::filesystem::FilesystemCollector;
use crate::collect::gpu::{GpuCollector, GpuTable, nvml::NvmlSource};
use crate::collect::memory::MemoryCollector;
use crate::collect::network::NetworkCollector;
use crate::collect::process::{ProcessCollector, ProcessTable};
use crate::collect::statsd::StatsdCounts;
use crate::collect::{Collector, CollectorKind};
use crate::config::Config;
use crate::incidents::SharedIncidents;
use crate::jobs::SharedJobs;
use crate::store::SharedStore;

/// A collector and how often it runs.
pub(super) type Scheduled = (Box<dyn Collector>, Duration);

/// The collectors the config turns on, each with its interval.
pub(super) fn host_collectors(
    config: &Config,
    store: &SharedStore,
    processes: &ProcessTable,
    gpus: &GpuTable,
    shed: &Arc<Shed>,
) -> Vec<Scheduled> {
    let (paths, host) = (&config.collect.paths, config.agent.host_name.as_str());
    let every = config.agent.interval;
    let mut out: Vec<Scheduled> = Vec::new();
    for &kind in &config.collect.enabled {
        let c: Scheduled = match kind {
            CollectorKind::Cpu => (Box::new(CpuCollector::new(paths, host)), every),
            CollectorKind::Memory => (Box::new(MemoryCollector::new(paths, host)), every),
            CollectorKind::Disk => (Box::new(DiskCollector::new(paths, host)), every),
            CollectorKind::Filesystem => (Box::new(FilesystemCollector::new(paths, host)), every),
            CollectorKind::Network => (Box::new(NetworkCollector::new(paths, host)), every),
            CollectorKind::Process => (
                Box::new(
                    ProcessCollector::new(paths, host, processes.clone()).with_shed(shed.clone()),
                ),
                config.collect.process_interval,
            ),
            CollectorKind::Gpu => (
                Box::new(GpuCollector::new(
                    Box::new(NvmlSource::open),
                    host,
                    now_ms(),
                    gpus.clone(),
                )),
                every,
            ),
            CollectorKind::Agent => {
                let store = store.clone();
                let figures = Box::new(move || store.lock().figures());
                (
                    Box::new(AgentCollector::new(host, now_ms(), figures)),
                    every,
                )
            }
        };
        out.push(c);
    }
    out
}

/// The StatsD listener when the config asks for one, with its counters and
/// the address it is bound to; a port someone else holds is logged and the
/// agent runs on without it.
pub(super) fn statsd(
    config: &Config,
    jobs: &SharedJobs,
    incidents: &SharedIncidents,
) -> Option<(Scheduled, Arc<StatsdCounts>, String)> {
    let st = config.statsd.as_ref()?;
    match crate::collect::statsd::listen(&st.listen, st.limits, &config.agent.host_name, now_ms()) {
        Ok((collector, addr)) => {
            info!(%addr, "statsd listening");
            let counts = collector.counts();
            let (jobs, incidents) = (jobs.clone(), incidents.clone());
            let collector = collector.with_job_sink(Box::new(move |e| {
                let mut book = jobs.lock();
                if let Err(err) = book.apply(e, now_ms(), &mut incidents.lock()) {
                    warn!(job = %e.job, error = %err, "airflow dag run refused");
                }
            }));
            Some((
                (Box::new(collector), config.agent.interval),
                counts,
                addr.to_string(),
            ))
        }
        // Someone else has the port (another StatsD daemon): say so, run on.
        Err(e) => {
            error!(addr = %st.listen, error = %e, "statsd listener unavailable");
            None
        }
    }
}
