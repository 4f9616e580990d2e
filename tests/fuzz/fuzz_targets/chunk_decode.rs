//! A chunk as read back from a block file (a torn write, a flipped bit that
//! the CRC missed, a hostile file): decoded or refused with an error, never
//! a panic, and every column of a decoded chunk has one value per timestamp.
//!
//! The first byte picks: even, the rest is decoded as it is; odd, the rest
//! is read as rows (timestamp step, two values) that are encoded, decoded
//! back exactly, then truncated and bit-flipped at a position the input
//! picks and decoded again, which reaches deep into the decoder with
//! near-valid chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::store::codec::{ChunkEncoder, decode_chunk};

fn check(bytes: &[u8]) {
    if let Ok(chunk) = decode_chunk(bytes) {
        for col in &chunk.cols {
            assert_eq!(col.len(), chunk.ts.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        check(rest);
        return;
    }
    let mut enc = ChunkEncoder::new(2, 120);
    let mut ts = 1_700_000_000_000_i64;
    let mut rows = Vec::new();
    for row in rest.chunks_exact(9) {
        ts += 1 + i64::from(row[0]) * 250;
        let a = f64::from(i16::from_le_bytes([row[1], row[2]])) / 8.0;
        let b = f64::from_le_bytes([
            row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        ]);
        let b = if b.is_finite() { b } else { 0.0 };
        enc.push(ts, &[a, b]);
        rows.push((ts, a, b));
    }
    // The store never writes an empty chunk (the decoder calls one corrupt).
    if enc.is_empty() {
        return;
    }
    let bytes = enc.to_bytes();
    let chunk = decode_chunk(&bytes).expect("a chunk just encoded decodes");
    assert_eq!(chunk.ts, rows.iter().map(|r| r.0).collect::<Vec<_>>());
    for (i, &(_, a, b)) in rows.iter().enumerate() {
        assert_eq!(chunk.cols[0][i].to_bits(), a.to_bits());
        assert_eq!(chunk.cols[1][i].to_bits(), b.to_bits());
    }
    let at = usize::from(pick >> 1) * bytes.len() / 128;
    check(&bytes[..at.min(bytes.len())]);
    let mut flipped = bytes.clone();
    if let Some(byte) = flipped.get_mut(at) {
        *byte ^= 1 << (pick % 8);
        check(&flipped);
    }
});
