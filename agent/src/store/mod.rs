//! The embedded time-series store: series index, heads, chunks, rollups,
//! retention. The only module that touches sled (through [`kv`]).
//!
//! It knows nothing of collectors, detectors or exporters: it takes series
//! descriptions and samples, and answers range queries.
//!
//! # Design constraints
//!
//! - Appends are cheap and never wait on the disk: a sample goes into its
//!   series' in-memory head (already compressed) and into a write buffer.
//! - At most one flush interval of accepted samples may be lost to a crash:
//!   [`Store::flush`] writes the buffer to the write-ahead log and syncs it.
//! - Time is cut into raw windows (30 minutes by default). When a sample of a
//!   later window arrives, or the window is over by the wall clock, every head
//!   is sealed into an immutable chunk, the rollups reached so far are written
//!   with it in one atomic batch, and the log starts afresh.
//! - The store always opens again: torn log records are dropped (they were
//!   never acknowledged), chunks that fail to decode are reported and skipped.
//! - Data written by an unknown format version is refused, not guessed at.
//!
//! # On disk
//!
//! ```text
//! <data_dir>/LOCK                 advisory lock, names the holder
//! <data_dir>/wal/<n>.wal          write-ahead log of the current window (see wal.rs)
//! <data_dir>/blocks/<tier>-<window>.blk
//!                                 sealed chunks of every series, back to back (see blocks.rs)
//! <data_dir>/quarantine/<tier>-<window>-<series>-<first_ts>-<offset>.chunk
//!                                 damaged chunks, copied aside when found (their index
//!                                 records removed)
//! <data_dir>/models.bin           the detectors' models, by series key (see models.rs)
//! <data_dir>/snapshots/<generation>.snap
//!                                 per series, what a restart needs besides the chunks: last
//!                                 timestamp, counter state, the rollup chunks being built and
//!                                 their open intervals (see snapshot.rs)
//! <data_dir>/db/                  sled; one tree, keys by first byte:
//!
//!   'M' "format"                  -> u32le  FORMAT_VERSION (refused if unknown)
//!   'M' "sealed_until"            -> i64le  every sample before it is in a chunk
//!   'M' "snapshot"                -> u64le  the snapshot generation that matches the index
//!   'S' series:u32be              -> JSON SeriesDesc (name, labels, kind, unit, precision)
//!   'C' tier:u8 window:u64be offset:u64be (of the first chunk of one append to the
//!                                 tier's block file for that window: a seal's, mostly)
//!                                 -> for each chunk of that append (see codec/),
//!                                    series:u32le first_ts:i64le (of its first row)
//!                                    offset:u64le len:u32le crc32:u32le (see index.rs)
//!        tier 0 raw samples,   window 30 min (more than one chunk if the agent restarted)
//!        tier 1 1-minute rows, window 6 h    (min, max, sum, count, last, span)
//!        tier 2 1-hour rows,   window 7 d
//!        timestamps as u64be are offset by 2^63 so that key order is time order
//!   'D' 'i' id:u64be              -> JSON Incident
//!   'D' 'j' job name              -> JSON job settings (expected interval, max duration)
//!   'D' 'r' job name 0x00 started:u64be run id
//!                                 -> JSON JobRun
//!   'D' 'm' series key            -> detect::Saved, binary: where agents before models.bin
//!                                    kept a detector's models; read once and removed after
//!                                    the first write of models.bin
//!   'D' 'c' exporter name         -> JSON export cursor (how far that exporter has shipped)
//!   'D' 'o' seq:u64be             -> JSON export::Outgoing (an incident change or a finished
//!                                    job run waiting for the log exporter; see outbox.rs)
//! ```
//!
//! Each tier has its own retention by age, and the data directory a total
//! budget: over it, the oldest window of the finest tier that has more than
//! one goes first (detail is given up before history).

mod blocks;
pub mod codec;
mod docs;
mod index;
mod kv;
mod lock;
mod maintain;
mod models;
mod outbox;
mod query;
mod read;
mod series;
mod snapshot;
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tracing::{debug, error, info, warn};
use ward_shared::{Sample, SeriesDesc, SeriesId, SeriesKey, TimestampMs};

pub use docs::{Collection, Doc};
pub use models::ModelFile;
pub use outbox::Outgoing;
pub use query::{Aggregation, Point, Query};
pub use series::{TIER_1H, TIER_1M, Tier};

/// The store, shared by the agent's tasks (see [`crate::sync`]).
pub type SharedStore = crate::sync::Shared<Store>;

use blocks::{BlockFiles, ReadFailure};
use codec::{decode_chunk, round_to};
use index::{Entry, KEY_LEN, RECORD_LEN, group_key, window_prefix};
use kv::{Kv, KvBatch};
use lock::DirLock;
use series::{FinishedChunk, ROLLUP_TIERS, SeriesState, floor_to};
use snapshot::{Snapshot, SnapshotFiles};
use wal::Wal;

/// The on-disk format written by this build. 2: the chunk index has one
/// entry per append, not per chunk (format 1 is converted at open).
pub const FORMAT_VERSION: u32 = 2;

const META_FORMAT: &[u8] = b"Mformat";
const META_SEALED: &[u8] = b"Msealed_until";
const META_SNAPSHOT: &[u8] = b"Msnapshot";
const LATE_GRACE_MS: i64 = 60_000;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage engine: {0}")]
    Engine(String),
    #[error(
        "data directory {dir} is in use by {holder}; stop that agent or give this one another --data-dir"
    )]
    Locked { dir: PathBuf, holder: String },
    #[error(
        "{what} was written in format version {found}, and this build reads version {supported}; use a matching ward-agent or move the data directory aside"
    )]
    UnknownFormat {
        what: String,
        found: u32,
        supported: u32,
    },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("series {0} is not in the index")]
    UnknownSeries(SeriesId),
    #[error("series {key} is already registered as a {existing:?} in {unit:?}")]
    SeriesConflict {
        key: SeriesKey,
        existing: ward_shared::MetricKind,
        unit: String,
    },
    #[error("a per-second rate needs a counter, and {0} is a gauge")]
    RateOfGauge(SeriesKey),
    #[error("bad store options: {0}")]
    BadOptions(String),
}

impl StoreError {
    /// Whether this is the filesystem out of space (or quota): something
    /// that passes when space returns, not a broken store.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
    }
}

/// How the store is sized, how long it keeps things, and how often the
/// agent makes what it accepted durable (`[store]` in the config).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// How often the agent flushes: a crash loses at most this much. The
    /// store itself flushes when told ([`Store::flush`]).
    pub flush_interval: Duration,
    /// Span of a raw window (one chunk per series). A multiple of a minute
    /// that divides an hour.
    pub raw_window: Duration,
    pub raw_retention: Duration,
    pub minute_retention: Duration,
    pub hour_retention: Duration,
    /// Total bytes of chunks, snapshots and log that the store may keep.
    pub disk_budget: u64,
    /// sled's page cache.
    pub cache_capacity: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(1),
            raw_window: Duration::from_secs(30 * 60),
            raw_retention: Duration::from_secs(7 * 86_400),
            minute_retention: Duration::from_secs(90 * 86_400),
            hour_retention: Duration::from_secs(730 * 86_400),
            disk_budget: 1 << 30,
            cache_capacity: 8 << 20,
        }
    }
}

/// What one append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendReport {
    pub accepted: u64,
    /// Samples at or before their series' last timestamp, or in a sealed window.
    pub out_of_order: u64,
    pub unknown_series: u64,
}

/// What a maintenance pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub sealed: bool,
    pub windows_expired: u64,
    pub windows_evicted_for_budget: u64,
    pub bytes_freed: u64,
}

/// Counters and sizes, for the agent's status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Since when writes have failed for want of space, while they do.
    pub disk_full_since: Option<i64>,
    pub series: u64,
    pub samples_accepted: u64,
    pub samples_out_of_order: u64,
    pub samples_unknown_series: u64,
    pub wal_records_dropped: u64,
    /// Damaged chunks found since open (each once: it is then quarantined).
    pub chunks_unreadable: u64,
    /// Chunks set aside in `quarantine/`, this run or earlier.
    pub chunks_quarantined: u64,
    pub seals: u64,
    /// Chunks, snapshots and log: what the disk budget counts.
    pub stored_bytes: u64,
    /// What sled occupies on disk, free pages included.
    pub engine_bytes: u64,
    /// Bytes held in memory by heads and rollups being built.
    pub head_bytes: u64,
    pub pending_samples: u64,
}

/// An I/O error on `path`, as a store error that names the path.
fn io_at(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where damaged chunks are copied to, under the data directory.
pub const QUARANTINE_DIR: &str = "quarantine";

fn quarantined_chunks(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "chunk"))
            .count() as u64
    })
}

/// Lowers a tier's oldest timestamp to `first_ts` if that is older.
fn note_oldest(oldest: &mut [Option<i64>; 3], tier: u8, first_ts: i64) {
    let slot = &mut oldest[usize::from(tier)];
    *slot = Some(slot.map_or(first_ts, |o| o.min(first_ts)));
}

/// Counts an index group in its window's size and its tier's oldest
/// timestamp.
fn count_group(
    sizes: &mut BTreeMap<(u8, i64), u64>,
    oldest: &mut [Option<i64>; 3],
    (tier, window): (u8, i64),
    entries: &[Entry],
) {
    let size = sizes.entry((tier, window)).or_default();
    *size += KEY_LEN as u64;
    for e in entries {
        *size += RECORD_LEN as u64 + u64::from(e.at.len);
        note_oldest(oldest, tier, e.first_ts);
    }
}

/// Converts a format 1 chunk index (an entry per chunk) to this format's
/// entry per window (see index.rs), a window at a time: each window's batch
/// removes its old entries and writes the new one, so that a conversion cut
/// short goes on from where it stopped at the next open. The format version
/// is written last.
fn convert_index_v1(kv: &Kv) -> Result<(), StoreError> {
    fn write(
        kv: &Kv,
        window: Option<(u8, i64)>,
        old: &mut Vec<(Vec<u8>, Entry)>,
    ) -> Result<(), StoreError> {
        let Some((tier, window)) = window else {
            return Ok(());
        };
        old.sort_by_key(|(_, e)| e.at.offset);
        let entries: Vec<Entry> = old.iter().map(|(_, e)| *e).collect();
        let mut batch = KvBatch::default();
        for (key, _) in old.drain(..) {
            batch.remove(&key);
        }
        if let Some(first) = entries.first() {
            batch.insert(
                &group_key(tier, window, first.at.offset),
                &index::encode_group(&entries),
            );
        }
        kv.apply(batch)
    }
    let (mut current, mut old, mut converted) = (None, Vec::new(), 0u64);
    for item in kv.scan_prefix(b"C") {
        let (key, value) = item?;
        if index::parse_key(&key).is_some() {
            continue; // converted already, by an open that was cut short
        }
        let (tier, window, entry) = index::legacy_entry(&key, &value).ok_or_else(|| {
            StoreError::Corrupt("a format 1 chunk index entry is malformed".into())
        })?;
        if current != Some((tier, window)) {
            write(kv, current, &mut old)?;
            current = Some((tier, window));
        }
        old.push((key, entry));
        converted += 1;
    }
    write(kv, current, &mut old)?;
    kv.insert(META_FORMAT, &FORMAT_VERSION.to_le_bytes())?;
    kv.flush()?;
    info!(
        chunks = converted,
        "converted the chunk index from format 1"
    );
    Ok(())
}

fn id_key(tag: u8, series: SeriesId) -> [u8; 5] {
    let b = series.0.to_be_bytes();
    [tag, b[0], b[1], b[2], b[3]]
}

/// The embedded time-series store of one data directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    opts: StoreSettings,
    kv: Kv,
    blocks: BlockFiles,
    snapshots: SnapshotFiles,
    snapshot_generation: u64,
    wal: Wal,
    index: HashMap<SeriesKey, SeriesId>,
    series: Vec<SeriesState>,
    window_ms: i64,
    /// Start of the raw window the heads belong to, once a sample arrived.
    window: Option<i64>,
    sealed_until: i64,
    /// Bytes of chunks and their index entries per (tier, window).
    sizes: BTreeMap<(u8, i64), u64>,
    /// Per tier, the first timestamp of the oldest chunk on disk.
    oldest_on_disk: [Option<i64>; 3],
    /// End of the newest raw window dropped (retention, disk budget) since
    /// open: raw samples before it may have existed and are gone.
    raw_dropped_through: Option<i64>,
    /// Set while the data directory's filesystem refuses writes (ENOSPC).
    disk_full_since: Option<i64>,
    snapshot_bytes: u64,
    /// New series since the engine was last flushed.
    index_dirty: bool,
    stats: StoreStats,
    chunks_unreadable: AtomicU64,
    /// Chunks in `quarantine/`, found there at open or moved there since.
    chunks_quarantined: AtomicU64,
    outbox: outbox::OutboxState,
    _lock: DirLock,
}

impl Store {
    /// Opens (or creates) the store in `dir`, replaying its log.
    pub fn open(dir: &Path, opts: StoreSettings) -> Result<Self, StoreError> {
        let window_ms = i64::try_from(opts.raw_window.as_millis()).unwrap_or(i64::MAX);
        if window_ms <= 0 || window_ms % 60_000 != 0 || 3_600_000 % window_ms != 0 {
            return Err(StoreError::BadOptions(format!(
                "raw window {:?} must be a whole number of minutes that divides an hour",
                opts.raw_window
            )));
        }
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let lock = DirLock::acquire(dir)?;
        let kv = Kv::open(&dir.join("db"), opts.cache_capacity)?;
        match kv.get(META_FORMAT)? {
            None => {
                if kv.scan_prefix(b"").next().is_some() {
                    return Err(StoreError::Corrupt(format!(
                        "{} holds data but no format version",
                        dir.display()
                    )));
                }
                kv.insert(META_FORMAT, &FORMAT_VERSION.to_le_bytes())?;
                kv.flush()?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| StoreError::Corrupt("format version is not 4 bytes".into()))?;
                if found == 1 {
                    convert_index_v1(&kv)?;
                } else if found != FORMAT_VERSION {
                    return Err(StoreError::UnknownFormat {
                        what: format!("data directory {}", dir.display()),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
        }
        let sealed_until = match kv.get(META_SEALED)? {
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| StoreError::Corrupt("sealed_until is not 8 bytes".into()))?,
            None => i64::MIN,
        };

        let (wal, replay) = Wal::open(&dir.join("wal"))?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            opts,
            wal,
            kv,
            blocks: BlockFiles::open(&dir.join("blocks"))?,
            snapshots: SnapshotFiles::open(&dir.join("snapshots"))?,
            snapshot_generation: 0,
            index: HashMap::new(),
            series: Vec::new(),
            window_ms,
            window: None,
            sealed_until,
            sizes: BTreeMap::new(),
            oldest_on_disk: [None; 3],
            raw_dropped_through: None,
            disk_full_since: None,
            snapshot_bytes: 0,
            index_dirty: false,
            stats: StoreStats::default(),
            chunks_unreadable: AtomicU64::new(0),
            chunks_quarantined: AtomicU64::new(quarantined_chunks(&dir.join(QUARANTINE_DIR))),
            outbox: outbox::OutboxState::default(),
            _lock: lock,
        };
        store.load_index()?;
        store.load_sizes()?;
        store.stats.wal_records_dropped = replay.bad_records;
        if replay.bad_records > 0 {
            warn!(
                records = replay.bad_records,
                "dropped torn or corrupt write-ahead log records"
            );
        }
        let replayed = replay.samples.len();
        for s in &replay.samples {
            store.append_one(s, false)?;
        }
        info!(
            dir = %store.dir.display(),
            series = store.series.len(),
            replayed,
            "store opened"
        );
        Ok(store)
    }

    fn load_index(&mut self) -> Result<(), StoreError> {
        for item in self.kv.scan_prefix(b"S") {
            let (k, v) = item?;
            let id = u32::from_be_bytes(
                k[1..]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("series key is not 5 bytes".into()))?,
            );
            if id as usize != self.series.len() {
                return Err(StoreError::Corrupt(format!(
                    "series ids are not dense: expected {}, found {id}",
                    self.series.len()
                )));
            }
            let desc: SeriesDesc = serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt(format!("series {id}: {e}")))?;
            self.index.insert(desc.key.clone(), SeriesId(id));
            self.series.push(SeriesState::new(desc));
        }
        if let Some(v) = self.kv.get(META_SNAPSHOT)? {
            let generation = <[u8; 8]>::try_from(v.as_slice())
                .map(u64::from_le_bytes)
                .map_err(|_| StoreError::Corrupt("snapshot generation is not 8 bytes".into()))?;
            let (states, bytes) = self.snapshots.read(generation)?;
            for (id, state) in states {
                let Some(series) = self.series.get_mut(id as usize) else {
                    return Err(StoreError::Corrupt(format!(
                        "snapshot of unknown series {id}"
                    )));
                };
                series
                    .restore(&state)
                    .map_err(|e| StoreError::Corrupt(format!("snapshot of series {id}: {e}")))?;
            }
            self.snapshot_generation = generation;
            self.snapshot_bytes = bytes;
        }
        // A generation written by a seal that never committed is of no use.
        self.snapshots.remove_others(self.snapshot_generation)?;
        self.stats.series = self.series.len() as u64;
        Ok(())
    }

    /// Sizes per window from the index; cuts block file bytes that no
    /// entry points to (a crash mid-seal).
    fn load_sizes(&mut self) -> Result<(), StoreError> {
        let mut ends: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for item in self.kv.scan_prefix(b"C") {
            let (k, v) = item?;
            let (Some((tier, window, _)), Some(entries)) =
                (index::parse_key(&k), index::decode_group(&v))
            else {
                return Err(StoreError::Corrupt(
                    "a chunk index entry has the wrong length".into(),
                ));
            };
            let entries: Vec<Entry> = entries.collect();
            count_group(
                &mut self.sizes,
                &mut self.oldest_on_disk,
                (tier, window),
                &entries,
            );
            let end = ends.entry((tier, window)).or_default();
            *end = entries.iter().map(|e| e.at.end()).fold(*end, u64::max);
        }
        for (&(tier, window), &end) in &ends {
            self.blocks.truncate_unindexed(tier, window, end)?;
        }
        self.blocks
            .remove_unknown(|tier, window| ends.contains_key(&(tier, window)))
    }

    /// The id of a series, registering it on first sight.
    pub fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError> {
        if let Some(&id) = self.index.get(&desc.key) {
            let existing = &self.series[id.0 as usize].desc;
            if existing.kind != desc.kind || existing.unit != desc.unit {
                return Err(StoreError::SeriesConflict {
                    key: desc.key,
                    existing: existing.kind,
                    unit: existing.unit.clone(),
                });
            }
            return Ok(id);
        }
        let id = SeriesId(self.series.len() as u32);
        let json = serde_json::to_vec(&desc)
            .map_err(|e| StoreError::Corrupt(format!("series description: {e}")))?;
        self.kv.insert(&id_key(b'S', id), &json)?;
        self.index_dirty = true;
        self.index.insert(desc.key.clone(), id);
        self.series.push(SeriesState::new(desc));
        self.stats.series += 1;
        Ok(id)
    }

    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.index.get(key).copied()
    }

    pub fn describe(&self, id: SeriesId) -> Option<&SeriesDesc> {
        self.series.get(id.0 as usize).map(|s| &s.desc)
    }

    /// Every series, in id order.
    pub fn series(&self) -> impl Iterator<Item = (SeriesId, &SeriesDesc)> {
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| (SeriesId(i as u32), &s.desc))
    }

    /// Accepts samples; each must be later than its series' last one.
    pub fn append(&mut self, samples: &[Sample]) -> Result<AppendReport, StoreError> {
        let mut report = AppendReport::default();
        for s in samples {
            match self.append_one(s, true)? {
                Accepted::Yes => report.accepted += 1,
                Accepted::OutOfOrder => report.out_of_order += 1,
                Accepted::UnknownSeries => report.unknown_series += 1,
            }
        }
        self.stats.samples_accepted += report.accepted;
        self.stats.samples_out_of_order += report.out_of_order;
        self.stats.samples_unknown_series += report.unknown_series;
        Ok(report)
    }

    fn append_one(&mut self, s: &Sample, log: bool) -> Result<Accepted, StoreError> {
        let idx = s.series.0 as usize;
        let Some(state) = self.series.get(idx) else {
            return Ok(Accepted::UnknownSeries);
        };
        if s.ts < self.sealed_until || state.last_ts.is_some_and(|last| s.ts <= last) {
            return Ok(Accepted::OutOfOrder);
        }
        let window = floor_to(s.ts, self.window_ms);
        match self.window {
            Some(current) if window > current => {
                self.seal(window)?;
                self.window = Some(window);
            }
            None => self.window = Some(window),
            Some(_) => {}
        }
        let state = &mut self.series[idx];
        let value = match state.desc.precision {
            Some(digits) => round_to(s.value, digits),
            None => s.value,
        };
        let mut done = Vec::new();
        state.push(s.ts, value, &mut done);
        if !done.is_empty() {
            self.write_rollups(s.series, done)?;
        }
        if log {
            self.wal.push(&Sample { value, ..*s });
        }
        Ok(Accepted::Yes)
    }

    /// Writes rollup chunks that a sample completed between seals: after a
    /// restart mid-interval, a series that stays silent past the end of its
    /// rollup window completes that window only when it speaks again. Not
    /// synced: after a crash, the snapshot and the log give the same chunks.
    fn write_rollups(
        &mut self,
        series: SeriesId,
        done: Vec<FinishedChunk>,
    ) -> Result<(), StoreError> {
        for c in done {
            let entries: Vec<Entry> = self
                .blocks
                .append(c.tier, c.window, &c.bytes, &[c.bytes.len()])?
                .into_iter()
                .map(|at| Entry {
                    series,
                    first_ts: c.first_ts,
                    at,
                })
                .collect();
            if let Some((key, value)) = self.index_group(c.tier, c.window, &entries) {
                self.kv.insert(&key, &value)?;
            }
        }
        Ok(())
    }

    /// The index entry of one append's chunks (see index.rs), counted in
    /// the window's size and the tier's oldest timestamp; `None` for none.
    fn index_group(
        &mut self,
        tier: u8,
        window: i64,
        entries: &[Entry],
    ) -> Option<([u8; KEY_LEN], Vec<u8>)> {
        let first = entries.first()?;
        count_group(
            &mut self.sizes,
            &mut self.oldest_on_disk,
            (tier, window),
            entries,
        );
        Some((
            group_key(tier, window, first.at.offset),
            index::encode_group(entries),
        ))
    }

    /// Makes every accepted sample durable.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let out = self.flush_now();
        match &out {
            Ok(()) => self.disk_full_since = None,
            Err(e) if e.is_disk_full() => {
                self.disk_full_since
                    .get_or_insert_with(ward_shared::time::now_ms);
            }
            Err(_) => {}
        }
        out
    }

    fn flush_now(&mut self) -> Result<(), StoreError> {
        if self.index_dirty {
            self.kv.flush()?;
            self.index_dirty = false;
        }
        self.wal.flush()
    }

    /// Since when writes have failed for want of space, while they do.
    pub fn disk_full_since(&self) -> Option<i64> {
        self.disk_full_since
    }

    fn stored_bytes(&self) -> u64 {
        self.sizes.values().sum::<u64>() + self.snapshot_bytes + self.wal.bytes_on_disk()
    }

    /// Bytes stored and samples accepted: what the agent reports every
    /// second, without the costlier figures of [`Store::stats`].
    pub fn figures(&self) -> (u64, u64) {
        (self.stored_bytes(), self.stats.samples_accepted)
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            stored_bytes: self.stored_bytes(),
            engine_bytes: self.kv.size_on_disk().unwrap_or(0),
            head_bytes: self.series.iter().map(|s| s.heap_bytes() as u64).sum(),
            pending_samples: self.wal.pending(),
            chunks_unreadable: self.chunks_unreadable.load(Ordering::Relaxed),
            chunks_quarantined: self.chunks_quarantined.load(Ordering::Relaxed),
            disk_full_since: self.disk_full_since,
            ..self.stats.clone()
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the detectors' models are kept (see models.rs).
    pub fn model_file(&self) -> ModelFile {
        ModelFile::new(&self.dir)
    }

    /// Seals everything and flushes: what a clean shutdown calls.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.compact()?;
        self.kv.flush()?;
        info!(dir = %self.dir.display(), "store closed");
        Ok(())
    }
}

enum Accepted {
    Yes,
    OutOfOrder,
    UnknownSeries,
}

#[cfg(test)]
mod tests;
