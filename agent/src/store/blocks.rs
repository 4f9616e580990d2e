//! Block files: where sealed chunk bytes live.
//!
//! Owns `<data_dir>/blocks/`. One append-only file per tier and window holds
//! the chunks of every series sealed in that window, back to back; the index
//! in sled says where each chunk starts, how long it is, and its CRC-32.
//! Files are never rewritten: retention deletes a window's file whole.
//!
//! ```text
//! <tier>-<window start, ms>.blk := "WARDBLK" version:u8 chunk*
//! index entry (in sled)         := offset:u64le len:u32le crc32:u32le
//! ```
//!
//! Why not in sled itself: sled 0.34 takes 1.9 to 2.9 times the size of
//! incompressible values on disk, even freshly loaded (measured with the
//! store_size bench's data), which alone would break the 1 byte a sample
//! target. Chunks are written once and read rarely, which plain files do well.
//!
//! A seal appends, then syncs the files, and only then commits the index: a
//! crash in between leaves unindexed bytes at a file's end, which the next
//! open cuts off.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{StoreError, io_at};

const MAGIC: &[u8; 7] = b"WARDBLK";
/// The block file format written by this module.
pub const BLOCK_VERSION: u8 = 1;
const HEADER: u64 = 8;
/// Bytes of an index entry.
pub const ENTRY_LEN: usize = 16;

/// Where one chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl ChunkRef {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ENTRY_LEN {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&bytes[..8]);
        Some(Self {
            offset: u64::from_le_bytes(off),
            len: u32_at(8),
            crc: u32_at(12),
        })
    }

    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Why a chunk could not be read back.
#[derive(Debug)]
pub enum ReadFailure {
    /// The file or the bytes are gone (deleted by hand, truncated).
    Missing(String),
    /// The bytes are there but are not what was written; here they are.
    Checksum(Vec<u8>),
    /// The file could not be read (permissions, an I/O error): perhaps for
    /// now only.
    Io(String),
}

#[derive(Debug)]
pub struct BlockFiles {
    dir: PathBuf,
}

impl BlockFiles {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, tier: u8, window: i64) -> PathBuf {
        self.dir.join(format!("{tier}-{window}.blk"))
    }

    /// Appends chunks, `bytes` holding them back to back with the lengths
    /// `lens`, to the window's file and syncs it; returns where each went.
    pub fn append(
        &self,
        tier: u8,
        window: i64,
        bytes: &[u8],
        lens: &[usize],
    ) -> Result<Vec<ChunkRef>, StoreError> {
        if lens.iter().sum::<usize>() != bytes.len() {
            return Err(StoreError::Corrupt(format!(
                "{} bytes of chunks given as lengths adding up to {}",
                bytes.len(),
                lens.iter().sum::<usize>()
            )));
        }
        let path = self.path(tier, window);
        let io = io_at(&path);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(&io)?;
        let mut offset = file.metadata().map_err(&io)?.len();
        if offset == 0 {
            file.write_all(MAGIC).map_err(&io)?;
            file.write_all(&[BLOCK_VERSION]).map_err(&io)?;
            offset = HEADER;
        } else {
            check_header(&file, &path)?;
        }
        let mut refs = Vec::with_capacity(lens.len());
        let mut at = 0;
        for &len in lens {
            let chunk = &bytes[at..at + len];
            refs.push(ChunkRef {
                offset: offset + at as u64,
                len: u32::try_from(len)
                    .map_err(|_| StoreError::Corrupt("a chunk over 4 GiB".into()))?,
                crc: crc32fast::hash(chunk),
            });
            at += len;
        }
        file.write_all(bytes).map_err(&io)?;
        file.sync_data().map_err(&io)?;
        Ok(refs)
    }

    /// Reads a chunk back, checking its CRC.
    pub fn read(&self, tier: u8, window: i64, at: ChunkRef) -> Result<Vec<u8>, ReadFailure> {
        let path = self.path(tier, window);
        let failed = |e: std::io::Error| {
            let why = format!("{}: {e}", path.display());
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof => {
                    ReadFailure::Missing(why)
                }
                _ => ReadFailure::Io(why),
            }
        };
        let file = File::open(&path).map_err(failed)?;
        let mut buf = vec![0u8; at.len as usize];
        file.read_exact_at(&mut buf, at.offset).map_err(failed)?;
        if crc32fast::hash(&buf) != at.crc {
            return Err(ReadFailure::Checksum(buf));
        }
        Ok(buf)
    }

    /// Cuts bytes past `end` that no index entry points to (left by a crash
    /// mid-seal).
    pub fn truncate_unindexed(&self, tier: u8, window: i64, end: u64) -> Result<(), StoreError> {
        let path = self.path(tier, window);
        let io = io_at(&path);
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        if file.metadata().map_err(&io)?.len() > end {
            file.set_len(end).map_err(&io)?;
            file.sync_all().map_err(&io)?;
        }
        Ok(())
    }

    pub fn remove(&self, tier: u8, window: i64) -> Result<(), StoreError> {
        let path = self.path(tier, window);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Files of windows that the index does not know (a crash between a
    /// first append and its index commit); `known` says which are indexed.
    pub fn remove_unknown(&self, known: impl Fn(u8, i64) -> bool) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            let name = entry.file_name();
            let Some((tier, window)) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".blk"))
                .and_then(|n| n.split_once('-'))
                .and_then(|(t, w)| Some((t.parse::<u8>().ok()?, w.parse::<i64>().ok()?)))
            else {
                continue;
            };
            if !known(tier, window) {
                self.remove(tier, window)?;
            }
        }
        Ok(())
    }
}

fn check_header(file: &File, path: &Path) -> Result<(), StoreError> {
    let mut header = [0u8; HEADER as usize];
    file.read_exact_at(&mut header, 0).map_err(io_at(path))?;
    if &header[..7] != MAGIC {
        return Err(StoreError::Corrupt(format!(
            "{} is not a Ward block file",
            path.display()
        )));
    }
    if header[7] != BLOCK_VERSION {
        return Err(StoreError::UnknownFormat {
            what: format!("block file {}", path.display()),
            found: u32::from(header[7]),
            supported: u32::from(BLOCK_VERSION),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockFiles::open(dir.path()).unwrap();
        let refs = blocks
            .append(0, 1800, b"firstsecond chunk", &[5, 12])
            .unwrap();
        let more = blocks.append(0, 1800, b"third", &[5]).unwrap();
        assert_eq!(refs[0].offset, HEADER);
        assert_eq!(more[0].offset, refs[1].end());
        assert_eq!(blocks.read(0, 1800, refs[1]).unwrap(), b"second chunk");
        assert_eq!(ChunkRef::decode(&more[0].encode()), Some(more[0]));

        let path = blocks.path(0, 1800);
        let mut bytes = fs::read(&path).unwrap();
        bytes[refs[0].offset as usize] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            blocks.read(0, 1800, refs[0]),
            Err(ReadFailure::Checksum(b)) if b.len() == 5 && b != b"first"
        ));
        assert_eq!(blocks.read(0, 1800, more[0]).unwrap(), b"third");

        blocks.truncate_unindexed(0, 1800, refs[1].end()).unwrap();
        assert!(matches!(
            blocks.read(0, 1800, more[0]),
            Err(ReadFailure::Missing(_))
        ));
        blocks.remove_unknown(|_, _| false).unwrap();
        assert!(!path.exists());
    }
}
