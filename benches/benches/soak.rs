//! Soak: the real `ward-agent` for an hour with everything on, watched for
//! creeping memory or CPU.
//!
//! The release binary runs on a fresh data directory with every collector
//! at its default interval (1 s; processes 5 s), anomaly detection on every
//! series, OTLP/HTTP export every 10 s to a receiver on loopback that
//! decodes every request ([`ward_benches::otlp_sink`]), StatsD traffic (30
//! Airflow-style lines a second) and a wrapped job every minute (one in ten
//! failing, which opens incidents that are exported as log records). RSS
//! and CPU time come from /proc every 10 s; each minute prints a line, with
//! what the agent's status says its store heads and detectors hold.
//!
//! Until the warm-up is over (`WARD_SOAK_WARMUP_SECONDS`, default 3600) the
//! agent is still filling what it is meant to hold: every detector's
//! history (1,440 rows, 24 minutes at 1 s), its first models, the first
//! 30-minute raw windows of the store, the first export. Not all of it: a
//! detector adds a model a view every 360 rows until it keeps 18, so the
//! models fill for 108 minutes, into the measured hour (a warm-up of 6600
//! measures the agent with every model in place). After the warm-up,
//! for an hour by default (`WARD_BENCH_SECONDS` is the whole run, default
//! the warm-up plus 3600), it prints the spread of the one-minute RSS
//! means, (max - min) / mean, against the target of 5%, the drift from the
//! first ten measured minutes to the last ten, and the one-minute CPU
//! shares.
//!
//! Run: `cargo bench -p ward-benches --bench soak`.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ward_benches::procfs::{cpu_seconds, release_agent, status_kb};

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn spread(values: &[f64]) -> (f64, f64, f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (min, mean, max, (max - min) / mean * 100.0)
}

fn main() {
    let warmup = env_secs("WARD_SOAK_WARMUP_SECONDS", 3600);
    let seconds = env_secs("WARD_BENCH_SECONDS", warmup + 3600);
    assert!(
        seconds > warmup + 120,
        "WARD_BENCH_SECONDS must exceed the warm-up by 2 minutes"
    );
    let agent = release_agent();
    let sink = ward_benches::otlp_sink::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let socket = dir.path().join("api.sock");
    let statsd = {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
        probe.local_addr().expect("its address")
    };
    let mut child = Command::new(&agent)
        .args(["run", "--data-dir"])
        .arg(&data)
        .env("WARD_LOG_LEVEL", "warn")
        .env("WARD_API_SOCKET", &socket)
        .env("WARD_JOBS_STATSD_LISTEN", statsd.to_string())
        .env("WARD_EXPORT_OTLP_ENDPOINT", &sink.url)
        .env("WARD_EXPORT_OTLP_PROTOCOL", "http/protobuf")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the agent starts");
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));

    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let out = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let packet = format!(
                    "airflow.dag.soak_etl.transform.duration:{}|ms\nairflow.ti_successes:1|c\nsoak.queue.depth:{}|g",
                    800 + n % 400,
                    n % 50
                );
                let _ = out.send_to(packet.as_bytes(), statsd);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let jobs = {
        let (stop, agent, socket) = (stop.clone(), agent.clone(), socket.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let code = if n % 10 == 0 { 1 } else { 0 };
                let _ = Command::new(&agent)
                    .args(["job", "run", "--name", "soak-etl", "--agent"])
                    .arg(&socket)
                    .args(["--", "sh", "-c", &format!("sleep 1; exit {code}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                for _ in 0..59 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
    };

    let status = || -> serde_json::Value {
        let out = Command::new(&agent)
            .args(["status", "--json", "--data-dir"])
            .arg(&data)
            .output()
            .expect("ward-agent status runs");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let t0 = Instant::now();
    let (mut minute_rss, mut minute_cpu, mut rss_now) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_mark = cpu_seconds(pid);
    println!(
        "minute  rss MB  cpu % of a core  points received  logs received  exporter lag s  store heads MB  detectors MB"
    );
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(10));
        rss_now.push(status_kb(pid, "VmRSS:") / 1024.0);
        if rss_now.len() == 6 {
            let minute = (t0.elapsed().as_secs_f64() / 60.0).round();
            let cpu = cpu_seconds(pid);
            let share = (cpu - cpu_mark) / 60.0 * 100.0;
            cpu_mark = cpu;
            let rss = rss_now.iter().sum::<f64>() / 6.0;
            rss_now.clear();
            let s = status();
            println!(
                "{minute:>6}  {rss:>6.1}  {share:>15.2}  {:>15}  {:>13}  {:>14.0}  {:>14.1}  {:>12.1}",
                sink.counts.points.load(Ordering::Relaxed),
                sink.counts.logs.load(Ordering::Relaxed),
                number(&s["exporter"]["lag_seconds"]),
                number(&s["store"]["memory_bytes"]) / 1e6,
                number(&s["detect"]["memory_bytes"]) / 1e6,
            );
            if minute * 60.0 > warmup as f64 {
                minute_rss.push(rss);
                minute_cpu.push(share);
            }
        }
    }
    let peak = status_kb(pid, "VmHWM:") / 1024.0;
    let last = status();
    let (failures, logs_sent) = (
        number(&last["exporter"]["failures"]),
        number(&last["exporter"]["logs_sent"]),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = child.wait().expect("the agent exits");
    let _ = traffic.join();
    let _ = jobs.join();

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (rmin, rmean, rmax, rspread) = spread(&minute_rss);
    let (cmin, cmean, cmax, _) = spread(&minute_cpu);
    let ten = minute_rss.len().min(10);
    let (first, last_ten) = (
        spread(&minute_rss[..ten]).1,
        spread(&minute_rss[minute_rss.len() - ten..]).1,
    );
    println!("machine:   {cores} CPUs");
    println!(
        "measured:  {} min after a {} min warm-up; every collector, detection, OTLP/HTTP export, StatsD, a job a minute",
        minute_rss.len(),
        warmup / 60
    );
    println!(
        "rss:       one-minute means {rmin:.1} to {rmax:.1} MB (mean {rmean:.1}): spread {rspread:.1}% (target 5%); peak {peak:.1} MB"
    );
    println!(
        "drift:     {first:.1} MB over the first {ten} measured minutes, {last_ten:.1} MB over the last {ten}: {:+.1}%",
        (last_ten - first) / first * 100.0
    );
    println!("cpu:       one-minute shares {cmin:.2}% to {cmax:.2}% of one core, mean {cmean:.2}%");
    println!(
        "export:    {} points and {} log records received ({logs_sent} logs sent), {failures} failures; agent exit {exit}",
        sink.counts.points.load(Ordering::Relaxed),
        sink.counts.logs.load(Ordering::Relaxed),
    );
}
