//! The write-ahead log that makes the in-memory heads durable.
//!
//! Owns the files under `<data_dir>/wal/`. Every flush appends one record
//! holding the samples accepted since the previous flush and syncs it; after
//! a crash, the records are replayed into the heads. When the store seals the
//! heads into chunks it starts a new segment and deletes the older ones, so
//! the log only ever holds the current window.
//!
//! ```text
//! segment := "WARDWAL" version:u8 record*
//! record  := len:u32le crc32(payload):u32le payload
//! payload := count:varint (series:varint ts_delta:zigzag-varint value:f64le)*count
//! ```
//!
//! A torn record at the end of the newest segment (a crash mid-write) is
//! dropped and counted; it only ever holds samples that were never
//! acknowledged as flushed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ward_shared::{Sample, SeriesId};

use super::codec::{get_varint, put_varint, unzigzag, zigzag};
use super::{StoreError, io_at};

const MAGIC: &[u8; 7] = b"WARDWAL";
/// The magic and the version byte that start every segment.
const HEADER_LEN: u64 = MAGIC.len() as u64 + 1;
/// The log format written by this module.
pub const WAL_VERSION: u8 = 1;
const MAX_RECORD: usize = 256 << 20;

/// What replaying the log found.
#[derive(Debug, Default)]
pub struct Replay {
    pub samples: Vec<Sample>,
    /// Records dropped because they were torn or failed their checksum.
    pub bad_records: u64,
}

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    segment: u64,
    buf: Vec<u8>,
    pending: u64,
    last_ts: i64,
    bytes_on_disk: u64,
    /// Bytes of the current segment: where a failed write is cut back to.
    segment_len: u64,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".wal"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn decode_payload(payload: &[u8], out: &mut Vec<Sample>) -> Option<()> {
    let mut pos = 0;
    let count = get_varint(payload, &mut pos).ok()?;
    let mut ts = 0i64;
    for _ in 0..count {
        let series = u32::try_from(get_varint(payload, &mut pos).ok()?).ok()?;
        ts = ts.wrapping_add(unzigzag(get_varint(payload, &mut pos).ok()?));
        let raw: [u8; 8] = payload.get(pos..pos + 8)?.try_into().ok()?;
        pos += 8;
        out.push(Sample {
            series: SeriesId(series),
            ts,
            value: f64::from_le_bytes(raw),
        });
    }
    (pos == payload.len()).then_some(())
}

/// Reads one segment's records into `replay`; a bad record ends the segment.
fn read_segment(path: &Path, replay: &mut Replay) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_at(path))?;
    if bytes.len() < 8 {
        // Created but its header never reached the disk: nothing in it.
        return Ok(());
    }
    if &bytes[..7] != MAGIC {
        return Err(StoreError::Corrupt(format!(
            "{} is not a Ward write-ahead log segment",
            path.display()
        )));
    }
    if bytes[7] != WAL_VERSION {
        return Err(StoreError::UnknownFormat {
            what: format!("write-ahead log {}", path.display()),
            found: u32::from(bytes[7]),
            supported: u32::from(WAL_VERSION),
        });
    }
    let mut pos = 8;
    while pos < bytes.len() {
        let Some(header) = bytes.get(pos..pos + 8) else {
            replay.bad_records += 1;
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = bytes
            .get(pos + 8..pos + 8 + len)
            .filter(|_| len <= MAX_RECORD)
        else {
            replay.bad_records += 1;
            break;
        };
        let before = replay.samples.len();
        if crc32fast::hash(payload) != crc || decode_payload(payload, &mut replay.samples).is_none()
        {
            replay.samples.truncate(before);
            replay.bad_records += 1;
            break;
        }
        pos += 8 + len;
    }
    Ok(())
}

impl Wal {
    /// Opens the log in `dir`, returning what older segments hold; new records
    /// go to a fresh segment.
    pub fn open(dir: &Path) -> Result<(Self, Replay), StoreError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let segments = list_segments(dir)?;
        let mut replay = Replay::default();
        let mut bytes_on_disk = 0;
        for &n in &segments {
            let path = segment_path(dir, n);
            read_segment(&path, &mut replay)?;
            bytes_on_disk += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        let segment = segments.last().map_or(1, |n| n + 1);
        let file = Self::create_segment(dir, segment)?;
        let wal = Self {
            dir: dir.to_path_buf(),
            file,
            segment_len: HEADER_LEN,
            segment,
            buf: Vec::new(),
            pending: 0,
            last_ts: 0,
            bytes_on_disk: bytes_on_disk + HEADER_LEN,
        };
        Ok((wal, replay))
    }

    fn create_segment(dir: &Path, n: u64) -> Result<File, StoreError> {
        let path = segment_path(dir, n);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        file.write_all(MAGIC).map_err(io_at(&path))?;
        file.write_all(&[WAL_VERSION]).map_err(io_at(&path))?;
        Ok(file)
    }

    /// Buffers a sample for the next flush.
    pub fn push(&mut self, s: &Sample) {
        put_varint(&mut self.buf, u64::from(s.series.0));
        put_varint(&mut self.buf, zigzag(s.ts.wrapping_sub(self.last_ts)));
        self.buf.extend_from_slice(&s.value.to_le_bytes());
        self.last_ts = s.ts;
        self.pending += 1;
    }

    /// Samples buffered and not yet durable.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Writes and syncs what was buffered.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(self.buf.len() + 10);
        put_varint(&mut payload, self.pending);
        payload.extend_from_slice(&self.buf);
        let mut record = Vec::with_capacity(payload.len() + 8);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let path = segment_path(&self.dir, self.segment);
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A torn record (a full disk) would end the replay there: cut it
            // off; the samples stay buffered for the next try.
            let _ = self.file.set_len(self.segment_len);
            let _ = self.file.seek(SeekFrom::Start(self.segment_len));
            return Err(io_at(&path)(e));
        }
        self.segment_len += record.len() as u64;
        self.bytes_on_disk += record.len() as u64;
        self.buf.clear();
        self.pending = 0;
        self.last_ts = 0;
        Ok(())
    }

    /// Starts a new segment and deletes every older one, with whatever was
    /// still buffered: the caller has made all of it durable elsewhere.
    pub fn rotate(&mut self) -> Result<(), StoreError> {
        self.buf.clear();
        self.pending = 0;
        self.last_ts = 0;
        let next = self.segment + 1;
        self.file = Self::create_segment(&self.dir, next)?;
        self.segment_len = HEADER_LEN;
        self.file.sync_all().map_err(io_at(&self.dir))?;
        for n in list_segments(&self.dir)? {
            if n < next {
                let path = segment_path(&self.dir, n);
                fs::remove_file(&path).map_err(io_at(&path))?;
            }
        }
        self.segment = next;
        self.bytes_on_disk = 8;
        Ok(())
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.bytes_on_disk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: u32, ts: i64, value: f64) -> Sample {
        Sample {
            series: SeriesId(series),
            ts,
            value,
        }
    }

    #[test]
    fn flushed_records_replay_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, replay) = Wal::open(dir.path()).unwrap();
            assert!(replay.samples.is_empty());
            wal.push(&sample(0, 1000, 1.5));
            wal.push(&sample(1, 1000, -2.0));
            wal.flush().unwrap();
            wal.push(&sample(0, 2000, 3.0));
            wal.flush().unwrap();
            wal.push(&sample(0, 3000, 9.0)); // never flushed
        }
        // Tear the last record in half, as a crash mid-write would.
        let seg = segment_path(dir.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();

        let (_wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(
            replay.samples,
            vec![sample(0, 1000, 1.5), sample(1, 1000, -2.0)]
        );
        assert_eq!(replay.bad_records, 1);
    }

    #[test]
    fn rotation_deletes_older_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.push(&sample(0, 1, 1.0));
        wal.flush().unwrap();
        wal.rotate().unwrap();
        wal.push(&sample(0, 2, 2.0));
        wal.flush().unwrap();
        drop(wal);
        let (_wal, replay) = Wal::open(dir.path()).unwrap();
        assert_eq!(replay.samples, vec![sample(0, 2, 2.0)]);
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(segment_path(dir.path(), 7), b"WARDWAL\x09").unwrap();
        let err = Wal::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }
}
