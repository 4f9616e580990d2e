//! Data-pipeline jobs: the events any orchestrator reports, and the runs
//! the agent keeps.

use serde::{Deserialize, Serialize};

use crate::TimestampMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEventKind {
    Start,
    Heartbeat,
    Finish,
}

/// Body of `POST /api/v1/jobs/events`: a job run started, is alive, or
/// finished. Only `job`, `run` and `kind` are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvent {
    /// The job's name, e.g. an Airflow DAG id or a cron script's name.
    pub job: String,
    /// The run's id, unique within the job (the reporter chooses it).
    pub run: String,
    pub kind: JobEventKind,
    /// When it happened (Unix ms); now when absent. Spooled reports carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<TimestampMs>,
    /// Finish: whether the run succeeded; absent, the exit code decides
    /// (0 is success), and without one the run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Finish: the signal that killed the command, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Finish without a start: how long the run took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_out: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Start: a run is expected at least this often (seconds); none
    /// within it raises a missed-run incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_every_s: Option<f64>,
    /// Start: a run still going after this long (seconds) raises an incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<f64>,
}

impl JobEvent {
    /// An event with only the required fields.
    pub fn new(job: &str, run: &str, kind: JobEventKind) -> Self {
        Self {
            job: job.to_string(),
            run: run.to_string(),
            kind,
            at: None,
            success: None,
            exit_code: None,
            signal: None,
            duration_s: None,
            cpu_seconds: None,
            peak_rss_bytes: None,
            gpu_memory_bytes: None,
            records_in: None,
            records_out: None,
            bytes_in: None,
            bytes_out: None,
            expect_every_s: None,
            max_duration_s: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Success,
    Failed,
}

/// One run of a job, as the agent keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub job: String,
    pub run: String,
    pub status: RunStatus,
    pub started: TimestampMs,
    pub ended: Option<TimestampMs>,
    pub last_heartbeat: TimestampMs,
    pub duration_s: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_seconds: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub gpu_memory_bytes: Option<u64>,
    pub records_in: Option<u64>,
    pub records_out: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

impl JobRun {
    /// A run that started at `at` and has reported nothing else yet.
    pub fn started(job: &str, run: &str, at: TimestampMs) -> Self {
        Self {
            job: job.to_string(),
            run: run.to_string(),
            status: RunStatus::Running,
            started: at,
            ended: None,
            last_heartbeat: at,
            duration_s: None,
            exit_code: None,
            signal: None,
            cpu_seconds: None,
            peak_rss_bytes: None,
            gpu_memory_bytes: None,
            records_in: None,
            records_out: None,
            bytes_in: None,
            bytes_out: None,
        }
    }
}

/// A job and how it is doing: `GET /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub name: String,
    pub expect_every_s: Option<f64>,
    pub max_duration_s: Option<f64>,
    pub runs: u64,
    pub failures: u64,
    /// Failures in a row, up to the last finished run.
    pub failure_streak: u32,
    pub running: u32,
    pub last_start: Option<TimestampMs>,
    pub last_run: Option<JobRun>,
    /// Mean duration of the kept finished runs, seconds.
    pub mean_duration_s: Option<f64>,
    /// Keys of the job's active incidents.
    pub problems: Vec<String>,
}
