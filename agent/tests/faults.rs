//! Faults under a real agent: a chunk damaged in its block file, the data
//! directory's filesystem full, SIGKILL in the middle of heavy ingest.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Running, agent};
use ward_agent::store::{Aggregation as StoreAggregation, Query, Store, StoreSettings};
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
        let mut store = Store::open(&data, StoreSettings::default()).unwrap();
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
    let text = status_text(&data);
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
    // Its status file cannot be rewritten while the disk is full: once it
    // is stale, `ward-agent status` asks the agent on its socket instead of
    // saying that none runs.
    let written = |p: &Path| {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()
            ["updated"]
            .as_i64()
            .unwrap()
    };
    let file = inside.join("status.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while now_ms() - written(&file) < 31_000 {
        assert!(
            Instant::now() < deadline,
            "status.json kept being rewritten"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let shown = agent()
        .args(["status", "--data-dir"])
        .arg(&inside)
        .env("WARD_API_SOCKET", &socket)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&shown.stdout),
        String::from_utf8_lossy(&shown.stderr),
    );
    assert!(shown.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("store: DISK FULL for"), "{stdout}");
    assert!(stderr.contains("is not up to date"), "{stderr}");

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

/// The newest sample, and how many there are from `from` on, of the series
/// whose name starts with `prefix`.
fn newest_and_count(store: &Store, prefix: &str, from: i64) -> (i64, usize) {
    let ids: Vec<_> = store
        .series()
        .filter(|(_, d)| d.key.name.starts_with(prefix))
        .map(|(id, _)| id)
        .collect();
    assert!(!ids.is_empty(), "no series {prefix}* in the store");
    let mut newest = i64::MIN;
    let mut count = 0;
    for series in ids {
        let points = store
            .query(&Query {
                series,
                start: from,
                end: i64::MAX,
                step: None,
                agg: StoreAggregation::Last,
            })
            .unwrap();
        count += points.len();
        newest = newest.max(points.last().map_or(i64::MIN, |p| p.ts));
    }
    (newest, count)
}

/// What `ward-agent status` prints for the agent on `data`.
fn status_text(data: &Path) -> String {
    let out = agent()
        .args(["status", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback address no one listens on (the agent binds it next).
fn free_udp_address() -> std::net::SocketAddr {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[test]
fn killed_during_heavy_ingest_the_store_opens_and_loses_at_most_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let statsd = free_udp_address();
    // Heavy ingest: StatsD gauges for 500 metrics as fast as one thread
    // sends them, besides every collector sampling every 100 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let out = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let packet: String = (0..25)
                    .map(|i| format!("flood.m{}:{}|g\n", (n * 25 + i) % 500, n % 1000))
                    .collect();
                let _ = out.send_to(packet.trim_end().as_bytes(), statsd);
                n += 1;
            }
            n
        })
    };
    let began = now_ms();
    // What each kill left durable: (newest memory sample, memory samples,
    // StatsD samples) from `began` on; a later open must still hold them.
    let mut kept: Vec<(i64, usize, usize)> = Vec::new();
    for round in 0..3u64 {
        let mut running = Running::start_with(
            &data,
            &[("WARD_JOBS_STATSD_LISTEN", statsd.to_string().as_ref())],
        );
        running.wait_for("statsd listening");
        std::thread::sleep(Duration::from_millis(3000 + 370 * round));
        let killed_at = now_ms();
        running.child.kill().unwrap(); // SIGKILL: no flush, no seal, no goodbye
        running.child.wait().unwrap();

        // The store opens as the killed agent left it; the samples lost are
        // at most those of the last flush interval (1 s), plus the ticks
        // being collected and handed over (100 ms each) and some scheduling
        // slack on a loaded machine.
        let store = Store::open(&data, StoreSettings::default()).unwrap();
        let (newest, memory) = newest_and_count(&store, "system.memory.usage", began);
        let (statsd_newest, statsd_samples) = newest_and_count(&store, "flood.m", began);
        println!(
            "round {round}: killed {} ms after the newest memory sample, {} ms after the newest StatsD one",
            killed_at - newest,
            killed_at - statsd_newest
        );
        for (what, t) in [("system.memory.usage", newest), ("flood.m*", statsd_newest)] {
            assert!(
                killed_at - t <= 1000 + 500,
                "round {round}: the newest {what} sample is {} ms older than the kill",
                killed_at - t
            );
        }
        for &(then_newest, then_memory, then_statsd) in &kept {
            let memory_then: usize = store
                .series()
                .filter(|(_, d)| d.key.name == "system.memory.usage")
                .map(|(series, _)| {
                    store
                        .query(&Query {
                            series,
                            start: began,
                            end: then_newest,
                            step: None,
                            agg: StoreAggregation::Last,
                        })
                        .unwrap()
                        .len()
                })
                .sum();
            assert_eq!(memory_then, then_memory, "round {round}: samples lost");
            assert!(statsd_samples >= then_statsd, "round {round}: samples lost");
        }
        kept.push((newest, memory, statsd_samples));
        drop(store);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().unwrap();
    assert!(sent > 10_000, "only {sent} packets sent");

    // And the agent itself starts on what is left, and says it is well.
    let running = Running::start(&data);
    running.wait_for("api listening");
    let out = agent()
        .args(["status", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let status: ward_shared::status::AgentStatus = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status.state, "running");
    running.signal("TERM");
    running.wait_for("store closed");
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_statsd_flood_keeps_memory_bounded_and_counts_every_packet_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let statsd = free_udp_address();
    // The default limit of 10,000 StatsD series in a release build (`cargo
    // test --release`, the README's figure); 6,000 in a debug build, whose
    // own RSS is four times a release build's (43 MB against 10 MB at rest).
    let limit: u64 = if cfg!(debug_assertions) {
        6_000
    } else {
        10_000
    };
    let running = Running::start_with(
        &data,
        &[
            ("WARD_JOBS_STATSD_LISTEN", statsd.to_string().as_ref()),
            ("WARD_JOBS_STATSD_MAX_SERIES", limit.to_string().as_ref()),
        ],
    );
    running.wait_for("statsd listening");
    let pid = running.child.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(Endpoint::Unix(data.with_extension("sock")));
    std::thread::sleep(Duration::from_secs(3));
    let before = status_kb(pid, "VmRSS:");
    let series_before = rt.block_on(client.status()).unwrap().store.series;
    let memory = rt.block_on(client.series("system.memory.usage")).unwrap()[0].id;
    let began = now_ms();
    let memory_points = |start: i64, end: i64| {
        rt.block_on(client.query(&QueryRequest {
            series: vec![memory],
            start,
            end,
            step: None,
            agg: Aggregation::Last,
        }))
        .unwrap()
        .remove(0)
        .points
    };
    let accepted = memory_points(began - 3000, began);

    // Senders as fast as they go (four, or WARD_FLOOD_SENDERS where the
    // machine has the cores for more), every packet a new label set (a
    // cardinality attack) or a new metric name; the target is 100,000
    // packets a second.
    let seconds = 10;
    let threads: u64 = std::env::var("WARD_FLOOD_SENDERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let out = UdpSocket::bind("127.0.0.1:0").unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
                let mut n = 0u64;
                while std::time::Instant::now() < deadline {
                    for _ in 0..256 {
                        let i = n * threads + t;
                        let packet = if i.is_multiple_of(8) {
                            format!("flood.name{i}:1|c")
                        } else {
                            format!("flood.latency:{}|ms|#user:u{i},route:r{}", i % 300, i % 20)
                        };
                        if out.send_to(packet.as_bytes(), statsd).is_ok() {
                            n += 1;
                        }
                    }
                }
                n
            })
        })
        .collect();
    let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
    let flood_ended = now_ms();
    std::thread::sleep(Duration::from_secs(2));
    let peak = status_kb(pid, "VmHWM:");
    let status = rt.block_on(client.status()).unwrap();
    let st = status
        .statsd
        .expect("the status reports the statsd listener");
    let made = status.store.series - series_before;
    println!(
        "{threads} senders sent {sent} packets in {seconds} s ({} a second): {} received, {} dropped by the kernel; {} lines dropped at the limits, {made} series made; RSS {} MB before, peak {} MB",
        sent / seconds,
        st.packets,
        st.dropped_receive_buffer,
        st.dropped_cardinality,
        before / 1024,
        peak / 1024
    );
    assert_eq!(status.state, "running");
    assert_eq!(
        st.packets + st.dropped_receive_buffer,
        sent,
        "every packet sent is received or counted as dropped: {st:?}"
    );
    assert!(st.dropped_cardinality > 0, "{st:?}");
    // The memory bound: however many label sets and names arrive, StatsD
    // makes at most jobs.statsd.max_series series, and the agent stays
    // under its memory budget (agent.budget_rss, 100 MiB).
    assert!((limit - 10..=limit).contains(&made), "{made} series made");
    let budget = status
        .budget
        .expect("the budget in the status")
        .max_rss_bytes
        / 1024;
    assert!(
        peak < budget,
        "RSS grew from {before} kB to a peak of {peak} kB, over the budget of {budget} kB"
    );
    // `ward-agent status` says so too.
    let text = status_text(&data);
    assert!(text.contains("dropped by the kernel"), "{text}");
    // The flood took nothing already accepted, and the collectors ran on
    // (every 100 ms when they get the CPU; the senders take most of it).
    assert!(accepted.len() >= 20, "{accepted:?}");
    assert_eq!(memory_points(began - 3000, began), accepted);
    let during = memory_points(began, flood_ended).len();
    assert!(
        during >= 50,
        "{during} memory samples in {seconds} s of flood"
    );
    running.signal("TERM");
    running.wait_for("store closed");
}
