//! What the store's engine holds on to: a thread that writes to the store
//! rarely, as the detectors' thread does (the incidents it raises), must
//! not keep what its writes replaced.
//!
//! Alone in its test binary: it measures the whole process's RSS.

use ward_agent::budget::measure;
use ward_agent::store::{Collection, Store, StoreSettings};

#[cfg(target_os = "linux")]
#[test]
fn what_a_rare_writer_replaced_is_freed_not_kept_by_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), StoreSettings::default()).unwrap();
    // A thread of its own, like the detectors': a 1 MB document rewritten
    // 40 times (40 MB replaced), then nothing more from that thread.
    let (before, after) = std::thread::scope(|s| {
        s.spawn(|| {
            store
                .put_doc(Collection::Incidents, b"warm", b"up")
                .unwrap();
            let (before, _) = measure().unwrap();
            for i in 0..40u8 {
                store
                    .put_doc(Collection::Incidents, b"cpu", &vec![i; 1 << 20])
                    .unwrap();
            }
            let (after, _) = measure().unwrap();
            (before, after)
        })
        .join()
        .unwrap()
    });
    // The newest copy stays (in sled's cache and log buffers); the other
    // 39 go. Kept by the thread, they were 40 MB more.
    assert!(
        after < before + 16_000_000,
        "RSS {before} bytes before the rewrites, {after} after"
    );
    assert_eq!(
        store.get_doc(Collection::Incidents, b"cpu").unwrap(),
        Some(vec![39; 1 << 20])
    );
}
