//! Snapshot files: the in-memory state of every series as of a seal.
//!
//! Owns `<data_dir>/snapshots/`. Each seal writes a new generation holding,
//! for every series, what a restart needs beyond the sealed chunks (the
//! rollup chunks being built, open intervals, counter state). The store's
//! index in sled names the current generation in the same atomic batch that
//! commits the seal, so a crash on either side of that commit finds a
//! snapshot that matches the index; older generations are deleted after.
//!
//! ```text
//! <generation:016>.snap := "WARDSNP" version:u8 count:varint
//!                          (series:varint len:varint state)* crc32(all before):u32le
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::codec::{get_varint, put_prefixed, put_varint};
use super::{StoreError, io_at};

const MAGIC: &[u8; 7] = b"WARDSNP";
/// The snapshot format written by this module.
pub const SNAPSHOT_FILE_VERSION: u8 = 1;

/// Each series' state, by series id.
pub type SeriesStates = Vec<(u32, Vec<u8>)>;

/// A snapshot file's bytes, built one series at a time in one buffer.
#[derive(Debug)]
pub struct Snapshot {
    out: Vec<u8>,
}

impl Snapshot {
    /// A snapshot of `count` series, in a buffer of `size_hint` bytes (the
    /// last one's size: one allocation, and the seal's largest).
    pub fn new(count: usize, size_hint: usize) -> Self {
        let mut out = Vec::with_capacity(size_hint.max(16));
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_FILE_VERSION);
        put_varint(&mut out, count as u64);
        Self { out }
    }

    /// Adds a series' state, as `state` writes it.
    pub fn add(&mut self, series: u32, state: impl FnOnce(&mut Vec<u8>)) {
        put_varint(&mut self.out, u64::from(series));
        put_prefixed(&mut self.out, state);
    }
}

#[derive(Debug)]
pub struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{generation:016}.snap"))
    }

    /// Writes and syncs generation `generation`; returns its size.
    pub fn write(&self, generation: u64, snapshot: Snapshot) -> Result<u64, StoreError> {
        let mut out = snapshot.out;
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let path = self.path(generation);
        let io = io_at(&path);
        let mut file = File::create(&path).map_err(&io)?;
        file.write_all(&out).map_err(&io)?;
        file.sync_all().map_err(&io)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at(&self.dir))?;
        Ok(out.len() as u64)
    }

    /// Reads generation `generation`: each series' state, and the file's size.
    pub fn read(&self, generation: u64) -> Result<(SeriesStates, u64), StoreError> {
        let path = self.path(generation);
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        let corrupt = |why: &str| StoreError::Corrupt(format!("{}: {why}", path.display()));
        if bytes.len() < 12 || &bytes[..7] != MAGIC {
            return Err(corrupt("not a Ward snapshot file"));
        }
        if bytes[7] != SNAPSHOT_FILE_VERSION {
            return Err(StoreError::UnknownFormat {
                what: format!("snapshot {}", path.display()),
                found: u32::from(bytes[7]),
                supported: u32::from(SNAPSHOT_FILE_VERSION),
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut pos = 8;
        let count = get_varint(body, &mut pos).map_err(|e| corrupt(&e.to_string()))?;
        let mut states = Vec::new();
        for _ in 0..count {
            let series = get_varint(body, &mut pos).map_err(|e| corrupt(&e.to_string()))?;
            let len = get_varint(body, &mut pos).map_err(|e| corrupt(&e.to_string()))? as usize;
            let state = body
                .get(pos..pos.saturating_add(len))
                .ok_or_else(|| corrupt("truncated"))?;
            let series = u32::try_from(series).map_err(|_| corrupt("series id out of range"))?;
            states.push((series, state.to_vec()));
            pos += len;
        }
        Ok((states, bytes.len() as u64))
    }

    /// Deletes every generation but `keep`.
    pub fn remove_others(&self, keep: u64) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            let generation = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".snap"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(g) = generation.filter(|&g| g != keep) {
                let path = self.path(g);
                fs::remove_file(&path).map_err(io_at(&path))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_round_trip_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = SnapshotFiles::open(dir.path()).unwrap();
        let states = vec![(0, vec![1, 2, 3]), (7, vec![])];
        let snapshot = |states: &[(u32, Vec<u8>)]| {
            let mut s = Snapshot::new(states.len(), 0);
            for (series, state) in states {
                s.add(*series, |out| out.extend_from_slice(state));
            }
            s
        };
        snaps.write(1, snapshot(&states)).unwrap();
        snaps.write(2, snapshot(&[(0, vec![9])])).unwrap();
        assert_eq!(snaps.read(1).unwrap().0, states);
        snaps.remove_others(2).unwrap();
        assert!(snaps.read(1).is_err());

        let path = snaps.path(2);
        let mut bytes = fs::read(&path).unwrap();
        bytes[9] ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = snaps.read(2).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}
