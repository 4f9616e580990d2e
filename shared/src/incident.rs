//! Incidents: what is wrong on a host, since when and why.
//!
//! An incident is opened under a key (one condition, such as `job:etl:failed`
//! or an anomaly group on a host), updated while the condition lasts, and
//! resolved by an operator or automatically once the condition has been
//! quiet for a while. Every change is kept in its history.

use serde::{Deserialize, Serialize};

use crate::TimestampMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// A word that reads without colour.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

/// What raised an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSource {
    /// Anomaly detection over the host's series.
    Anomaly,
    /// A static rule from the config.
    Rule,
    /// Job health: failures, overruns, missed runs, control charts.
    Job,
}

/// An operator's verdict on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Confirmed,
    FalsePositive,
    Expected,
}

/// One thing that made the incident: a series, a job's measure, a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The series key, or what was measured (`job etl duration`).
    pub what: String,
    pub observed: f64,
    /// The range that was expected, when there is one.
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    pub unit: String,
    /// Share of the incident this signal explains, in [0, 1].
    pub contribution: f64,
    /// The model or rule that fired, and the data it was built on.
    pub model: String,
}

/// What was going on at the time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentContext {
    pub jobs: Vec<String>,
    pub processes: Vec<String>,
    pub gpus: Vec<String>,
}

/// One entry of an incident's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub at: TimestampMs,
    /// `ward` for the agent itself, else who acted.
    pub by: String,
    /// `opened`, `updated`, `cleared`, `acknowledged`, `resolved`, `note`,
    /// `feedback`, with details.
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub at: TimestampMs,
    pub by: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    /// The condition: one open incident per key at most.
    pub key: String,
    pub title: String,
    pub severity: Severity,
    pub state: IncidentState,
    pub source: IncidentSource,
    pub opened: TimestampMs,
    pub updated: TimestampMs,
    /// When the condition was worst.
    pub peak: TimestampMs,
    /// Since when the condition has been gone; it resolves after the quiet period.
    pub cleared: Option<TimestampMs>,
    pub resolved: Option<TimestampMs>,
    /// Ranked by contribution, largest first.
    pub signals: Vec<Signal>,
    pub context: IncidentContext,
    pub notes: Vec<Note>,
    pub feedback: Option<Feedback>,
    pub history: Vec<IncidentEvent>,
}

impl Incident {
    pub fn is_active(&self) -> bool {
        self.state != IncidentState::Resolved
    }
}

/// Body of `POST /api/v1/incidents/{id}/ack` and `/resolve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentAction {
    /// Who acts, as shown in the history; the caller's role when absent.
    #[serde(default)]
    pub by: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub text: String,
    #[serde(default)]
    pub by: Option<String>,
}

/// Body of `POST /api/v1/incidents/{id}/feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub feedback: Feedback,
    #[serde(default)]
    pub by: Option<String>,
}
