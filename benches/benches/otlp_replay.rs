//! Backlog replay: how fast the OTLP exporter ships what piled up in the
//! store while the backend was away.
//!
//! A store on disk gets one hour of 1-second samples of 300 series (200
//! gauges, 100 counters: 1,080,000 points, most of them in sealed chunks),
//! the exporter's cursor is put at the start of that hour, and the agent's
//! exporter (`ward_agent::export::start`, default batch of 8192 points)
//! sends it over OTLP/HTTP protobuf to a receiver on loopback that decodes
//! every request (prost, the same generated types) and counts the points.
//! Printed for gzip on (the default) and off: points per second from the
//! exporter's start until the receiver has every point, and the CPU time
//! of the whole process (exporter and receiver) per point.
//!
//! Target: at least 200,000 points/s.
//!
//! Run: `cargo bench -p ward-benches --bench otlp_replay`

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use ward_agent::export::{ExportSettings, Protocol};
use ward_agent::store::SharedStore;
use ward_agent::store::{Collection, Store, StoreSettings};
use ward_shared::{Labels, Sample, SeriesDesc, SeriesKey};

const SERIES: usize = 300;
const SECONDS: i64 = 3600;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// One hour of samples, the exporter's cursor at its start.
fn backlog(dir: &std::path::Path) -> (SharedStore, u64) {
    let mut store = Store::open(dir, StoreSettings::default()).expect("store");
    let end = ward_shared::time::now_ms() - 10_000;
    let start = end - SECONDS * 1000;
    let ids: Vec<_> = (0..SERIES)
        .map(|i| {
            let key = SeriesKey::new(
                if i < 200 {
                    "bench.gauge"
                } else {
                    "bench.counter"
                },
                Labels::new([("host.name", "bench"), ("n", i.to_string().as_str())])
                    .expect("labels"),
            )
            .expect("key");
            let desc = if i < 200 {
                SeriesDesc::gauge(key, "1")
            } else {
                SeriesDesc::counter(key, "By", start)
            };
            store.register(desc).expect("register")
        })
        .collect();
    let mut total = 0;
    let mut batch = Vec::with_capacity(SERIES);
    for s in 0..SECONDS {
        let ts = start + s * 1000;
        batch.clear();
        for (i, &series) in ids.iter().enumerate() {
            let value = if i < 200 {
                ((s as f64 / 60.0 + i as f64).sin() * 50.0 + 50.0).round() / 100.0
            } else {
                (s * (i as i64 + 1) * 1500) as f64
            };
            batch.push(Sample { series, ts, value });
        }
        store.append(&batch).expect("append");
        total += batch.len() as u64;
    }
    store
        .put_doc(
            Collection::Cursors,
            b"otlp.metrics",
            (start - 1).to_string().as_bytes(),
        )
        .expect("cursor");
    store.flush().expect("flush");
    (SharedStore::new(store), total)
}

fn run(gzip: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, total) = backlog(dir.path());
    let sink = ward_benches::otlp_sink::start();
    let settings = ExportSettings {
        endpoint: sink.url.parse().expect("uri"),
        protocol: Protocol::HttpProtobuf,
        headers: Vec::new(),
        gzip,
        ca_file: None,
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        max_batch_points: 8192,
        logs: false,
        resource_attributes: Vec::new(),
        host: "bench".into(),
        sample_interval: Duration::from_secs(1),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stop = CancellationToken::new();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    rt.block_on(async {
        // The exporter's own series, written as the agent writes them.
        let health = ward_agent::telemetry::exporter_series(store.clone(), "bench");
        let (task, stats) = ward_agent::export::start(settings, store.clone(), stop.clone(), health)
            .expect("exporter");
        while sink.counts.points.load(Ordering::Relaxed) < total {
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "replay stalled at {} of {total} points",
                sink.counts.points.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        stop.cancel();
        let _ = task.await;
        let requests = stats.requests.load(Ordering::Relaxed);
        println!(
            "otlp_replay http/protobuf gzip={gzip}: {total} points in {elapsed:.2} s = {:.0} points/s, \
             {requests} requests of about {:.0} points, {:.2} s CPU (exporter and receiver) = {:.2} µs per point",
            total as f64 / elapsed,
            total as f64 / requests.max(1) as f64,
            cpu,
            cpu / total as f64 * 1e6
        );
    });
}

fn main() {
    println!(
        "OTLP backlog replay, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    run(true);
    run(false);
}
