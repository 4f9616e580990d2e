//! The detectors' models file: `<data_dir>/models.bin`.
//!
//! Every scored series' models (the bytes of `detect::Saved`), by series
//! key, written whole every few minutes and read once at start. They were
//! sled documents before ('D' 'm'): sled holds in memory every value it has
//! been given, up to its cache bound, so the models of every series sat in
//! the agent's memory twice, the detectors' copy and sled's, and grew with
//! them for the two hours the detectors take to fill (about 0.7 MB for 140
//! series). A plain file costs nothing between writes.
//!
//! ```text
//! models.bin := "WARDMDL" version:u8 record* crc32:u32le (of everything before it)
//! record     := key_len:u32le key value_len:u32le value
//! ```
//!
//! Written to `models.bin.tmp`, synced and renamed over the old one, so a
//! crash leaves the previous file or the new one, never half of one.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{Doc, StoreError, io_at};

const MAGIC: &[u8; 7] = b"WARDMDL";
const VERSION: u8 = 1;
/// The largest key or value read back (a model set is a few KB).
const MAX_PART: usize = 1 << 24;

/// Where the models are kept.
#[derive(Debug, Clone)]
pub struct ModelFile {
    path: PathBuf,
}

/// A writer that hashes what it writes.
struct Hashing<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

impl ModelFile {
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("models.bin"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `entries` (series key, models); returns the
    /// bytes written.
    pub fn write<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64, StoreError> {
        let tmp = self.path.with_extension("bin.tmp");
        let io = io_at(&tmp);
        let file = File::create(&tmp).map_err(&io)?;
        let mut out = Hashing {
            inner: BufWriter::with_capacity(16 << 10, file),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        out.put(MAGIC).map_err(&io)?;
        out.put(&[VERSION]).map_err(&io)?;
        for (key, value) in entries {
            for part in [key.as_ref(), value.as_ref()] {
                let len = u32::try_from(part.len())
                    .map_err(|_| StoreError::Corrupt("a model record over 4 GiB".into()))?;
                out.put(&len.to_le_bytes()).map_err(&io)?;
                out.put(part).map_err(&io)?;
            }
        }
        let crc = out.crc.clone().finalize();
        out.inner.write_all(&crc.to_le_bytes()).map_err(&io)?;
        let file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(&io)?;
        fs::rename(&tmp, &self.path).map_err(io_at(&self.path))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_at(dir))?;
        }
        Ok(out.bytes + 4)
    }

    /// The entries written last; `None` when there is no file yet.
    pub fn read(&self) -> Result<Option<Vec<Doc>>, StoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => parse(&bytes)
                .map(Some)
                .map_err(|why| StoreError::Corrupt(format!("{}: {why}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&self.path)(e)),
        }
    }
}

/// The records of a models file, or what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<Vec<Doc>, &'static str> {
    if bytes.len() < MAGIC.len() + 5 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a Ward models file");
    }
    if bytes[MAGIC.len()] != VERSION {
        return Err("a models file of an unknown version");
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("checksum mismatch");
    }
    let mut rest = &body[MAGIC.len() + 1..];
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, &'static str> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or("truncated")?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_PART {
            return Err("a record longer than any model set");
        }
        let part = tail.get(..len).ok_or("truncated")?;
        *rest = &tail[len..];
        Ok(part.to_vec())
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let key = take(&mut rest)?;
        let value = take(&mut rest)?;
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_come_back_and_a_damaged_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = ModelFile::new(dir.path());
        assert!(file.read().unwrap().is_none(), "no file yet");
        let entries: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"cpu.seconds{core=\"0\"}".to_vec(), vec![7; 4000]),
            (b"empty".to_vec(), Vec::new()),
        ];
        let written = file
            .write(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .unwrap();
        assert_eq!(written, fs::metadata(file.path()).unwrap().len());
        assert_eq!(file.read().unwrap(), Some(entries.clone()));
        file.write(std::iter::empty::<(&[u8], &[u8])>()).unwrap();
        assert_eq!(file.read().unwrap(), Some(Vec::new()), "replaced whole");
        file.write(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .unwrap();

        let mut bytes = fs::read(file.path()).unwrap();
        bytes[40] ^= 1;
        fs::write(file.path(), &bytes).unwrap();
        let err = file.read().unwrap_err().to_string();
        assert!(err.contains("models.bin: checksum mismatch"), "{err}");
        assert_eq!(parse(&bytes[..20]), Err("checksum mismatch"));
        assert_eq!(parse(b"WARDSNP\x01\0\0\0\0"), Err("not a Ward models file"));
        // A record cut short, with a checksum that matches what is there.
        let mut short = bytes[..MAGIC.len() + 1 + 6].to_vec();
        short.extend_from_slice(&crc32fast::hash(&short).to_le_bytes());
        assert_eq!(parse(&short), Err("truncated"));
    }
}
