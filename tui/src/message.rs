//! What the dashboard's workers and its screen say to each other: the
//! [`Request`]s the screen sends the fetch worker, and the [`Update`]s the
//! fetch and fleet workers send back, with the data they carry.
//!
//! Owns: the messages' types. Must not: ask an agent or draw.

use ward_shared::api::{GpuState, ProcessSnapshot, SeriesInfo};
use ward_shared::incident::{Feedback, Incident};
use ward_shared::jobs::{JobRun, JobSummary};
use ward_shared::status::AgentStatus;

/// What the UI asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The series whose key contains this text.
    Series(String),
    /// A chart: series, range end (ms; `None` = now) and span (ms).
    Chart {
        series: u32,
        end: Option<i64>,
        span: i64,
    },
    /// Something an operator does to an incident.
    Act {
        incident: u64,
        action: Action,
    },
    /// Watch another agent from now on (drilling into a fleet member):
    /// its address and API token.
    Connect {
        address: String,
        token: Option<String>,
        ca_file: Option<std::path::PathBuf>,
    },
    /// The runs of a job, newest first.
    JobRuns(String),
    /// The series an incident is about, around its time.
    IncidentChart {
        incident: u64,
        key: String,
        start: i64,
        end: Option<i64>,
    },
    Stop,
}

/// What can be done to an incident from the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Note(String),
    Feedback(Feedback),
}

/// A host figure over the last minutes, for an overview tile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trend {
    pub points: Vec<(i64, f64)>,
}

impl Trend {
    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }
}

/// The overview's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    pub cpu_busy: Trend,
    pub memory_used: Trend,
    pub network_rx: Trend,
    pub network_tx: Trend,
    pub disk_io: Trend,
    pub load: Trend,
    /// Mean utilization over the whole GPUs (MIG instances left out).
    pub gpu_busy: Trend,
    /// The host anomaly rate.
    pub anomaly: Trend,
    /// Job runs going on, and active incidents.
    pub jobs_running: Trend,
    pub incidents_active: Trend,
}

/// What the worker sends back.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Status(Box<AgentStatus>),
    Overview(Overview),
    Processes(ProcessSnapshot),
    Gpus(GpuState),
    Series(Vec<SeriesInfo>),
    Chart {
        series: u32,
        start: i64,
        end: i64,
        points: Vec<(i64, f64)>,
    },
    /// Active incidents first, then the resolved ones kept.
    Incidents(Vec<Incident>),
    Jobs(Vec<JobSummary>),
    JobRuns {
        job: String,
        runs: Vec<JobRun>,
    },
    /// An action went through: what to tell the operator.
    Done(String),
    /// Every agent of the fleet, worst first.
    Fleet(Vec<HostRow>),
    IncidentChart {
        incident: u64,
        key: String,
        start: i64,
        end: i64,
        points: Vec<(i64, f64)>,
    },
    /// A fetch failed; the screen shows it and keeps the last data.
    Failed(String),
}

/// One agent as the fleet view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub name: String,
    pub address: String,
    /// Why it could not be asked, if it could not.
    pub unreachable: Option<String>,
    pub host: String,
    pub incidents: usize,
    pub critical: usize,
    pub anomaly_rate: Option<f64>,
    /// The worst active incident's title.
    pub worst: Option<String>,
    pub jobs: u64,
}

impl HostRow {
    /// Worst first: unreachable, then by critical and open incidents, then anomaly rate.
    pub fn rank(rows: &mut [HostRow]) {
        rows.sort_by(|a, b| {
            b.unreachable
                .is_some()
                .cmp(&a.unreachable.is_some())
                .then(b.critical.cmp(&a.critical))
                .then(b.incidents.cmp(&a.incidents))
                .then(
                    b.anomaly_rate
                        .unwrap_or(0.0)
                        .total_cmp(&a.anomaly_rate.unwrap_or(0.0)),
                )
                .then(a.name.cmp(&b.name))
        });
    }
}

/// How a verdict reads in a sentence.
pub fn feedback_word(f: Feedback) -> &'static str {
    match f {
        Feedback::Confirmed => "confirmed",
        Feedback::FalsePositive => "false positive",
        Feedback::Expected => "expected",
    }
}
