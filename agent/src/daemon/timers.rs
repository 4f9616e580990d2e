//! The agent's timers, on the async runtime:
//! - flush: every `store.flush_interval`, make accepted samples durable;
//! - maintain: every minute, seal idle windows and apply retention;
//! - health: every second, job clocks (overruns, missed runs), incidents
//!   that have been quiet long enough, and the books' series; every 5 s the
//!   resource budget and the job spool, every 10 s the static rules, every
//!   minute free heap pages handed back;
//! - status: every 5 s, the status file.
//!
//! A timer whose work fails ten times in a row stops the agent (see
//! [`every`]); a full disk is waited out instead.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use ward_shared::time::now_ms;

use crate::budget::Budget;
use crate::collect::gpu::GpuTable;
use crate::incidents::SharedIncidents;
use crate::jobs::SharedJobs;
use crate::jobs::spool::SpoolCounts;
use crate::rules::Rules;
use crate::store::{SharedStore, StoreError};
use crate::sync::Shared;
use crate::telemetry::BookSeries;

pub(super) const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
pub(super) const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Job clocks (overruns, missed runs) and incident auto-resolution.
pub(super) const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// The resource budget is checked every this many health ticks.
const BUDGET_EVERY_TICKS: u64 = 5;
/// Health ticks between handing free heap pages back to the system.
const RELEASE_EVERY_TICKS: u64 = 60;
/// Static rules run every this many health ticks.
const RULES_EVERY_TICKS: u64 = 10;
/// The spool is read every this many health ticks.
const SPOOL_EVERY_TICKS: u64 = 5;

/// A timer's work.
pub(super) type Work = Box<dyn FnMut() -> Result<(), StoreError> + Send + 'static>;

/// The health timer's work, one tick a second.
#[derive(Debug)]
pub(super) struct Health {
    pub store: SharedStore,
    pub jobs: SharedJobs,
    pub incidents: SharedIncidents,
    pub gpus: GpuTable,
    pub budget: Shared<Budget>,
    pub rules: Rules,
    pub spool_dir: PathBuf,
    pub spool: SpoolCounts,
    pub books: BookSeries,
    pub ticks: u64,
}

impl Health {
    pub fn tick(&mut self) -> Result<(), StoreError> {
        self.ticks += 1;
        let ticks = self.ticks;
        if ticks.is_multiple_of(RELEASE_EVERY_TICKS) {
            crate::allocator::release_free_memory();
        }
        if ticks % BUDGET_EVERY_TICKS == 1
            && let Some((rss, cpu)) = crate::budget::measure()
        {
            self.budget
                .lock()
                .check(rss, cpu, std::time::Instant::now());
        }
        if ticks % RULES_EVERY_TICKS == 1 {
            self.rules.check(
                now_ms(),
                &self.store,
                &self.gpus,
                &mut self.incidents.lock(),
            )?;
        }
        if ticks % SPOOL_EVERY_TICKS == 1 {
            let (jobs, incidents) = (&self.jobs, &self.incidents);
            let drained = crate::jobs::spool::drain(&self.spool_dir, |e| {
                let mut book = jobs.lock();
                book.apply(e, now_ms(), &mut incidents.lock())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            self.spool.add(drained);
        }
        let now = now_ms();
        self.jobs
            .lock()
            .check_clocks(now, &mut self.incidents.lock())?;
        self.incidents.lock().tick(now)?;
        // Jobs and incidents as series, for the overview and for export.
        self.books
            .write(now, &self.store, &self.jobs, &self.incidents)
    }
}

/// Runs `work` every `period` until `stop`; a failure is logged, and a
/// failure ten times in a row stops the agent through `failed`, but for a
/// full disk, which is retried for as long as it lasts.
pub(super) async fn every(
    period: Duration,
    stop: CancellationToken,
    mut work: impl FnMut() -> Result<(), StoreError> + Send + 'static,
    failed: CancellationToken,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut failures = 0u32;
    let mut disk_full = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match work() {
            Ok(()) => {
                failures = 0;
                if std::mem::take(&mut disk_full) {
                    info!(
                        "the data directory takes writes again: what was kept in memory is written"
                    );
                }
            }
            // A full disk passes: keep trying, say so once (and in the status).
            Err(e) if e.is_disk_full() => {
                if !std::mem::replace(&mut disk_full, true) {
                    error!(error = %e, "data directory full: new samples are kept in memory until space returns");
                }
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, failures, "store task failed");
                if failures >= 10 {
                    error!(error = %e, "store task failed ten times in a row; stopping");
                    failed.cancel();
                    return;
                }
            }
        }
    }
}
