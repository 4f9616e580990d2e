//! NVIDIA GPUs through NVML: per device and per MIG instance.
//!
//! | series (labels `hw.id` = UUID, `hw.name`, `hw.type="gpu"`, `hw.parent` for MIG) | kind, unit |
//! | --- | --- |
//! | `hw.gpu.utilization{hw.gpu.task="general"}` | gauge, 1 |
//! | `hw.gpu.memory.usage`, `hw.gpu.memory.limit` | gauge, By |
//! | `hw.gpu.memory.utilization` (used / total) | gauge, 1 |
//! | `hw.gpu.memory.controller.utilization` | gauge, 1 |
//! | `hw.gpu.temperature` | gauge, Cel |
//! | `hw.power`, `hw.gpu.power.limit` | gauge, W |
//! | `hw.energy` | counter, J |
//! | `hw.gpu.clock.sm`, `hw.gpu.clock.memory` | gauge, Hz |
//! | `hw.gpu.throttle{reason}` | gauge, 1 while that reason holds the clocks down |
//! | `hw.errors{error.type}` ecc_corrected, ecc_uncorrected, xid | counter |
//! | `hw.gpu.memory.retired_pages{cause}` single_bit, double_bit | gauge |
//! | `hw.gpu.memory.retirement_pending` | gauge, 0 or 1 |
//! | `hw.gpu.io{network.io.direction}` (PCIe) | counter, By |
//!
//! Names follow the semantic conventions' hw.gpu.* and hw.* where they exist;
//! clocks, temperature, power limit and throttle reasons have none and use the
//! names of the OpenLIT GPU collector where it has one.
//!
//! NVML is loaded at run time: on a host without the driver the first
//! collection fails fast with the loader's reason, the collector stops, and
//! [`GpuTable`] says "unavailable" and why, for the API and the dashboard.
//! XID errors are read from an NVML event set every tick and kept as a
//! history (the last [`XID_HISTORY`]), not only the last one. Per-process GPU
//! memory and utilization are a snapshot in [`GpuTable`], not series.
//! PCIe bytes are the driver's own counters (NVML field values) where it
//! keeps them; elsewhere NVML's throughput call, which blocks for a 20 ms
//! sample, is read every tenth tick, held in between, and integrated.
//! Row remapping counts are not exposed by nvml-wrapper 0.13 and are not
//! collected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ward_shared::SeriesDesc;
use ward_shared::api::THROTTLE_REASONS;
pub use ward_shared::api::{GpuProcess, GpuReading, GpuState, XidEvent};

use super::{CollectError, Collector, Emitter, LocalId, NamedSeries, key};

/// How many XID errors the history keeps.
pub const XID_HISTORY: usize = 256;

/// What an XID code means, for the common ones an operator meets.
pub fn xid_description(code: u64) -> &'static str {
    match code {
        8 => "GPU stopped processing (timeout)",
        13 => "graphics engine exception",
        31 => "GPU memory page fault",
        32 => "invalid or corrupted push buffer stream",
        38 => "driver firmware error",
        43 => "GPU stopped processing",
        45 => "preemptive cleanup, due to previous errors",
        48 => "double-bit ECC error",
        61 | 62 => "internal micro-controller error",
        63 => "ECC page retirement or row remapping recorded",
        64 => "ECC page retirement or row remapping failed",
        69 => "graphics engine class error",
        74 => "NVLink error",
        79 => "GPU has fallen off the bus",
        92 => "high single-bit ECC error rate",
        94 => "contained ECC error",
        95 => "uncontained ECC error",
        119 => "GSP RPC timeout",
        120 => "GSP error",
        _ => "see NVIDIA's XID catalogue",
    }
}

/// Where GPU readings come from: NVML, or a fake in tests.
pub trait GpuSource: Send {
    /// One reading per GPU and per MIG instance.
    fn read(&mut self) -> Result<Vec<GpuReading>, String>;
    /// XID errors seen since the last call: (GPU UUID, code).
    fn xid_events(&mut self) -> Vec<(String, u64)>;
}

/// Opens a GPU source, or says why there is none.
pub type OpenGpuSource = Box<dyn Fn() -> Result<Box<dyn GpuSource>, String> + Send>;

#[derive(Debug, Clone, Default)]
pub struct GpuTable(Arc<Mutex<GpuState>>);

impl GpuTable {
    pub fn latest(&self) -> GpuState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut GpuState)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

pub struct GpuCollector {
    open: OpenGpuSource,
    source: Option<Box<dyn GpuSource>>,
    host: String,
    start_ms: i64,
    table: GpuTable,
    series: NamedSeries,
    /// Per GPU: PCIe bytes so far (tx, rx) integrated from its throughput,
    /// XIDs so far, last tick.
    totals: HashMap<String, (f64, f64, u64, i64)>,
}

impl std::fmt::Debug for GpuCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuCollector")
            .field("open", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

// Offsets into a GPU's series, in the order `describe` declares them.
const UTIL: usize = 0;
const MEM_CTRL: usize = 1;
const MEM_USED: usize = 2;
const MEM_TOTAL: usize = 3;
const MEM_UTIL: usize = 4;
const TEMP: usize = 5;
const POWER: usize = 6;
const POWER_LIMIT: usize = 7;
const ENERGY: usize = 8;
const SM_CLOCK: usize = 9;
const MEM_CLOCK: usize = 10;
const ECC_CORR: usize = 11;
const ECC_UNCORR: usize = 12;
const XID: usize = 13;
const RETIRED_SBE: usize = 14;
const RETIRED_DBE: usize = 15;
const RETIRE_PENDING: usize = 16;
const PCIE_TX: usize = 17;
const PCIE_RX: usize = 18;
const THROTTLE: usize = 19;

fn describe(host: &str, start: i64, r: &GpuReading) -> Vec<SeriesDesc> {
    let mut base = vec![
        ("host.name", host),
        ("hw.id", r.uuid.as_str()),
        ("hw.name", r.name.as_str()),
        ("hw.type", "gpu"),
    ];
    if let Some(parent) = &r.parent {
        base.push(("hw.parent", parent.as_str()));
    }
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l = base.clone();
        l.extend_from_slice(extra);
        l
    };
    let gauge = |name: &str, extra: &[(&'static str, &'static str)], unit: &str, p: Option<u8>| {
        let mut d = SeriesDesc::gauge(key(name, &with(extra)), unit);
        d.precision = p;
        d
    };
    let counter = |name: &str, extra: &[(&'static str, &'static str)], unit: &str| {
        SeriesDesc::counter(key(name, &with(extra)), unit, start)
    };
    let mut d = vec![
        gauge(
            "hw.gpu.utilization",
            &[("hw.gpu.task", "general")],
            "1",
            Some(2),
        ),
        gauge("hw.gpu.memory.controller.utilization", &[], "1", Some(2)),
        gauge("hw.gpu.memory.usage", &[], "By", None),
        gauge("hw.gpu.memory.limit", &[], "By", None),
        gauge("hw.gpu.memory.utilization", &[], "1", Some(4)),
        gauge("hw.gpu.temperature", &[], "Cel", Some(0)),
        gauge("hw.power", &[], "W", Some(3)),
        gauge("hw.gpu.power.limit", &[], "W", Some(3)),
        counter("hw.energy", &[], "J").with_precision(3),
        gauge("hw.gpu.clock.sm", &[], "Hz", Some(0)),
        gauge("hw.gpu.clock.memory", &[], "Hz", Some(0)),
        counter("hw.errors", &[("error.type", "ecc_corrected")], "{error}"),
        counter("hw.errors", &[("error.type", "ecc_uncorrected")], "{error}"),
        counter("hw.errors", &[("error.type", "xid")], "{error}"),
        gauge(
            "hw.gpu.memory.retired_pages",
            &[("cause", "single_bit")],
            "{page}",
            None,
        ),
        gauge(
            "hw.gpu.memory.retired_pages",
            &[("cause", "double_bit")],
            "{page}",
            None,
        ),
        gauge("hw.gpu.memory.retirement_pending", &[], "1", None),
        counter("hw.gpu.io", &[("network.io.direction", "transmit")], "By").with_precision(0),
        counter("hw.gpu.io", &[("network.io.direction", "receive")], "By").with_precision(0),
    ];
    for (_, reason) in THROTTLE_REASONS {
        d.push(gauge("hw.gpu.throttle", &[("reason", reason)], "1", None));
    }
    d
}

impl GpuCollector {
    pub fn new(open: OpenGpuSource, host: &str, start_ms: i64, table: GpuTable) -> Self {
        Self {
            open,
            source: None,
            host: host.to_string(),
            start_ms,
            table,
            series: NamedSeries::default(),
            totals: HashMap::new(),
        }
    }

    fn emit_reading(&mut self, ts: i64, r: &GpuReading, new_xids: u64, out: &mut Emitter) {
        let (host, start) = (self.host.as_str(), self.start_ms);
        let ids: Vec<LocalId> = self
            .series
            .get(&r.uuid, out, |_| describe(host, start, r))
            .to_vec();
        let mut put = |i: usize, v: Option<f64>| {
            if let Some(v) = v {
                out.emit(ids[i], v);
            }
        };
        put(UTIL, r.utilization);
        put(MEM_CTRL, r.memory_controller_utilization);
        put(MEM_USED, r.memory_used.map(|v| v as f64));
        put(MEM_TOTAL, r.memory_total.map(|v| v as f64));
        if let (Some(used), Some(total)) = (r.memory_used, r.memory_total)
            && total > 0
        {
            put(MEM_UTIL, Some(used as f64 / total as f64));
        }
        put(TEMP, r.temperature_c);
        put(POWER, r.power_w);
        put(POWER_LIMIT, r.power_limit_w);
        put(ENERGY, r.energy_j);
        put(SM_CLOCK, r.sm_clock_hz);
        put(MEM_CLOCK, r.memory_clock_hz);
        put(ECC_CORR, r.ecc_corrected.map(|v| v as f64));
        put(ECC_UNCORR, r.ecc_uncorrected.map(|v| v as f64));
        put(RETIRED_SBE, r.retired_single_bit.map(|v| v as f64));
        put(RETIRED_DBE, r.retired_double_bit.map(|v| v as f64));
        put(
            RETIRE_PENDING,
            r.retirement_pending.map(|p| f64::from(u8::from(p))),
        );
        if let Some(bits) = r.throttle {
            for (i, (bit, _)) in THROTTLE_REASONS.iter().enumerate() {
                put(THROTTLE + i, Some(if bits & bit != 0 { 1.0 } else { 0.0 }));
            }
        }
        let totals = self
            .totals
            .entry(r.uuid.clone())
            .or_insert((0.0, 0.0, 0, ts));
        totals.2 += new_xids;
        put(XID, Some(totals.2 as f64));
        if let (Some(tx), Some(rx)) = (r.pcie_tx_bytes, r.pcie_rx_bytes) {
            // The driver's own byte counters: the counter the conventions ask for.
            put(PCIE_TX, Some(tx as f64));
            put(PCIE_RX, Some(rx as f64));
        } else if let (Some(tx), Some(rx)) = (r.pcie_tx_bytes_per_s, r.pcie_rx_bytes_per_s) {
            // Only a throughput: integrated over the time since the last tick.
            let dt = ((ts - totals.3).max(0) as f64) / 1000.0;
            totals.0 += tx * dt;
            totals.1 += rx * dt;
            put(PCIE_TX, Some(totals.0.round()));
            put(PCIE_RX, Some(totals.1.round()));
        }
        totals.3 = ts;
    }
}

impl Collector for GpuCollector {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn collect(&mut self, ts: i64, out: &mut Emitter) -> Result<(), CollectError> {
        let source = match &mut self.source {
            Some(s) => s,
            None => match (self.open)() {
                Ok(s) => self.source.insert(s),
                Err(why) => {
                    self.table.update(|t| t.unavailable = Some(why.clone()));
                    return Err(CollectError::Unsupported(why));
                }
            },
        };
        let xids = source.xid_events();
        let readings = source.read().map_err(|why| CollectError::Parse {
            path: "NVML".into(),
            what: why,
        })?;
        let mut per_gpu: HashMap<&str, u64> = HashMap::new();
        for (gpu, _) in &xids {
            *per_gpu.entry(gpu.as_str()).or_default() += 1;
        }
        for r in &readings {
            let n = per_gpu.get(r.uuid.as_str()).copied().unwrap_or(0);
            self.emit_reading(ts, r, n, out);
        }
        self.table.update(|t| {
            t.unavailable = None;
            for (gpu, code) in xids {
                if t.xid_history.len() == XID_HISTORY {
                    t.xid_history.pop_front();
                }
                t.xid_history.push_back(XidEvent {
                    ts,
                    gpu,
                    code,
                    description: xid_description(code).to_string(),
                });
            }
            t.devices = readings;
        });
        Ok(())
    }
}

pub mod nvml;

/// A fake NVML-shaped source for tests: readings and XIDs set by hand.
#[derive(Debug, Clone, Default)]
pub struct FakeGpus {
    pub readings: Arc<Mutex<Vec<GpuReading>>>,
    pub xids: Arc<Mutex<Vec<(String, u64)>>>,
}

impl GpuSource for FakeGpus {
    fn read(&mut self) -> Result<Vec<GpuReading>, String> {
        Ok(self
            .readings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    fn xid_events(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut *self.xids.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testing::Ticks;
    use ward_shared::fixtures::{h100, mig};

    #[test]
    fn readings_xids_and_mig_instances_from_the_fake_source() {
        let fake = FakeGpus::default();
        let mig = mig("MIG-1", "GPU-a");
        *fake.readings.lock().unwrap() = vec![h100("GPU-a"), mig];
        let source = fake.clone();
        let table = GpuTable::default();
        let mut c = GpuCollector::new(
            Box::new(move || Ok(Box::new(source.clone()))),
            "h",
            0,
            table.clone(),
        );
        let mut ticks = Ticks::default();
        ticks.tick(&mut c, 1000);
        fake.xids
            .lock()
            .unwrap()
            .extend([("GPU-a".to_string(), 79), ("GPU-a".to_string(), 48)]);
        let v = ticks.tick(&mut c, 2000);

        let gpu = |name: &str, extra: &str| {
            let k = format!(
                r#"{name}{{{extra}host.name="h",hw.id="GPU-a",hw.name="NVIDIA H100 80GB HBM3",hw.type="gpu"}}"#
            );
            *v.get(&k).unwrap_or_else(|| panic!("no {k}"))
        };
        assert_eq!(gpu("hw.gpu.memory.utilization", ""), 0.5);
        assert_eq!(gpu("hw.power", ""), 512.5);
        assert_eq!(gpu("hw.gpu.clock.sm", ""), 1.98e9);
        let with = |name: &str, label: &str| {
            let k = v
                .keys()
                .find(|k| {
                    k.starts_with(name) && k.contains(label) && k.contains(r#"hw.id="GPU-a""#)
                })
                .unwrap();
            v[k]
        };
        assert_eq!(with("hw.errors", r#"error.type="xid""#), 2.0);
        assert_eq!(with("hw.gpu.throttle", r#"reason="sw_power_cap""#), 1.0);
        assert_eq!(with("hw.gpu.throttle", r#"reason="hw_slowdown""#), 0.0);
        assert_eq!(with("hw.gpu.io", "transmit"), 1000.0, "1 s at 1000 B/s");
        let mig_key = v
            .keys()
            .find(|k| k.starts_with("hw.gpu.memory.usage") && k.contains(r#"hw.parent="GPU-a""#));
        assert!(
            mig_key.is_some(),
            "the MIG instance has its own series under its parent"
        );

        let state = table.latest();
        assert_eq!(state.unavailable, None);
        assert_eq!(state.devices.len(), 2);
        assert_eq!(state.devices[0].processes[0].pid, 4242);
        let codes: Vec<_> = state
            .xid_history
            .iter()
            .map(|x| (x.code, x.description.as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (79, "GPU has fallen off the bus"),
                (48, "double-bit ECC error")
            ]
        );
    }

    #[test]
    fn pcie_bytes_come_from_the_drivers_counters_or_from_sparse_throughput_samples() {
        let fake = FakeGpus::default();
        let source = fake.clone();
        let mut c = GpuCollector::new(
            Box::new(move || Ok(Box::new(source.clone()))),
            "h",
            0,
            GpuTable::default(),
        );
        let io = |v: &HashMap<String, f64>, direction: &str| {
            v.iter()
                .find(|(k, _)| k.starts_with("hw.gpu.io") && k.contains(direction))
                .map(|(_, v)| *v)
        };
        let mut ticks = Ticks::default();
        // A driver with counters: the series is the counter, exactly.
        for (ts, tx) in [(1000, 7_000_000_000u64), (2000, 7_000_123_456)] {
            *fake.readings.lock().unwrap() = vec![GpuReading {
                pcie_tx_bytes: Some(tx),
                pcie_rx_bytes: Some(tx / 2),
                pcie_tx_bytes_per_s: Some(123_456.0),
                pcie_rx_bytes_per_s: Some(61_728.0),
                ..h100("GPU-a")
            }];
            let v = ticks.tick(&mut c, ts);
            assert_eq!(io(&v, "transmit"), Some(tx as f64));
            assert_eq!(io(&v, "receive"), Some((tx / 2) as f64));
        }
        // Without counters, the throughput is integrated tick by tick, and
        // a GPU that gives neither has no PCIe series.
        for s in 1..=4 {
            *fake.readings.lock().unwrap() = vec![GpuReading {
                pcie_tx_bytes_per_s: Some(1000.0 * s as f64),
                pcie_rx_bytes_per_s: Some(10.0),
                ..h100("GPU-b")
            }];
            let v = ticks.tick(&mut c, s * 1000);
            let sent = [0.0, 2000.0, 5000.0, 9000.0][s as usize - 1];
            assert_eq!(io(&v, "transmit"), Some(sent), "second {s}");
            assert_eq!(io(&v, "receive"), Some((s - 1) as f64 * 10.0), "second {s}");
        }
        *fake.readings.lock().unwrap() = vec![GpuReading {
            pcie_tx_bytes_per_s: None,
            pcie_rx_bytes_per_s: None,
            ..h100("GPU-c")
        }];
        assert_eq!(io(&ticks.tick(&mut c, 5000), "transmit"), None);
    }

    #[test]
    fn the_xid_history_keeps_the_last_ones() {
        let fake = FakeGpus::default();
        *fake.readings.lock().unwrap() = vec![h100("GPU-a")];
        let source = fake.clone();
        let table = GpuTable::default();
        let mut c = GpuCollector::new(
            Box::new(move || Ok(Box::new(source.clone()))),
            "h",
            0,
            table.clone(),
        );
        fake.xids
            .lock()
            .unwrap()
            .extend((0..300).map(|i| ("GPU-a".to_string(), i)));
        c.collect(1000, &mut Emitter::default()).unwrap();
        let history = table.latest().xid_history;
        assert_eq!(history.len(), XID_HISTORY);
        assert_eq!(
            history.front().map(|x| x.code),
            Some(300 - XID_HISTORY as u64)
        );
    }

    #[test]
    fn without_a_driver_the_gpus_are_unavailable_and_say_why() {
        let table = GpuTable::default();
        let mut c = GpuCollector::new(Box::new(nvml::NvmlSource::open), "h", 0, table.clone());
        match c.collect(0, &mut Emitter::default()) {
            // A machine with a driver (the GPU box) reads its devices, and
            // what it reads is what a person would check with nvidia-smi.
            Ok(()) => {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let began = std::time::Instant::now();
                c.collect(500, &mut Emitter::default()).unwrap();
                println!("a collection took {:?}", began.elapsed());
                let state = table.latest();
                assert!(!state.devices.is_empty());
                for d in &state.devices {
                    println!("{d:?}");
                    assert!(!d.name.is_empty(), "{d:?}");
                    assert!(
                        d.uuid.starts_with("GPU-") || d.uuid.starts_with("MIG-"),
                        "{d:?}"
                    );
                    let total = d.memory_total.expect("memory total");
                    assert!(total > 1 << 30, "{d:?}");
                    assert!(d.memory_used.is_some_and(|u| u <= total), "{d:?}");
                    if d.parent.is_some() {
                        // A MIG instance has no sensors or link of its own.
                        continue;
                    }
                    assert!(
                        d.pcie_tx_bytes.is_some() || d.pcie_tx_bytes_per_s.is_some(),
                        "{d:?}"
                    );
                    assert!(
                        d.temperature_c.is_some_and(|t| (5.0..110.0).contains(&t)),
                        "{d:?}"
                    );
                    assert!(d.power_w.is_some_and(|w| w > 1.0), "{d:?}");
                    assert!(
                        d.utilization.is_some_and(|u| (0.0..=1.0).contains(&u)),
                        "{d:?}"
                    );
                }
            }
            Err(CollectError::Unsupported(why)) => {
                assert!(why.contains("NVML"), "{why}");
                assert_eq!(table.latest().unavailable, Some(why));
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}
