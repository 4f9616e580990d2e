//! StatsD over a real UDP socket, the whole listener path: a sender thread
//! paces packets at a target rate, the agent's listener thread receives,
//! parses and aggregates them, and the collector ticks once a second as in
//! the agent. Two phases of 5 s each:
//!
//! - target: 100,000 packets/s of an Airflow and DogStatsD mix;
//! - flood: as fast as one sender thread can go (aim: 10x the target),
//!   every packet with a new tag value, so that the cardinality limits are
//!   hit: memory must stay bounded and what is dropped must be counted.
//!
//! Printed per phase: packets sent, packets the listener received, packets
//! the kernel dropped (the socket's receive buffer overflowing, from
//! /proc/net/snmp), label sets dropped by the limits, the listener thread's
//! CPU time and packets per CPU-second, and this process's RSS.
//!
//! Run: `cargo bench -p ward-benches --bench statsd_udp`

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ward_agent::collect::statsd::{StatsdLimits, listen};
use ward_agent::collect::{Collector, Emitter};

fn packet(i: u64, flood: bool) -> String {
    let dag = i % 100;
    match (flood, i % 4) {
        (true, _) => format!(
            "requests.latency:{}|ms|#user:u{i},route:r{}",
            i % 300,
            i % 20
        ),
        // A DAG run ends now and then; its tasks report all the time.
        (_, 0) if i.is_multiple_of(1000) => format!(
            "airflow.dagrun.duration.success.dag_{dag}:{}|ms",
            1000 + i % 977
        ),
        (_, 0) => format!(
            "airflow.dag.dag_{dag}.task_{}.duration:{}|ms",
            i % 7,
            i % 977
        ),
        (_, 1) => format!("airflow.ti.finish.dag_{dag}.task_{}.success:1|c", i % 7),
        (_, 2) => format!(
            "requests.latency:{}|h|@0.5|#env:prod,service:api,route:r{}",
            i % 300,
            i % 20
        ),
        _ => format!("airflow.pool.open_slots.pool_{}:{}|g", i % 5, i % 64),
    }
}

/// Kernel-wide UDP receive-buffer drops.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(head), Some(vals)) = (lines.next(), lines.next()) else {
        return 0;
    };
    head.split_whitespace()
        .zip(vals.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of this process's thread named `name`.
fn thread_cpu(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
            let f: Vec<f64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect();
            return (f[11] + f[12]) / 100.0;
        }
    }
    0.0
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

struct Counters {
    received: f64,
    dropped: f64,
}

/// Ticks the collector and reads its own health counters.
fn tick(c: &mut dyn Collector, out: &mut Emitter, names: &mut Vec<(u32, String)>) -> Counters {
    out.clear();
    c.collect(0, out).expect("a statsd tick");
    for (id, d) in &out.declared {
        names.push((id.0, d.key.name.clone()));
    }
    let get = |name: &str| {
        names
            .iter()
            .filter(|(_, n)| n == name)
            .filter_map(|(id, _)| out.values.iter().find(|(v, _)| v.0 == *id))
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    Counters {
        received: get("ward.statsd.packets"),
        dropped: get("ward.statsd.dropped"),
    }
}

fn main() {
    let (mut collector, addr) =
        listen("127.0.0.1:0", StatsdLimits::default(), "bench", 0).expect("a loopback port");
    let mut out = Emitter::default();
    let mut names = Vec::new();
    println!(
        "StatsD over UDP, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut before = tick(&mut collector, &mut out, &mut names);
    for (phase, rate, flood) in [("target", 100_000u64, false), ("flood", 0, true)] {
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("a sender socket");
                sock.connect(addr).expect("connect to the listener");
                let start = Instant::now();
                let mut sent = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Paced in 1 ms slices; rate 0 means as fast as possible.
                    let due = if rate == 0 {
                        sent + 1000
                    } else {
                        (start.elapsed().as_secs_f64() * rate as f64) as u64
                    };
                    while sent < due {
                        let _ = sock.send(packet(i, flood).as_bytes());
                        sent += 1;
                        i += 1;
                    }
                    if rate != 0 {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
                (sent, start.elapsed().as_secs_f64())
            })
        };
        let (cpu0, kdrop0, t0) = (thread_cpu("statsd"), udp_rcvbuf_errors(), Instant::now());
        let mut peak_rss: f64 = 0.0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_secs(1));
            tick(&mut collector, &mut out, &mut names);
            peak_rss = peak_rss.max(rss_mb());
        }
        stop.store(true, Ordering::Relaxed);
        let (sent, sending) = sender.join().expect("the sender thread");
        std::thread::sleep(Duration::from_millis(300));
        let after = tick(&mut collector, &mut out, &mut names);
        let secs = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu("statsd") - cpu0;
        let received = after.received - before.received;
        assert_eq!(
            received as u64 + udp_rcvbuf_errors() - kdrop0,
            sent,
            "every packet is received or counted as dropped"
        );
        println!(
            "{phase:>6}: sent {:>9.0}/s  received {:>8.0} of {:>8}  kernel drops {:>8}  label sets dropped {:>8.0}  listener CPU {:>5.1}%  {:>9.0} packets per CPU-second  peak RSS {:.1} MB",
            sent as f64 / sending,
            received,
            sent,
            udp_rcvbuf_errors() - kdrop0,
            after.dropped - before.dropped,
            100.0 * cpu / secs,
            received / cpu.max(1e-9),
            peak_rss,
        );
        before = after;
    }
}
