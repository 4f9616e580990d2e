use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ward_agent::store::{Aggregation, Query, Store, StoreSettings};
use ward_shared::{Labels, SeriesKey};

const BASE: i64 = 1_700_000_000_000;

/// Runs the writer until it has acknowledged `until` ticks, then kills it
/// with SIGKILL; returns the last tick it acknowledged.
fn run_and_kill(dir: &std::path::Path, until: i64) -> i64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-writer"))
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut durable = -1;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("durable ") {
            durable = n.parse().unwrap();
            if durable >= until {
                break;
            }
        }
    }
    // Let it run on a little, so that the kill lands mid-append, mid-flush
    // or mid-seal rather than always just after an acknowledgement.
    std::thread::sleep(std::time::Duration::from_millis((until % 13) as u64 * 4));
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();
    durable
}

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = -1;
    // Several kills at different points, across window seals (1,800 ticks each).
    for until in [500, 2_300, 4_100, 6_000] {
        acknowledged = acknowledged.max(run_and_kill(dir.path(), until));

        let store = Store::open(dir.path(), StoreSettings::default()).unwrap();
        assert_eq!(store.series().count(), 50);
        for s in [0usize, 17, 49] {
            let key = SeriesKey::new("crash.series", Labels::new([("n", s.to_string())]).unwrap())
                .unwrap();
            let id = store.lookup(&key).unwrap();
            let points = store
                .query(&Query {
                    series: id,
                    start: BASE,
                    end: i64::MAX,
                    step: None,
                    agg: Aggregation::Last,
                })
                .unwrap();
            // Every tick up to the last acknowledged one, in order, with its value;
            // possibly more (written but not yet acknowledged), never a gap.
            assert!(
                points.len() as i64 > acknowledged,
                "series {s}: {} ticks after acknowledging {acknowledged}",
                points.len()
            );
            for (tick, p) in points.iter().enumerate() {
                let tick = tick as i64;
                assert_eq!(p.ts, BASE + tick * 1000, "series {s} tick {tick}");
                assert_eq!(p.value, ((s as i64 * 31 + tick * 7) % 1000) as f64 / 4.0);
            }
        }
        let stats = store.stats();
        assert_eq!(stats.chunks_unreadable, 0);
    }
}
