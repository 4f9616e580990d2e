//! `ward-benches`: what the benchmarks in `benches/` share, and the NAB
//! evaluation of the anomaly detector ([`nab`]).
//!
//! [`HostSim`] generates the metrics of a plausible Linux host at 1 s: what
//! the collectors will produce, with their units and precisions, with noise,
//! bursts, idle devices and slow drifts, so that compression figures mean
//! something.

pub mod nab;
pub mod otlp_sink;
pub mod procfs;

use ward_agent::store::{Store, StoreError};
use ward_shared::{Labels, Sample, SeriesDesc, SeriesId, SeriesKey};

/// A small, seedable generator (xorshift64*): the benches need repeatable
/// noise, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, standard deviation 1.
    pub fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.unit()).sum::<f64>() * std::f64::consts::SQRT_2
            - 6.0 / std::f64::consts::SQRT_2
    }
}

/// How one simulated series moves each second.
#[derive(Debug, Clone)]
enum Shape {
    /// A counter that, in a second it is active (probability `p_active`),
    /// grows by `rate` with `noise`, plus a burst of `burst` with probability
    /// `p_burst`; `step` is its unit (1 byte, a 512-byte sector, 1 jiffy...).
    Counter {
        value: f64,
        p_active: f64,
        rate: f64,
        noise: f64,
        p_burst: f64,
        burst: f64,
        step: f64,
    },
    /// A gauge doing a random walk around `mean`, in steps of `step`.
    Walk {
        value: f64,
        mean: f64,
        sigma: f64,
        step: f64,
        p_move: f64,
    },
    /// A gauge that only changes every `every` seconds (load averages, fs usage).
    Slow {
        value: f64,
        sigma: f64,
        every: u64,
        step: f64,
    },
}

#[derive(Debug, Clone)]
struct SimSeries {
    id: SeriesId,
    shape: Shape,
}

/// A simulated host, registered in a store.
#[derive(Debug)]
pub struct HostSim {
    series: Vec<SimSeries>,
    rng: Rng,
    tick: u64,
}

fn key(name: &str, labels: &[(&str, String)]) -> SeriesKey {
    let labels = Labels::new(labels.iter().map(|(k, v)| (*k, v.clone()))).unwrap_or_default();
    SeriesKey::new(name, labels).unwrap_or_else(|_| SeriesKey {
        name: name.to_string(),
        labels: Labels::default(),
    })
}

impl HostSim {
    /// Registers a host with `cores` CPUs, 4 disks, 5 filesystems and 3 interfaces.
    pub fn register(store: &mut Store, cores: usize, seed: u64) -> Result<Self, StoreError> {
        let mut rng = Rng::new(seed);
        let mut series = Vec::new();
        let mut add =
            |store: &mut Store, desc: SeriesDesc, shape: Shape| -> Result<(), StoreError> {
                series.push(SimSeries {
                    id: store.register(desc)?,
                    shape,
                });
                Ok(())
            };
        // CPU time per core and state, in seconds at the kernel's 10 ms resolution.
        let states = [
            ("user", 0.12),
            ("system", 0.04),
            ("iowait", 0.01),
            ("irq", 0.002),
            ("softirq", 0.005),
            ("nice", 0.0),
            ("steal", 0.0),
            ("idle", 0.8),
        ];
        for cpu in 0..cores {
            let busy = 0.3 + rng.unit();
            for (state, share) in states {
                let rate = share * if state == "idle" { 1.0 } else { busy };
                let desc = SeriesDesc::counter(
                    key(
                        "system.cpu.time",
                        &[("cpu", cpu.to_string()), ("state", state.into())],
                    ),
                    "s",
                    0,
                )
                .with_precision(2);
                add(
                    store,
                    desc,
                    Shape::Counter {
                        value: 1e5 * rng.unit(),
                        p_active: 1.0,
                        rate,
                        noise: rate * 0.5,
                        p_burst: 0.01,
                        burst: 0.3 * share.min(0.5),
                        step: 0.01,
                    },
                )?;
            }
        }
        for (state, mean) in [
            ("used", 6.2e9),
            ("free", 2.1e9),
            ("cached", 7.4e9),
            ("buffers", 3.1e8),
        ] {
            let desc =
                SeriesDesc::gauge(key("system.memory.usage", &[("state", state.into())]), "By");
            add(
                store,
                desc,
                Shape::Walk {
                    value: mean,
                    mean,
                    sigma: 4096.0 * 40.0,
                    step: 4096.0,
                    p_move: 0.7,
                },
            )?;
        }
        add(
            store,
            SeriesDesc::gauge(
                key("system.memory.utilization", &[("state", "used".into())]),
                "1",
            )
            .with_precision(4),
            Shape::Walk {
                value: 0.38,
                mean: 0.38,
                sigma: 0.0002,
                step: 0.0001,
                p_move: 0.5,
            },
        )?;
        add(
            store,
            SeriesDesc::gauge(
                key("system.paging.usage", &[("state", "used".into())]),
                "By",
            ),
            Shape::Slow {
                value: 1.2e8,
                sigma: 4096.0 * 10.0,
                every: 300,
                step: 4096.0,
            },
        )?;
        for (i, name) in ["1m", "5m", "15m"].iter().enumerate() {
            let desc = SeriesDesc::gauge(
                key("system.cpu.load_average", &[("period", (*name).into())]),
                "1",
            )
            .with_precision(2);
            add(
                store,
                desc,
                Shape::Slow {
                    value: 1.5,
                    sigma: 0.2 / (i + 1) as f64,
                    every: 5,
                    step: 0.01,
                },
            )?;
        }
        // Disks: the system disk writes in bursts (journal commits, writeback),
        // a data disk is busy a third of the time, a spare one rarely.
        for (d, activity) in [
            ("nvme0n1", 0.4),
            ("nvme1n1", 0.3),
            ("sda", 0.03),
            ("dm-0", 0.4),
        ] {
            for (dir, rate) in [("read", 2e5), ("write", 8e5)] {
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.disk.io",
                            &[("device", d.into()), ("direction", dir.into())],
                        ),
                        "By",
                        0,
                    ),
                    Shape::Counter {
                        value: 512.0 * (2e8 * rng.unit()).round(),
                        p_active: activity,
                        rate,
                        noise: rate,
                        p_burst: 0.02,
                        burst: 5e7,
                        step: 512.0,
                    },
                )?;
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.disk.operations",
                            &[("device", d.into()), ("direction", dir.into())],
                        ),
                        "{operation}",
                        0,
                    ),
                    Shape::Counter {
                        value: (1e8 * rng.unit()).round(),
                        p_active: activity,
                        rate: rate / 16384.0,
                        noise: rate / 16384.0,
                        p_burst: 0.02,
                        burst: 500.0,
                        step: 1.0,
                    },
                )?;
            }
            add(
                store,
                SeriesDesc::counter(key("system.disk.io_time", &[("device", d.into())]), "s", 0)
                    .with_precision(3),
                Shape::Counter {
                    value: (1e8 * rng.unit()).round() / 1e3,
                    p_active: activity,
                    rate: 0.02,
                    noise: 0.02,
                    p_burst: 0.02,
                    burst: 0.5,
                    step: 0.001,
                },
            )?;
            add(
                store,
                SeriesDesc::counter(
                    key("system.disk.operation_time", &[("device", d.into())]),
                    "s",
                    0,
                )
                .with_precision(3),
                Shape::Counter {
                    value: (1e8 * rng.unit()).round() / 1e3,
                    p_active: activity,
                    rate: 0.03,
                    noise: 0.03,
                    p_burst: 0.02,
                    burst: 0.8,
                    step: 0.001,
                },
            )?;
        }
        for (m, size) in [
            ("/", 2e11),
            ("/home", 1e12),
            ("/boot", 1e9),
            ("/var", 5e10),
            ("/data", 4e12),
        ] {
            add(
                store,
                SeriesDesc::gauge(
                    key(
                        "system.filesystem.usage",
                        &[("mountpoint", m.into()), ("state", "used".into())],
                    ),
                    "By",
                ),
                Shape::Slow {
                    value: size * 0.4,
                    sigma: 4096.0 * 50.0,
                    every: 10,
                    step: 4096.0,
                },
            )?;
            add(
                store,
                SeriesDesc::gauge(
                    key(
                        "system.filesystem.usage",
                        &[("mountpoint", m.into()), ("state", "free".into())],
                    ),
                    "By",
                ),
                Shape::Slow {
                    value: size * 0.6,
                    sigma: 4096.0 * 50.0,
                    every: 10,
                    step: 4096.0,
                },
            )?;
            add(
                store,
                SeriesDesc::gauge(
                    key(
                        "system.filesystem.inodes.usage",
                        &[("mountpoint", m.into()), ("state", "used".into())],
                    ),
                    "{inode}",
                ),
                Shape::Slow {
                    value: 3e5,
                    sigma: 3.0,
                    every: 30,
                    step: 1.0,
                },
            )?;
        }
        // Network: the uplink always carries traffic, a second NIC often, loopback now and then.
        for (iface, activity, p_active) in
            [("eth0", 1.0, 1.0), ("eth1", 0.1, 0.5), ("lo", 0.02, 0.3)]
        {
            for (dir, rate) in [("receive", 1.2e6), ("transmit", 4e5)] {
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.network.io",
                            &[("device", iface.into()), ("direction", dir.into())],
                        ),
                        "By",
                        0,
                    ),
                    Shape::Counter {
                        value: (1e12 * rng.unit()).round(),
                        p_active,
                        rate: rate * activity,
                        noise: rate * activity * 0.6,
                        p_burst: 0.01,
                        burst: 2e7 * activity,
                        step: 1.0,
                    },
                )?;
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.network.packets",
                            &[("device", iface.into()), ("direction", dir.into())],
                        ),
                        "{packet}",
                        0,
                    ),
                    Shape::Counter {
                        value: (1e9 * rng.unit()).round(),
                        p_active,
                        rate: rate * activity / 900.0,
                        noise: rate * activity / 1500.0,
                        p_burst: 0.01,
                        burst: 2e4 * activity,
                        step: 1.0,
                    },
                )?;
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.network.errors",
                            &[("device", iface.into()), ("direction", dir.into())],
                        ),
                        "{error}",
                        0,
                    ),
                    Shape::Counter {
                        value: 0.0,
                        p_active: 0.0,
                        rate: 0.0,
                        noise: 0.0,
                        p_burst: 0.0002,
                        burst: 3.0,
                        step: 1.0,
                    },
                )?;
                add(
                    store,
                    SeriesDesc::counter(
                        key(
                            "system.network.dropped",
                            &[("device", iface.into()), ("direction", dir.into())],
                        ),
                        "{packet}",
                        0,
                    ),
                    Shape::Counter {
                        value: 12.0,
                        p_active: 0.0,
                        rate: 0.0,
                        noise: 0.0,
                        p_burst: 0.001,
                        burst: 2.0,
                        step: 1.0,
                    },
                )?;
            }
        }
        add(
            store,
            SeriesDesc::counter(key("system.cpu.context_switches", &[]), "{switch}", 0),
            Shape::Counter {
                value: 1e10,
                p_active: 1.0,
                rate: 9000.0,
                noise: 2500.0,
                p_burst: 0.01,
                burst: 20000.0,
                step: 1.0,
            },
        )?;
        add(
            store,
            SeriesDesc::counter(key("system.cpu.interrupts", &[]), "{interrupt}", 0),
            Shape::Counter {
                value: 1e10,
                p_active: 1.0,
                rate: 5000.0,
                noise: 1200.0,
                p_burst: 0.01,
                burst: 10000.0,
                step: 1.0,
            },
        )?;
        for (state, mean) in [("running", 3.0), ("blocked", 0.2), ("sleeping", 310.0)] {
            add(
                store,
                SeriesDesc::gauge(
                    key("system.processes.count", &[("status", state.into())]),
                    "{process}",
                ),
                Shape::Walk {
                    value: mean,
                    mean,
                    sigma: 1.0,
                    step: 1.0,
                    p_move: 0.3,
                },
            )?;
        }
        Ok(Self {
            series,
            rng,
            tick: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The samples of the next second, stamped `ts`.
    pub fn tick(&mut self, ts: i64, out: &mut Vec<Sample>) {
        let rng = &mut self.rng;
        let tick = self.tick;
        for s in &mut self.series {
            let value = match &mut s.shape {
                Shape::Counter {
                    value,
                    p_active,
                    rate,
                    noise,
                    p_burst,
                    burst,
                    step,
                } => {
                    let mut inc = if rng.unit() < *p_active {
                        (*rate + *noise * rng.normal()).max(0.0)
                    } else {
                        0.0
                    };
                    if rng.unit() < *p_burst {
                        inc += *burst * rng.unit();
                    }
                    *value += (inc / *step).round() * *step;
                    *value
                }
                Shape::Walk {
                    value,
                    mean,
                    sigma,
                    step,
                    p_move,
                } => {
                    if rng.unit() < *p_move {
                        let pull = (*mean - *value) * 0.01;
                        *value += ((pull + *sigma * rng.normal()) / *step).round() * *step;
                        *value = value.max(0.0);
                    }
                    *value
                }
                Shape::Slow {
                    value,
                    sigma,
                    every,
                    step,
                } => {
                    if tick.is_multiple_of(*every) {
                        *value += ((*sigma * rng.normal()) / *step).round() * *step;
                        *value = value.max(0.0);
                    }
                    *value
                }
            };
            out.push(Sample {
                series: s.id,
                ts,
                value,
            });
        }
        self.tick += 1;
    }
}
