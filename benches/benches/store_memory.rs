//! The store's memory as its data grows: what each seal leaves held.
//!
//! Writes a simulated host (see `ward_benches::HostSim`, 8 CPUs) into a
//! fresh store with the agent's default options, a second at a time with a
//! flush each second as the agent does, for `WARD_BENCH_HOURS` (default 24,
//! so 48 seals of a 30-minute window). After every seal it hands free heap
//! back (`malloc_trim`, as the agent does once a minute) and reads the heap
//! in use (glibc's `mallinfo2`) and the RSS. It prints them every two hours
//! and the growth per seal over the run after the first two hours: memory
//! the store keeps for good for each window sealed (its heads and rollups
//! are full by then). The allocator is set up as the agent sets it
//! (`allocator::tune_allocator`). sled's page cache is 8 MiB here, as in the
//! agent, so what sled keeps of its tree can grow to that much before it
//! evicts.
//!
//! Run: `cargo bench -p ward-benches --bench store_memory`

use ward_agent::store::{Store, StoreSettings};
use ward_benches::HostSim;
use ward_benches::procfs::status_kb;

/// Bytes the allocator has handed out from its arenas and not had back,
/// after giving free pages back to the system. (Blocks it maps on their own,
/// 64 KiB and up, are left out: sled maps buffers of 8 MiB that are mostly
/// never touched, and they do not grow with the data.)
#[allow(unsafe_code)]
fn heap_in_use() -> u64 {
    // SAFETY: both calls take no pointer; mallinfo2 returns a plain struct.
    let info = unsafe {
        libc::malloc_trim(0);
        libc::mallinfo2()
    };
    info.uordblks as u64
}

// The agent's allocator, as `ward-agent` sets it.
#[global_allocator]
static ALLOCATOR: ward_agent::allocator::Allocator = ward_agent::allocator::Allocator;

fn main() {
    let hours: i64 = std::env::var("WARD_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    assert!(hours >= 4, "WARD_BENCH_HOURS must be at least 4");
    // The allocator's settings as the agent makes them (unless the
    // environment does).
    println!("allocator: {:?}", ward_agent::allocator::tune_allocator());
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path(), StoreSettings::default()).expect("open store");
    let mut host = HostSim::register(&mut store, 8, 42).expect("register series");
    let start = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let pid = std::process::id();
    let mut batch = Vec::with_capacity(host.len());
    // (hour, heap in use, RSS) after each seal.
    let mut after_seal: Vec<(f64, u64, f64)> = Vec::new();
    println!("series: {}", host.len());
    println!("hour  seals  heap in use MB  rss MB");
    for s in 0..hours * 3600 {
        let now = start + s * 1000;
        batch.clear();
        host.tick(now, &mut batch);
        store.append(&batch).expect("append");
        store.flush().expect("flush");
        store.maintain(now).expect("maintain");
        let seals = store.stats().seals;
        if seals > after_seal.len() as u64 {
            let hour = s as f64 / 3600.0;
            let rss = status_kb(pid, "VmRSS:") / 1024.0;
            after_seal.push((hour, heap_in_use(), rss));
            if after_seal.len().is_multiple_of(4) {
                let (_, heap, rss) = after_seal[after_seal.len() - 1];
                println!(
                    "{hour:>4.1}  {:>5}  {:>14.2}  {rss:>6.1}",
                    after_seal.len(),
                    heap as f64 / 1e6
                );
            }
        }
    }
    let settled: Vec<_> = after_seal.iter().filter(|(h, _, _)| *h >= 2.0).collect();
    let (Some(first), Some(last)) = (settled.first(), settled.last()) else {
        panic!("no seal after the first two hours");
    };
    let seals = (settled.len() - 1).max(1) as f64;
    println!(
        "after {hours} h: {} seals; from hour {:.1} to {:.1} the heap in use grew {:.2} MB ({:.1} KB a seal), RSS {:.1} to {:.1} MB",
        after_seal.len(),
        first.0,
        last.0,
        (last.1 as f64 - first.1 as f64) / 1e6,
        (last.1 as f64 - first.1 as f64) / 1e3 / seals,
        first.2,
        last.2
    );
}
