//! The chunk index: where in the block files each sealed chunk is.
//!
//! One sled entry per append to a block file (a seal writes one per tier
//! and window it touches), holding a record for every chunk of that append:
//!
//! ```text
//! key    := 'C' tier:u8 window:u64be offset:u64be (of the append's first chunk)
//! value  := record*
//! record := series:u32le first_ts:i64le offset:u64le len:u32le crc32:u32le
//! ```
//!
//! Format 1 had one entry per chunk (`'C' tier window series first_ts` ->
//! offset len crc). sled holds roughly 430 bytes of memory for each small
//! entry it has seen, so at about 320 chunks a seal the index alone grew
//! the agent by some 140 KB every half hour, until sled's cache bound was
//! reached days later; a record here is 28 bytes of one value. Format 1
//! directories are converted when they are opened (see [`legacy_entry`]).

use ward_shared::SeriesId;

use super::blocks::{ChunkRef, ENTRY_LEN};

/// Bytes of one record.
pub const RECORD_LEN: usize = 12 + ENTRY_LEN;
/// Bytes of a group's key.
pub const KEY_LEN: usize = 18;

pub fn be_ts(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn from_be_ts(b: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(raw) ^ (1 << 63)) as i64
}

/// The prefix of every group of a tier's window.
pub fn window_prefix(tier: u8, window: i64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'C';
    k[1] = tier;
    k[2..].copy_from_slice(&be_ts(window));
    k
}

/// The key of the group whose first chunk starts at `offset`.
pub fn group_key(tier: u8, window: i64, offset: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..10].copy_from_slice(&window_prefix(tier, window));
    k[10..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// A group key's tier, window and offset, if it is one.
pub fn parse_key(key: &[u8]) -> Option<(u8, i64, u64)> {
    if key.len() != KEY_LEN || key[0] != b'C' {
        return None;
    }
    let offset = u64::from_be_bytes(key[10..].try_into().ok()?);
    Some((key[1], from_be_ts(&key[2..10]), offset))
}

/// Where one chunk of one series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub series: SeriesId,
    /// Timestamp of the chunk's first row.
    pub first_ts: i64,
    pub at: ChunkRef,
}

impl Entry {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.series.0.to_le_bytes());
        out.extend_from_slice(&self.first_ts.to_le_bytes());
        out.extend_from_slice(&self.at.encode());
    }

    fn decode(record: &[u8]) -> Option<Self> {
        let series = u32::from_le_bytes(record.get(..4)?.try_into().ok()?);
        let first_ts = i64::from_le_bytes(record.get(4..12)?.try_into().ok()?);
        Some(Self {
            series: SeriesId(series),
            first_ts,
            at: ChunkRef::decode(record.get(12..RECORD_LEN)?)?,
        })
    }
}

/// A group's value.
pub fn encode_group(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * RECORD_LEN);
    for e in entries {
        e.encode_into(&mut out);
    }
    out
}

/// The records of a group's value; `None` if it is not a whole number of
/// records.
pub fn decode_group(value: &[u8]) -> Option<impl Iterator<Item = Entry> + '_> {
    value
        .len()
        .is_multiple_of(RECORD_LEN)
        .then(|| value.chunks_exact(RECORD_LEN).filter_map(Entry::decode))
}

/// A format 1 index entry, read as a record of this format with its tier
/// and window; `None` if `key` is not one.
pub fn legacy_entry(key: &[u8], value: &[u8]) -> Option<(u8, i64, Entry)> {
    if key.len() != 22 || key[0] != b'C' {
        return None;
    }
    let series = u32::from_be_bytes(key[10..14].try_into().ok()?);
    Some((
        key[1],
        from_be_ts(&key[2..10]),
        Entry {
            series: SeriesId(series),
            first_ts: from_be_ts(&key[14..22]),
            at: ChunkRef::decode(value)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_and_keys_sort_by_time_then_offset() {
        let entries = [
            Entry {
                series: SeriesId(3),
                first_ts: -5,
                at: ChunkRef {
                    offset: 8,
                    len: 100,
                    crc: 7,
                },
            },
            Entry {
                series: SeriesId(u32::MAX),
                first_ts: 1_700_000_000_000,
                at: ChunkRef {
                    offset: 108,
                    len: 1,
                    crc: u32::MAX,
                },
            },
        ];
        let value = encode_group(&entries);
        assert_eq!(value.len(), 2 * RECORD_LEN);
        let back: Vec<_> = decode_group(&value).unwrap().collect();
        assert_eq!(back, entries);
        assert!(decode_group(&value[..RECORD_LEN + 1]).is_none());

        let early = group_key(1, -3_600_000, 900);
        assert!(early < group_key(1, 0, 8));
        assert!(group_key(1, 0, 8) < group_key(1, 0, 108));
        assert!(group_key(1, 0, 8).starts_with(&window_prefix(1, 0)));
        assert_eq!(parse_key(&early), Some((1, -3_600_000, 900)));
        assert_eq!(parse_key(&early[..10]), None);
    }
}
