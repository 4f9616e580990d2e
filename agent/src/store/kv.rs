//! The key-value engine under the store: the only file that names sled.
//!
//! Everything above it sees ordered byte keys, atomic batches and an
//! explicit flush, so the engine could be swapped without touching the rest.

use std::path::{Path, PathBuf};

use super::StoreError;

/// An ordered, crash-safe key-value map (sled underneath).
#[derive(Debug)]
pub struct Kv {
    db: sled::Db,
}

/// A set of writes applied atomically.
#[derive(Debug, Default)]
pub struct KvBatch {
    inner: sled::Batch,
}

impl KvBatch {
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.inner.insert(key, value);
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.inner.remove(key);
    }
}

/// Frees what sled replaced, now rather than hours later.
///
/// sled frees the tree nodes a write replaces, and a filled 512 KiB log
/// buffer, through crossbeam-epoch: each goes into a bag kept by the thread
/// that wrote, and the bag is handed over to be freed only when 64 of them
/// have gathered there. The agent's threads write to sled rarely (the
/// detectors' models every ten minutes, the index at a seal), so their bags
/// kept old nodes and whole log buffers for hours: the soak's RSS stepped
/// up at model saves by 0.5 to 1.5 MB. Handing the bag over and collecting
/// (a few rounds, each of which may advance the epoch once) frees them as
/// soon as no other thread can still be reading them.
fn release_replaced() {
    for _ in 0..3 {
        crossbeam_epoch::pin().flush();
    }
}

/// Whether sled refused to open for its lock file being held; it says so in
/// words only (an `Other` error, its message naming the lock).
fn is_lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string().starts_with("could not acquire lock")
}

fn engine(e: sled::Error) -> StoreError {
    match e {
        // Kept as I/O, so that a full disk is told from a broken engine.
        sled::Error::Io(source) => StoreError::Io {
            path: PathBuf::from("db"),
            source,
        },
        e => StoreError::Engine(e.to_string()),
    }
}

impl Kv {
    /// Opens the engine. The caller holds the data directory's lock, so
    /// sled's own file lock can only be held by an engine this process has
    /// just dropped: sled's drop returns before its threads let go of the
    /// file (spacejam/sled#1289), and a store reopened at once, as after a
    /// restart in place, waits that moment out (up to two seconds).
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity)
            .mode(sled::Mode::LowSpace)
            // Durability is ours to decide: the store flushes after each seal.
            .flush_every_ms(None);
        let mut tries = 0;
        loop {
            match config.open() {
                Err(sled::Error::Io(e)) if tries < 200 && is_lock_held(&e) => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                out => {
                    return Ok(Self {
                        db: out.map_err(engine)?,
                    });
                }
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let done = self.db.insert(key, value).map(drop).map_err(engine);
        release_replaced();
        done
    }

    pub fn apply(&self, batch: KvBatch) -> Result<(), StoreError> {
        let done = self.db.apply_batch(batch.inner).map_err(engine);
        release_replaced();
        done
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let done = self.db.flush().map(drop).map_err(engine);
        release_replaced();
        done
    }

    /// Every pair whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
    }

    /// Pairs with keys from `start` on that still start with `prefix`, in key order.
    pub fn scan_from<'a>(
        &'a self,
        start: &[u8],
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a {
        self.db
            .range(start..)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
    }

    /// The last pair whose key starts with `prefix`.
    pub fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .scan_prefix(prefix)
            .next_back()
            .transpose()
            .map_err(engine)?
            .map(|(k, _)| k.to_vec()))
    }

    /// What the engine occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(engine)
    }
}
