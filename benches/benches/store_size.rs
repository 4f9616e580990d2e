//! Bytes per sample on disk for a day of 1-second host metrics.
//!
//! Writes 24 h of a simulated host (see `ward_benches::HostSim`) into a fresh
//! store, seals everything, and prints what the store holds per sample: the
//! chunk, rollup and snapshot bytes the disk budget counts, and the size of
//! the whole data directory as `du` would see it (sled's files included).
//!
//! Run: `cargo bench -p ward-benches --bench store_size`

use std::path::Path;
use std::time::Instant;

use ward_agent::store::{Store, StoreSettings};
use ward_benches::HostSim;

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let hours: i64 = std::env::var("WARD_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), StoreSettings::default()).expect("open store");
    let mut host = HostSim::register(&mut store, 8, 42).expect("register series");
    let start = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let mut batch = Vec::with_capacity(host.len());
    let began = Instant::now();
    let mut samples = 0u64;
    for s in 0..hours * 3600 {
        batch.clear();
        host.tick(start + s * 1000, &mut batch);
        store.append(&batch).expect("append");
        samples += batch.len() as u64;
        // The agent flushes every second.
        store.flush().expect("flush");
    }
    store.compact().expect("compact");
    let stats = store.stats();
    let elapsed = began.elapsed();
    drop(store);
    let on_disk = dir_bytes(dir.path());
    if std::env::var_os("WARD_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("kept data directory:   {}", kept.display());
    }
    println!("series:                {}", host.len());
    println!("samples:               {samples} ({hours} h at 1 s)");
    println!(
        "ingest with 1 s flush: {:.1} s ({:.0} samples/s)",
        elapsed.as_secs_f64(),
        samples as f64 / elapsed.as_secs_f64()
    );
    println!(
        "stored (chunks, rollups, snapshots): {} bytes = {:.3} bytes/sample",
        stats.stored_bytes,
        stats.stored_bytes as f64 / samples as f64
    );
    println!(
        "data directory on disk (sled files): {} bytes = {:.3} bytes/sample",
        on_disk,
        on_disk as f64 / samples as f64
    );
}
