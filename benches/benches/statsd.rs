//! StatsD ingest: parsing and aggregating packets as the listener does,
//! one line a packet, a mix of Airflow timers and counters and DogStatsD
//! tagged metrics across 200 DAGs. Target: at least 100,000 packets/s on
//! one core. The socket itself (one recv a packet) is not in this figure.
//!
//! Run: `cargo bench -p ward-benches --bench statsd`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ward_agent::collect::statsd::{Aggregator, StatsdLimits};

fn packets() -> Vec<Vec<u8>> {
    (0..10_000)
        .map(|i| {
            let dag = i % 200;
            match i % 4 {
                0 => format!(
                    "airflow.dagrun.duration.success.dag_{dag}:{}|ms",
                    1000 + i % 977
                ),
                1 => format!("airflow.ti.finish.dag_{dag}.task_{}.success:1|c", i % 7),
                2 => format!(
                    "requests.latency:{}|h|@0.5|#env:prod,service:api,route:r{}",
                    i % 300,
                    i % 20
                ),
                _ => format!("airflow.pool.open_slots.pool_{}:{}|g", i % 5, i % 64),
            }
            .into_bytes()
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let packets = packets();
    let mut group = c.benchmark_group("statsd");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("parse_and_aggregate_10k_packets", |b| {
        let mut agg = Aggregator::new(StatsdLimits::default());
        b.iter(|| {
            for p in &packets {
                agg.packet(p);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
