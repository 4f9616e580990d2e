//! The real source: NVML, loaded from the driver at run time.

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, RetirementCause, TemperatureSensor,
};
use std::collections::HashMap;
use std::time::Instant;

use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::{
    NVML_FI_DEV_PCIE_COUNT_RX_BYTES, NVML_FI_DEV_PCIE_COUNT_TX_BYTES,
};
use nvml_wrapper::{Device, EventSet};

use super::{GpuProcess, GpuReading, GpuSource};

/// Where the driver has no PCIe byte counters, NVML's throughput call
/// is all there is, and it blocks for its 20 ms sampling window (seen
/// on an H100: 21 ms each way, against under 0.1 ms for every other
/// reading): it is then read only every this many ticks.
const THROUGHPUT_EVERY: u64 = 10;

/// A GPU's PCIe as last read: its byte counters, or where the driver
/// has none, the last throughput sample (bytes a second, tx and rx).
enum Pcie {
    Counters { at: Instant, tx: u64, rx: u64 },
    Throughput(Option<(f64, f64)>),
}

pub struct NvmlSource {
    nvml: &'static Nvml,
    events: Option<EventSet<'static>>,
    last_process_sample: u64,
    ticks: u64,
    /// Per UUID: PCIe as last read.
    pcie: HashMap<String, Pcie>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("events", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Loads NVML; the error says why a host has no GPU readings.
    pub fn open() -> Result<Box<dyn GpuSource>, String> {
        let nvml = Nvml::init().map_err(|e| match e {
            NvmlError::LibloadingError(e) => {
                format!("NVML (libnvidia-ml.so.1) could not be loaded: {e}; no NVIDIA driver on this host")
            }
            e => format!("NVML did not start: {e}"),
        })?;
        // Devices and event sets borrow the library handle for as long as
        // the agent runs: one handle, kept for the life of the process.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let mut events = nvml.create_event_set().ok();
        for i in 0..nvml.device_count().unwrap_or(0) {
            let (Ok(device), Some(set)) = (nvml.device_by_index(i), events.take()) else {
                continue;
            };
            events = match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(set) => Some(set),
                // This device cannot report XIDs; start over with a fresh set for the others.
                Err(_) => nvml.create_event_set().ok(),
            };
        }
        Ok(Box::new(Self {
            nvml,
            events,
            last_process_sample: 0,
            ticks: 0,
            pcie: HashMap::new(),
        }))
    }

    /// PCIe bytes so far and bytes a second (tx, rx): from the driver's
    /// counters where it keeps them, else the throughput sample taken
    /// every [`THROUGHPUT_EVERY`] ticks and held in between.
    fn pcie(&mut self, d: &Device<'static>, uuid: &str) -> PcieReading {
        let known = self.pcie.get(uuid);
        if !matches!(known, Some(Pcie::Throughput(_))) {
            let ids = [
                FieldId(NVML_FI_DEV_PCIE_COUNT_TX_BYTES),
                FieldId(NVML_FI_DEV_PCIE_COUNT_RX_BYTES),
            ];
            let counters = d.field_values_for(&ids).ok().and_then(|v| {
                let mut v = v.into_iter().map(counter);
                Some((v.next()??, v.next()??))
            });
            if let Some((tx, rx)) = counters {
                let at = Instant::now();
                let rates = match known {
                    Some(&Pcie::Counters {
                        at: was,
                        tx: tx0,
                        rx: rx0,
                    }) => {
                        let dt = at.duration_since(was).as_secs_f64();
                        (dt > 0.0).then(|| {
                            (
                                tx.saturating_sub(tx0) as f64 / dt,
                                rx.saturating_sub(rx0) as f64 / dt,
                            )
                        })
                    }
                    _ => None,
                };
                self.pcie
                    .insert(uuid.to_string(), Pcie::Counters { at, tx, rx });
                return PcieReading {
                    bytes: Some((tx, rx)),
                    rates,
                };
            }
        }
        // No counters on this GPU or driver: the throughput sample.
        let rates = if self.ticks.is_multiple_of(THROUGHPUT_EVERY) {
            let kb = |c| d.pcie_throughput(c).ok().map(|kb| f64::from(kb) * 1024.0);
            kb(PcieUtilCounter::Send).zip(kb(PcieUtilCounter::Receive))
        } else {
            match known {
                Some(Pcie::Throughput(held)) => *held,
                _ => None,
            }
        };
        self.pcie.insert(uuid.to_string(), Pcie::Throughput(rates));
        PcieReading { bytes: None, rates }
    }

    fn reading(&mut self, d: &Device<'static>, parent: Option<String>) -> GpuReading {
        let uuid = d.uuid().unwrap_or_default();
        let memory = d.memory_info().ok();
        let util = d.utilization_rates().ok();
        let mut processes: Vec<GpuProcess> = d
            .running_compute_processes()
            .into_iter()
            .chain(d.running_graphics_processes())
            .flatten()
            .map(|p| GpuProcess {
                pid: p.pid,
                memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
                sm_utilization: None,
            })
            .collect();
        if let Ok(samples) = d.process_utilization_stats(self.last_process_sample) {
            for s in samples {
                self.last_process_sample = self.last_process_sample.max(s.timestamp);
                if let Some(p) = processes.iter_mut().find(|p| p.pid == s.pid) {
                    p.sm_utilization = Some(f64::from(s.sm_util) / 100.0);
                }
            }
        }
        let retired = |cause| d.retired_pages(cause).ok().map(|p| p.len() as u64);
        // A MIG instance's PCIe link is its parent's.
        let pcie = if parent.is_none() {
            self.pcie(d, &uuid)
        } else {
            PcieReading::default()
        };
        GpuReading {
            name: d.name().unwrap_or_default(),
            parent,
            utilization: util.as_ref().map(|u| f64::from(u.gpu) / 100.0),
            memory_controller_utilization: util.as_ref().map(|u| f64::from(u.memory) / 100.0),
            memory_used: memory.as_ref().map(|m| m.used),
            memory_total: memory.as_ref().map(|m| m.total),
            temperature_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            power_limit_w: d
                .enforced_power_limit()
                .ok()
                .map(|mw| f64::from(mw) / 1000.0),
            energy_j: d
                .total_energy_consumption()
                .ok()
                .map(|mj| mj as f64 / 1000.0),
            sm_clock_hz: d.clock_info(Clock::SM).ok().map(|mhz| f64::from(mhz) * 1e6),
            memory_clock_hz: d
                .clock_info(Clock::Memory)
                .ok()
                .map(|mhz| f64::from(mhz) * 1e6),
            throttle: d.current_throttle_reasons().ok().map(|r| r.bits()),
            ecc_corrected: d
                .total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
                .ok(),
            ecc_uncorrected: d
                .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
                .ok(),
            retired_single_bit: retired(RetirementCause::MultipleSingleBitEccErrors),
            retired_double_bit: retired(RetirementCause::DoubleBitEccError),
            retirement_pending: d.are_pages_pending_retired().ok(),
            pcie_tx_bytes_per_s: pcie.rates.map(|r| r.0),
            pcie_rx_bytes_per_s: pcie.rates.map(|r| r.1),
            pcie_tx_bytes: pcie.bytes.map(|b| b.0),
            pcie_rx_bytes: pcie.bytes.map(|b| b.1),
            processes,
            uuid,
        }
    }
}

#[derive(Default)]
struct PcieReading {
    bytes: Option<(u64, u64)>,
    rates: Option<(f64, f64)>,
}

/// A byte counter from a field value, if the driver gave one.
fn counter(sample: Result<FieldValueSample, NvmlError>) -> Option<u64> {
    match sample.ok()?.value.ok()? {
        SampleValue::U64(v) => Some(v),
        SampleValue::U32(v) => Some(u64::from(v)),
        SampleValue::I64(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

impl GpuSource for NvmlSource {
    fn read(&mut self) -> Result<Vec<GpuReading>, String> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| format!("counting GPUs: {e}"))?;
        let mut out = Vec::new();
        for i in 0..count {
            let device = self
                .nvml
                .device_by_index(i)
                .map_err(|e| format!("GPU {i}: {e}"))?;
            let reading = self.reading(&device, None);
            let parent = reading.uuid.clone();
            out.push(reading);
            if device.mig_mode().is_ok_and(|m| m.current == 1) {
                let instances = device.mig_device_count().unwrap_or(0);
                for j in 0..instances {
                    if let Ok(mig) = device.mig_device_by_index(j) {
                        out.push(self.reading(&mig, Some(parent.clone())));
                    }
                }
            }
        }
        self.ticks += 1;
        Ok(out)
    }

    fn xid_events(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Some(set) = &self.events else { return out };
        // Drain what is pending without waiting: a zero timeout answers at once.
        while let Ok(event) = set.wait(0) {
            if let Some(XidError::Value(code)) = event.event_data {
                out.push((event.device.uuid().unwrap_or_default(), code));
            }
        }
        out
    }
}
