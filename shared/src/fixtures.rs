//! Test fixtures the crates share: an incident and GPU readings with every
//! field set to something plausible. A test adjusts what it is about with
//! struct update syntax:
//! `Incident { severity: Severity::Critical, ..fixtures::incident(1, "job:etl:failed") }`.

use crate::api::{GpuProcess, GpuReading};
use crate::incident::{Incident, IncidentContext, IncidentSource, IncidentState, Severity};

/// An open warning about job health, opened at 1 s past the epoch, with no
/// signals, notes or history.
pub fn incident(id: u64, key: &str) -> Incident {
    Incident {
        id,
        key: key.into(),
        title: format!("{key} is wrong"),
        severity: Severity::Warning,
        state: IncidentState::Open,
        source: IncidentSource::Job,
        opened: 1000,
        updated: 1000,
        peak: 1000,
        cleared: None,
        resolved: None,
        signals: Vec::new(),
        context: IncidentContext::default(),
        notes: Vec::new(),
        feedback: None,
        history: Vec::new(),
    }
}

/// A busy H100: 87% utilization, half its memory used, warm, power-capped
/// and thermally throttled, one process on it.
pub fn h100(uuid: &str) -> GpuReading {
    GpuReading {
        uuid: uuid.into(),
        name: "NVIDIA H100 80GB HBM3".into(),
        utilization: Some(0.87),
        memory_controller_utilization: Some(0.4),
        memory_used: Some(40 << 30),
        memory_total: Some(80 << 30),
        temperature_c: Some(71.0),
        power_w: Some(512.5),
        power_limit_w: Some(700.0),
        energy_j: Some(1_000_000.0),
        sm_clock_hz: Some(1.98e9),
        memory_clock_hz: Some(2.619e9),
        throttle: Some(0x4 | 0x20),
        ecc_corrected: Some(3),
        ecc_uncorrected: Some(0),
        retired_single_bit: Some(1),
        retired_double_bit: Some(0),
        retirement_pending: Some(false),
        pcie_tx_bytes_per_s: Some(1000.0),
        pcie_rx_bytes_per_s: Some(2000.0),
        processes: vec![GpuProcess {
            pid: 4242,
            memory_bytes: Some(30 << 30),
            sm_utilization: Some(0.8),
        }],
        ..GpuReading::default()
    }
}

/// A 1g.10gb MIG instance of the GPU `parent`, 1 GiB of its 10 used.
pub fn mig(uuid: &str, parent: &str) -> GpuReading {
    GpuReading {
        uuid: uuid.into(),
        name: "1g.10gb".into(),
        parent: Some(parent.into()),
        memory_used: Some(1 << 30),
        memory_total: Some(10 << 30),
        ..GpuReading::default()
    }
}
