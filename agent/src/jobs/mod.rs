//! Data-pipeline jobs: runs reported by `ward-agent job run`, by the job
//! events API and by anything that speaks it, kept in the store, and their
//! health raised as incidents.
//!
//! Job health, one incident key per job and condition:
//!
//! | key | raised when | cleared when |
//! | --- | --- | --- |
//! | `job:NAME:failed` | a run fails; critical from `jobs.failure_streak` failures in a row | a run succeeds |
//! | `job:NAME:overdue` | a run is still going past its max duration | no run is overdue |
//! | `job:NAME:missed` | no run started within the expected interval (+10%) | a run starts |
//! | `job:NAME:duration` | the run's duration is out of statistical control ([`spc`]) | a run is in control |
//! | `job:NAME:records` | records processed (out, else in) are out of control | a run is in control |

pub mod spc;
pub mod spool;

use std::collections::{BTreeMap, VecDeque};

use thiserror::Error;
use tracing::warn;
use ward_shared::TimestampMs;
use ward_shared::incident::{IncidentContext, IncidentSource, Severity, Signal};
use ward_shared::jobs::{JobEvent, JobEventKind, JobRun, JobSummary, RunStatus};

use crate::incidents::{Conditions, Incidents, Raise};
use crate::store::SharedStore;
use crate::store::{Collection, StoreError};

/// Reads one measure of a run, for control charts.
type Measure = fn(&JobRun) -> Option<f64>;

/// Finished runs kept per job, in memory and on disk.
pub const KEEP_RUNS: usize = 500;
/// Longest job name or run id accepted.
pub const MAX_NAME: usize = 200;
/// Most jobs the agent tracks; events for more are refused.
pub const MAX_JOBS: usize = 10_000;
/// How far in the future an event's time may be (clock skew).
const MAX_FUTURE_MS: i64 = 5 * 60_000;

#[derive(Debug, Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How job health is judged.
#[derive(Debug, Clone, Copy)]
pub struct HealthSettings {
    /// Failures in a row that make the failure incident critical.
    pub failure_streak: u32,
    /// Earlier runs needed before control charts judge a run.
    pub spc_min_runs: usize,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failure_streak: 3,
            spc_min_runs: 10,
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct JobSettings {
    expect_every_s: Option<f64>,
    max_duration_s: Option<f64>,
    /// When the job was first heard of: the missed-run clock starts there.
    first_seen: TimestampMs,
}

#[derive(Debug, Default)]
struct Job {
    settings: JobSettings,
    running: BTreeMap<String, JobRun>,
    /// Finished runs, oldest first.
    history: VecDeque<JobRun>,
    runs: u64,
    failures: u64,
    streak: u32,
    last_start: Option<TimestampMs>,
    /// Incident keys this job has raised and not cleared.
    problems: Conditions,
}

/// Every job on the node.
#[derive(Debug)]
pub struct JobBook {
    store: SharedStore,
    jobs: BTreeMap<String, Job>,
    settings: HealthSettings,
    /// Events accepted and refused since start.
    pub accepted: u64,
    pub refused: u64,
}

/// `[jobs]`: where reports wait while the agent is down, and how job
/// health is judged.
#[derive(Debug, Clone)]
pub struct JobsSettings {
    pub spool_dir: std::path::PathBuf,
    pub health: HealthSettings,
}

/// The book, shared by the API, the spool reader and the health timer.
pub type SharedJobs = crate::sync::Shared<JobBook>;

fn run_key(job: &str, started: TimestampMs, run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(job.len() + run.len() + 9);
    k.extend_from_slice(job.as_bytes());
    k.push(0);
    k.extend_from_slice(&((started as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(run.as_bytes());
    k
}

fn check_name(what: &str, s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(JobError::Invalid(format!(
            "{what} {s:?} is not valid: expected 1 to {MAX_NAME} bytes of printable text"
        )));
    }
    Ok(())
}

fn check_seconds(what: &str, v: Option<f64>) -> Result<(), JobError> {
    match v {
        Some(s) if !(s.is_finite() && s > 0.0 && s <= 366.0 * 86400.0) => Err(JobError::Invalid(
            format!("{what} = {s} is not valid: expected seconds, more than 0 and at most a year"),
        )),
        _ => Ok(()),
    }
}

fn seconds(s: f64) -> String {
    let s = s.round() as i64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl JobBook {
    /// Loads the jobs and runs kept in `store`.
    pub fn open(store: SharedStore, settings: HealthSettings) -> Result<Self, StoreError> {
        let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
        {
            let s = store.lock();
            for (key, value) in s.docs(Collection::Jobs, b"")? {
                let name = String::from_utf8_lossy(&key).into_owned();
                match serde_json::from_slice::<JobSettings>(&value) {
                    Ok(settings) => jobs.entry(name).or_default().settings = settings,
                    Err(e) => warn!(job = %name, error = %e, "unreadable job record skipped"),
                }
            }
            for (_, value) in s.docs(Collection::JobRuns, b"")? {
                match serde_json::from_slice::<JobRun>(&value) {
                    Ok(run) => {
                        let job = jobs.entry(run.job.clone()).or_default();
                        job.last_start = job.last_start.max(Some(run.started));
                        if run.status == RunStatus::Running {
                            job.running.insert(run.run.clone(), run);
                        } else {
                            job.runs += 1;
                            if run.status == RunStatus::Failed {
                                job.failures += 1;
                                job.streak += 1;
                            } else {
                                job.streak = 0;
                            }
                            job.history.push_back(run);
                        }
                    }
                    Err(e) => warn!(error = %e, "unreadable job run record skipped"),
                }
            }
        }
        Ok(Self {
            store,
            jobs,
            settings,
            accepted: 0,
            refused: 0,
        })
    }

    /// Remembers which conditions are active after a restart, from the
    /// incidents the book still has open.
    pub fn adopt_problems(&mut self, incidents: &Incidents) {
        for (name, job) in &mut self.jobs {
            for what in ["failed", "overdue", "missed", "duration", "records"] {
                let key = format!("job:{name}:{what}");
                if incidents.active_id(&key).is_some() {
                    job.problems.adopt(key);
                }
            }
        }
    }

    fn save_run(&self, run: &JobRun) -> Result<(), StoreError> {
        let json = serde_json::to_vec(run).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut store = self.store.lock();
        store.put_doc(
            Collection::JobRuns,
            &run_key(&run.job, run.started, &run.run),
            &json,
        )?;
        if run.status != RunStatus::Running {
            crate::store::Outgoing::JobRun {
                run: Box::new(run.clone()),
            }
            .queue(&mut store)?;
        }
        Ok(())
    }

    fn save_settings(&self, name: &str) -> Result<(), StoreError> {
        if let Some(job) = self.jobs.get(name) {
            let json = serde_json::to_vec(&job.settings)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.store
                .lock()
                .put_doc(Collection::Jobs, name.as_bytes(), &json)?;
        }
        Ok(())
    }

    /// Takes one event; a refused one is counted and changes nothing.
    pub fn apply(
        &mut self,
        e: &JobEvent,
        now: TimestampMs,
        incidents: &mut Incidents,
    ) -> Result<JobRun, JobError> {
        let out = self.apply_inner(e, now, incidents);
        match &out {
            Ok(_) => self.accepted += 1,
            Err(_) => self.refused += 1,
        }
        out
    }

    fn apply_inner(
        &mut self,
        e: &JobEvent,
        now: TimestampMs,
        incidents: &mut Incidents,
    ) -> Result<JobRun, JobError> {
        check_name("job", &e.job)?;
        check_name("run", &e.run)?;
        check_seconds("expect_every_s", e.expect_every_s)?;
        check_seconds("max_duration_s", e.max_duration_s)?;
        check_seconds("duration_s", e.duration_s)?;
        if let Some(c) = e.cpu_seconds
            && !(c.is_finite() && c >= 0.0)
        {
            return Err(JobError::Invalid(format!(
                "cpu_seconds = {c} is not valid: expected seconds, 0 or more"
            )));
        }
        let at = e.at.unwrap_or(now);
        if at > now + MAX_FUTURE_MS {
            return Err(JobError::Invalid(format!(
                "at = {at} is {} s in the future; check the reporter's clock",
                (at - now) / 1000
            )));
        }
        if !self.jobs.contains_key(&e.job) && self.jobs.len() >= MAX_JOBS {
            return Err(JobError::Invalid(format!(
                "job {:?} would be job number {}, over the limit of {MAX_JOBS}",
                e.job,
                MAX_JOBS + 1
            )));
        }
        let job = self.jobs.entry(e.job.clone()).or_default();
        let mut settings_changed = false;
        if job.settings.first_seen == 0 {
            job.settings.first_seen = at;
            settings_changed = true;
        }
        if e.expect_every_s.is_some() && e.expect_every_s != job.settings.expect_every_s {
            job.settings.expect_every_s = e.expect_every_s;
            settings_changed = true;
        }
        if e.max_duration_s.is_some() && e.max_duration_s != job.settings.max_duration_s {
            job.settings.max_duration_s = e.max_duration_s;
            settings_changed = true;
        }
        if job.history.iter().any(|r| r.run == e.run) {
            return Err(JobError::Invalid(format!(
                "run {:?} of job {:?} has already finished",
                e.run, e.job
            )));
        }
        let run = match e.kind {
            JobEventKind::Start | JobEventKind::Heartbeat => {
                let run = job
                    .running
                    .entry(e.run.clone())
                    .or_insert_with(|| JobRun::started(&e.job, &e.run, at));
                run.last_heartbeat = run.last_heartbeat.max(at);
                merge_measures(run, e);
                let run = run.clone();
                job.last_start = job.last_start.max(Some(run.started));
                run
            }
            JobEventKind::Finish => {
                let mut run = match job.running.remove(&e.run) {
                    Some(r) => r,
                    None => {
                        let started = at - e.duration_s.map_or(0, |d| (d * 1000.0) as i64);
                        job.last_start = job.last_start.max(Some(started));
                        JobRun::started(&e.job, &e.run, started)
                    }
                };
                merge_measures(&mut run, e);
                let ended = at.max(run.started);
                run.ended = Some(ended);
                run.last_heartbeat = ended;
                run.duration_s = Some(
                    e.duration_s
                        .unwrap_or((ended - run.started) as f64 / 1000.0),
                );
                run.exit_code = e.exit_code;
                run.signal = e.signal;
                let ok = e
                    .success
                    .unwrap_or(e.signal.is_none() && e.exit_code.unwrap_or(0) == 0);
                run.status = if ok {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                };
                job.runs += 1;
                if ok {
                    job.streak = 0;
                } else {
                    job.failures += 1;
                    job.streak += 1;
                }
                job.history.push_back(run.clone());
                run
            }
        };
        // Drop the oldest finished runs past the limit.
        let mut dropped = Vec::new();
        while job.history.len() > KEEP_RUNS {
            if let Some(old) = job.history.pop_front() {
                dropped.push(run_key(&old.job, old.started, &old.run));
            }
        }
        for key in dropped {
            self.store.lock().remove_doc(Collection::JobRuns, &key)?;
        }
        self.save_run(&run)?;
        if settings_changed {
            self.save_settings(&e.job)?;
        }
        // Incidents carry the run's own time: a report spooled while the
        // agent was down still says when the job failed.
        self.judge_run(&run, run.ended.unwrap_or(run.started).min(now), incidents)?;
        if let Some(job) = self.jobs.get_mut(&e.job) {
            job_clocks(&e.job, job, now, incidents)?;
        }
        Ok(run)
    }

    /// Raises or clears the incidents a run's start or finish decides.
    fn judge_run(
        &mut self,
        run: &JobRun,
        now: TimestampMs,
        incidents: &mut Incidents,
    ) -> Result<(), StoreError> {
        let settings = self.settings;
        let Some(job) = self.jobs.get_mut(&run.job) else {
            return Ok(());
        };
        let name = run.job.as_str();
        let context = IncidentContext {
            jobs: vec![format!("{name} run {}", run.run)],
            ..Default::default()
        };
        // A start ends a missed-run condition.
        job.problems.clear(
            incidents,
            &format!("job:{name}:missed"),
            &format!("run {} started", run.run),
            now,
        )?;
        if run.status == RunStatus::Running {
            return Ok(());
        }
        let failed_key = format!("job:{name}:failed");
        if run.status == RunStatus::Failed {
            let how = match (run.signal, run.exit_code) {
                (Some(sig), _) => format!("killed by signal {sig}"),
                (None, Some(code)) => format!("exit code {code}"),
                (None, None) => "reported failed".to_string(),
            };
            let (title, severity) = if job.streak >= settings.failure_streak {
                (
                    format!(
                        "job {name} failed {} runs in a row (last: {how})",
                        job.streak
                    ),
                    Severity::Critical,
                )
            } else {
                (format!("job {name} failed ({how})"), Severity::Warning)
            };
            job.problems.raise(
                incidents,
                now,
                Raise {
                    key: failed_key,
                    title,
                    severity,
                    source: IncidentSource::Job,
                    signals: vec![Signal {
                        what: format!("job {name} failures in a row"),
                        observed: f64::from(job.streak),
                        expected_low: Some(0.0),
                        expected_high: Some(0.0),
                        unit: "{run}".into(),
                        contribution: 1.0,
                        model: format!(
                            "rule: failure; critical at {} in a row",
                            settings.failure_streak
                        ),
                    }],
                    context: context.clone(),
                },
            )?;
        } else {
            job.problems.clear(
                incidents,
                &failed_key,
                &format!("run {} succeeded", run.run),
                now,
            )?;
        }
        // Control charts over durations and records, successful runs only:
        // a failure's duration says nothing about the job's normal pace.
        if run.status == RunStatus::Success {
            let measures: [(&str, &str, &str, Measure); 2] = [
                ("duration", "took", "s", |r| r.duration_s),
                ("records", "processed", "{record}", |r| {
                    r.records_out.or(r.records_in).map(|v| v as f64)
                }),
            ];
            for (what, verb, unit, get) in measures {
                let key = format!("job:{name}:{what}");
                let values: Vec<f64> = job
                    .history
                    .iter()
                    .filter(|r| r.status == RunStatus::Success)
                    .filter_map(get)
                    .collect();
                if get(run).is_none() {
                    continue;
                }
                match spc::check(&values, settings.spc_min_runs) {
                    Some(b) => {
                        let (lo, hi) = (b.mean - 3.0 * b.sigma, b.mean + 3.0 * b.sigma);
                        let shown = |v: f64| {
                            if what == "duration" {
                                seconds(v)
                            } else {
                                format!("{v:.0}")
                            }
                        };
                        job.problems.raise(incidents,
                            now,
                            Raise {
                                key,
                                title: format!(
                                    "job {name} {verb} {} ({}), expected {} to {} from {} runs",
                                    shown(b.value),
                                    b.rule.describe(),
                                    shown(lo.max(0.0)),
                                    shown(hi),
                                    b.baseline
                                ),
                                severity: Severity::Warning,
                                source: IncidentSource::Job,
                                signals: vec![Signal {
                                    what: format!("job {name} {what}"),
                                    observed: b.value,
                                    expected_low: Some(lo),
                                    expected_high: Some(hi),
                                    unit: unit.into(),
                                    contribution: 1.0,
                                    model: format!(
                                        "control chart (mean {:.3}, sigma {:.3}) over {} earlier successful runs; Western Electric rules",
                                        b.mean, b.sigma, b.baseline
                                    ),
                                }],
                                context: context.clone(),
                            },
                        )?;
                    }
                    None => job.problems.clear(
                        incidents,
                        &key,
                        &format!("run {} in control", run.run),
                        now,
                    )?,
                }
            }
        }
        Ok(())
    }

    /// Overruns and missed runs: what the clock decides, for every job. The
    /// agent's timer calls it each second; an event checks its own job.
    pub fn check_clocks(
        &mut self,
        now: TimestampMs,
        incidents: &mut Incidents,
    ) -> Result<(), StoreError> {
        for (name, job) in &mut self.jobs {
            job_clocks(name, job, now, incidents)?;
        }
        Ok(())
    }

    /// Every job, by name.
    pub fn summaries(&self) -> Vec<JobSummary> {
        self.jobs
            .iter()
            .map(|(name, j)| {
                let durations: Vec<f64> = j.history.iter().filter_map(|r| r.duration_s).collect();
                let mut problems: Vec<String> = j.problems.keys().cloned().collect();
                problems.sort();
                JobSummary {
                    name: name.clone(),
                    expect_every_s: j.settings.expect_every_s,
                    max_duration_s: j.settings.max_duration_s,
                    runs: j.runs,
                    failures: j.failures,
                    failure_streak: j.streak,
                    running: j.running.len() as u32,
                    last_start: j.last_start,
                    last_run: j
                        .running
                        .values()
                        .max_by_key(|r| r.started)
                        .or(j.history.back())
                        .cloned(),
                    mean_duration_s: (!durations.is_empty())
                        .then(|| durations.iter().sum::<f64>() / durations.len() as f64),
                    problems,
                }
            })
            .collect()
    }

    /// A job's runs, newest first, running ones included; `None` for an unknown job.
    pub fn runs(&self, name: &str, limit: usize) -> Option<Vec<JobRun>> {
        let j = self.jobs.get(name)?;
        let mut out: Vec<JobRun> = j.running.values().cloned().collect();
        out.extend(j.history.iter().rev().cloned());
        out.sort_by_key(|r| std::cmp::Reverse(r.started));
        out.truncate(limit);
        Some(out)
    }

    /// How many jobs there are, and how many runs are going on.
    pub fn counts(&self) -> (usize, usize) {
        let running = self.jobs.values().map(|j| j.running.len()).sum();
        (self.jobs.len(), running)
    }

    /// Failed runs of every job since they were first kept.
    pub fn failures_total(&self) -> u64 {
        self.jobs.values().map(|j| j.failures).sum()
    }

    /// Names of the jobs running now, for incident context.
    pub fn running_now(&self) -> Vec<String> {
        self.jobs
            .iter()
            .flat_map(|(name, j)| j.running.keys().map(move |r| format!("{name} run {r}")))
            .collect()
    }
}

fn merge_measures(run: &mut JobRun, e: &JobEvent) {
    run.cpu_seconds = e.cpu_seconds.or(run.cpu_seconds);
    run.peak_rss_bytes = e.peak_rss_bytes.max(run.peak_rss_bytes);
    run.gpu_memory_bytes = e.gpu_memory_bytes.max(run.gpu_memory_bytes);
    run.records_in = e.records_in.or(run.records_in);
    run.records_out = e.records_out.or(run.records_out);
    run.bytes_in = e.bytes_in.or(run.bytes_in);
    run.bytes_out = e.bytes_out.or(run.bytes_out);
}

/// Overruns and missed runs of one job.
fn job_clocks(
    name: &str,
    job: &mut Job,
    now: TimestampMs,
    incidents: &mut Incidents,
) -> Result<(), StoreError> {
    let overdue_key = format!("job:{name}:overdue");
    let overdue: Vec<&JobRun> = match job.settings.max_duration_s {
        Some(max) => job
            .running
            .values()
            .filter(|r| (now - r.started) as f64 / 1000.0 > max)
            .collect(),
        None => Vec::new(),
    };
    match (overdue.first(), job.settings.max_duration_s) {
        (Some(r), Some(max)) if !job.problems.contains(&overdue_key) => {
            let ran = (now - r.started) as f64 / 1000.0;
            let raised = Raise {
                key: overdue_key,
                title: format!(
                    "job {name} still running after {} (max {}), run {}",
                    seconds(ran),
                    seconds(max),
                    r.run
                ),
                severity: Severity::Warning,
                source: IncidentSource::Job,
                signals: vec![Signal {
                    what: format!("job {name} run time"),
                    observed: ran,
                    expected_low: Some(0.0),
                    expected_high: Some(max),
                    unit: "s".into(),
                    contribution: 1.0,
                    model: "rule: max duration".into(),
                }],
                context: IncidentContext {
                    jobs: overdue
                        .iter()
                        .map(|r| format!("{name} run {}", r.run))
                        .collect(),
                    ..Default::default()
                },
            };
            job.problems.raise(incidents, now, raised)?;
        }
        (None, _) => job.problems.clear(
            incidents,
            &overdue_key,
            "no run is past its max duration",
            now,
        )?,
        _ => {}
    }
    let missed_key = format!("job:{name}:missed");
    if let Some(every) = job.settings.expect_every_s
        && job.running.is_empty()
        && !job.problems.contains(&missed_key)
    {
        let since = job.last_start.unwrap_or(job.settings.first_seen);
        let late = (now - since) as f64 / 1000.0;
        if late > every * 1.1 {
            let raised = Raise {
                key: missed_key,
                title: format!(
                    "job {name} missed its run: none started for {} (expected every {})",
                    seconds(late),
                    seconds(every)
                ),
                severity: Severity::Warning,
                source: IncidentSource::Job,
                signals: vec![Signal {
                    what: format!("job {name} time since last start"),
                    observed: late,
                    expected_low: Some(0.0),
                    expected_high: Some(every * 1.1),
                    unit: "s".into(),
                    contribution: 1.0,
                    model: "rule: expected interval (dead man's switch), 10% grace".into(),
                }],
                context: IncidentContext::default(),
            };
            job.problems.raise(incidents, now, raised)?;
        }
    }
    Ok(())
}
