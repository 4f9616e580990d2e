//! The local API's request and response bodies (JSON under `/api/v1/`).
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /api/v1/health` | | [`Health`] |
//! | `GET /api/v1/status` | | [`crate::status::AgentStatus`] |
//! | `GET /api/v1/series?match=TEXT` | | `Vec<`[`SeriesInfo`]`>`: series whose key contains TEXT |
//! | `POST /api/v1/query` | [`QueryRequest`] | `Vec<`[`SeriesPoints`]`>` |
//! | `GET /api/v1/processes` | | [`ProcessSnapshot`] |
//! | `GET /api/v1/gpus` | | [`GpuState`] |
//!
//! Errors are `{"error": "..."}` with a message that names the problem.

use serde::{Deserialize, Serialize};

use crate::{MetricKind, TimestampMs};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    pub id: u32,
    /// `name{label="value",...}`
    pub key: String,
    pub name: String,
    pub kind: MetricKind,
    pub unit: String,
}

/// How the samples in a bucket become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The mean for a gauge; for a counter, its per-second rate.
    Avg,
    Min,
    Max,
    Last,
    /// Per-second rate of a counter; a decrease counts as a reset.
    Rate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    pub series: Vec<u32>,
    pub start: TimestampMs,
    pub end: TimestampMs,
    /// Bucket width in ms; absent: raw samples.
    #[serde(default)]
    pub step: Option<i64>,
    pub agg: Aggregation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    pub series: u32,
    /// `[timestamp ms, value]` pairs, oldest first.
    pub points: Vec<(TimestampMs, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// One process as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
    pub user: String,
    /// Command line with secret-looking arguments redacted.
    pub command: String,
    /// Share of one CPU over the last tick (1.0 = one full core).
    pub cpu: f64,
    pub memory_bytes: u64,
}

/// The latest top processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    pub ts: TimestampMs,
    pub by_cpu: Vec<ProcessInfo>,
    pub by_memory: Vec<ProcessInfo>,
}

/// One GPU or MIG instance, as read at one tick; `None` where unsupported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub uuid: String,
    pub name: String,
    /// The physical GPU's UUID, for a MIG instance.
    pub parent: Option<String>,
    pub utilization: Option<f64>,
    pub memory_controller_utilization: Option<f64>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub temperature_c: Option<f64>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub energy_j: Option<f64>,
    pub sm_clock_hz: Option<f64>,
    pub memory_clock_hz: Option<f64>,
    /// NVML's clocks-throttle-reasons bit mask.
    pub throttle: Option<u64>,
    pub ecc_corrected: Option<u64>,
    pub ecc_uncorrected: Option<u64>,
    pub retired_single_bit: Option<u64>,
    pub retired_double_bit: Option<u64>,
    pub retirement_pending: Option<bool>,
    pub pcie_tx_bytes_per_s: Option<f64>,
    pub pcie_rx_bytes_per_s: Option<f64>,
    /// PCIe bytes sent and received since the driver loaded, where the
    /// driver counts them (recent GPUs); the rates above then come from
    /// these counters rather than from NVML's 20 ms throughput sample.
    #[serde(default)]
    pub pcie_tx_bytes: Option<u64>,
    #[serde(default)]
    pub pcie_rx_bytes: Option<u64>,
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub memory_bytes: Option<u64>,
    /// SM utilization attributed to the process, 0 to 1.
    pub sm_utilization: Option<f64>,
}

/// An XID error as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XidEvent {
    pub ts: TimestampMs,
    pub gpu: String,
    pub code: u64,
    pub description: String,
}

/// NVML's clocks-throttle-reason bits and their names.
pub const THROTTLE_REASONS: [(u64, &str); 9] = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// The names of the reasons set in a throttle bit mask.
pub fn throttle_reasons(bits: u64) -> impl Iterator<Item = &'static str> {
    THROTTLE_REASONS
        .into_iter()
        .filter(move |(b, _)| bits & b != 0)
        .map(|(_, n)| n)
}

/// What the API and the dashboard show of the GPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuState {
    /// Why there are no GPU readings, if there are none.
    pub unavailable: Option<String>,
    pub devices: Vec<GpuReading>,
    pub xid_history: std::collections::VecDeque<XidEvent>,
}
