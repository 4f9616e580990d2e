//! Faults on disk under a real agent: a chunk damaged in its block file,
//! the data directory's filesystem full.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Running, agent};
use ward_agent::store::{Store, StoreOptions};
use ward_shared::api::{Aggregation, QueryRequest};
use ward_shared::client::{Client, Endpoint};
use ward_shared::time::now_ms;
use ward_shared::{Labels, Sample, SeriesDesc, SeriesKey};

const WINDOW: i64 = 30 * 60 * 1000;

#[test]
fn a_damaged_chunk_is_quarantined_reported_and_everything_else_is_still_served() {
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
    let served = || {
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
            (counts, client.status().await.unwrap())
        })
    };
    let (counts, status) = served();
    assert_eq!(
        counts,
        [(1800, Some(start + WINDOW)), (3600, Some(start))],
        "fault.a loses the damaged window only; fault.b is whole"
    );
    // Reported: in the status the API serves, and in the log.
    assert_eq!(status.store.chunks_unreadable, 1);
    assert_eq!(status.store.chunks_quarantined, 1);
    assert_eq!(status.state, "running");
    let warning = running.wait_for("quarantined an unreadable chunk");
    assert!(warning.contains(&start.to_string()), "{warning}");
    // Set aside where the log says, as the bytes were found.
    let aside: Vec<_> = std::fs::read_dir(data.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        warning.contains(&aside[0].display().to_string()),
        "{warning}"
    );
    let damaged = std::fs::read(&block).unwrap();
    let kept = std::fs::read(&aside[0]).unwrap();
    assert_eq!(kept.as_slice(), &damaged[8..8 + kept.len()]);
    running.signal("TERM");
    running.wait_for("store closed");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());

    // The next start serves the same, without tripping on it again, and
    // still says it is there.
    let running = Running::start(&data);
    running.wait_for("api listening");
    let (again, status) = served();
    assert_eq!(again, counts);
    assert_eq!(status.store.chunks_unreadable, 0);
    assert_eq!(status.store.chunks_quarantined, 1);
    let out = agent()
        .args(["status", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 damaged chunks set aside in quarantine/"),
        "{text}"
    );
    assert!(text.contains(", 0 unreadable chunks"), "{text}");
    running.signal("TERM");
    let log = running.lines_until("store closed");
    assert!(
        !log.iter().any(|l| l.contains("unreadable chunk")),
        "{log:?}"
    );
}

/// The agent in a mount namespace of its own where `data` is a 6 MB tmpfs
/// (unshare: as root, or as a user where user namespaces are allowed).
fn agent_on_a_small_filesystem(data: &Path, socket: &Path) -> Running {
    std::fs::create_dir_all(data).unwrap();
    let mut cmd = Command::new("unshare");
    // The tests must not pick up an operator's overrides.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARD_")) {
        cmd.env_remove(k);
    }
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
    ])
    .args([
        "sh",
        "-c",
        r#"mount -t tmpfs -o size=6m ward-test "$0" && exec "$@""#,
    ])
    .arg(data)
    .arg(env!("CARGO_BIN_EXE_ward-agent"))
    .args(["run", "--data-dir"])
    .arg(data)
    .env("WARD_AGENT_INTERVAL", "100ms")
    .env("WARD_COLLECT_PROCESS_INTERVAL", "1s")
    .env("WARD_API_SOCKET", socket)
    .env("WARD_JOBS_STATSD_LISTEN", "127.0.0.1:0")
    .stderr(Stdio::piped());
    Running::spawn(cmd)
}

#[test]
fn a_full_disk_keeps_the_agent_running_reports_it_and_loses_nothing_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (data, socket) = (dir.path().join("data"), dir.path().join("api.sock"));
    let running = agent_on_a_small_filesystem(&data, &socket);
    running.wait_for("api listening");
    // The agent's view of its data directory, from outside its namespace.
    let inside = PathBuf::from(format!(
        "/proc/{}/root{}",
        running.child.id(),
        data.display()
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(Endpoint::Unix(socket.clone()));
    std::thread::sleep(Duration::from_secs(2));
    let memory = rt.block_on(client.series("system.memory.usage")).unwrap();
    let series = memory[0].id;
    let began = now_ms();

    // Fill the filesystem to the last byte.
    let filler = inside.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..512]).is_ok() {}
    }
    running.wait_for("data directory full");
    std::thread::sleep(Duration::from_secs(3));
    let status = rt.block_on(client.status()).unwrap();
    assert_eq!(status.state, "running");
    let full_since = status
        .store
        .disk_full_since
        .expect("the status says the disk is full");
    assert!(full_since >= began, "{full_since} < {began}");

    // Space returns: the agent writes what it kept.
    std::fs::remove_file(&filler).unwrap();
    running.wait_for("takes writes again");
    std::thread::sleep(Duration::from_secs(2));
    let status = rt.block_on(client.status()).unwrap();
    assert_eq!(status.store.disk_full_since, None);
    let points = rt
        .block_on(client.query(&QueryRequest {
            series: vec![series],
            start: began,
            end: now_ms(),
            step: None,
            agg: Aggregation::Last,
        }))
        .unwrap()
        .remove(0)
        .points;
    // Nothing missing across the full spell: samples every 100 ms, no gap
    // longer than a few ticks.
    let longest = points.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(
        points.len() > 30 && longest < 1000,
        "{} points, longest gap {longest} ms",
        points.len()
    );
    assert!(
        points.iter().any(|p| p.0 > full_since + 2000),
        "samples from the full spell"
    );
    // And they are on disk: the log grew once space returned.
    let wal: u64 = std::fs::read_dir(inside.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(wal > 1000, "the write-ahead log holds {wal} bytes");

    running.signal("TERM");
    running.wait_for("store closed");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());
}
