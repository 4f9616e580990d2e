//! Faults on disk under a real agent: a chunk damaged in its block file.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::Running;
use ward_agent::store::{Store, StoreOptions};
use ward_shared::api::{Aggregation, QueryRequest};
use ward_shared::client::{Client, Endpoint};
use ward_shared::time::now_ms;
use ward_shared::{Labels, Sample, SeriesDesc, SeriesKey};

const WINDOW: i64 = 30 * 60 * 1000;

#[test]
fn a_damaged_chunk_is_reported_and_everything_else_is_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An hour of two series, two sealed 30-minute windows, some hours ago.
    let start = (now_ms() - 4 * 3_600_000) / WINDOW * WINDOW;
    {
        let mut store = Store::open(&data, StoreOptions::default()).unwrap();
        let ids: Vec<_> = ["fault.a", "fault.b"]
            .map(|name| {
                let key = SeriesKey::new(name, Labels::new([("n", "1")]).unwrap()).unwrap();
                store.register(SeriesDesc::gauge(key, "1")).unwrap()
            })
            .to_vec();
        let samples: Vec<Sample> = (0..3600)
            .flat_map(|i| {
                ids.iter().map(move |&series| Sample {
                    series,
                    ts: start + i * 1000,
                    value: i as f64,
                })
            })
            .collect();
        store.append(&samples).unwrap();
        store.close().unwrap();
    }
    // A flipped byte in the first window's file: fault.a's chunk, written first.
    let block = data.join(format!("blocks/0-{start}.blk"));
    let mut bytes = std::fs::read(&block).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&block, bytes).unwrap();

    let running = Running::start(&data);
    running.wait_for("api listening");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Client::new(Endpoint::Unix(data.with_extension("sock")));
        let mut counts = Vec::new();
        for name in ["fault.a", "fault.b"] {
            let series = client.series(name).await.unwrap();
            assert_eq!(series.len(), 1, "{name}: {series:?}");
            let answer = client
                .query(&QueryRequest {
                    series: vec![series[0].id],
                    start,
                    end: start + 2 * WINDOW,
                    step: None,
                    agg: Aggregation::Last,
                })
                .await
                .unwrap();
            let points = &answer[0].points;
            counts.push((points.len(), points.first().map(|p| p.0)));
        }
        assert_eq!(
            counts,
            [(1800, Some(start + WINDOW)), (3600, Some(start))],
            "fault.a loses the damaged window only; fault.b is whole"
        );
        // Reported: in the status the API serves, and in the log.
        let status = client.status().await.unwrap();
        assert_eq!(status.store.chunks_unreadable, 1);
        assert_eq!(status.state, "running");
        assert!(client.health().await.is_ok());
    });
    let warning = running.wait_for("skipping an unreadable chunk");
    assert!(warning.contains(&start.to_string()), "{warning}");
    running.signal("TERM");
    running.wait_for("store closed");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());
}
