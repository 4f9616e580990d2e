//! The chunk codec's tests: round trips of every column mode, sizes, and
//! damaged input refused, never misread.

use super::*;

fn round_trip(values: &[f64], block_len: usize) -> Vec<f64> {
    let mut enc = ColumnEncoder::new(block_len);
    for &v in values {
        enc.push(v);
    }
    let mut out = Vec::new();
    decode_column(&enc.to_bytes(), values.len(), block_len, &mut out).unwrap();
    out
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn every_block_mode_round_trips_bit_for_bit() {
    let cases: Vec<Vec<f64>> = vec![
        vec![0.0; 300],
        vec![42.0; 300],
        (0..300).map(|i| i as f64 * 1000.0).collect(),
        (0..300).map(|i| (i % 7) as f64 * 0.25).collect(),
        (0..300)
            .map(|i| ((i * 7919) % 1013) as f64 / 100.0)
            .collect(),
        (0..300).map(|i| (i as f64).sin()).collect(),
        vec![
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            -1e300,
        ],
        vec![1e17, 1e17 + 16.0, -3.5, 9_007_199_254_740_993.0],
        (0..300)
            .map(|i| ((i * 7919) % 1013) as f64 * 4096.0 - 2e6)
            .collect(),
        (0..300).map(|i| (i * i * 512) as f64).collect(),
    ];
    for values in &cases {
        for block_len in [1, 3, 128] {
            let out = round_trip(values, block_len);
            assert!(same_bits(values, &out), "{values:?} came back as {out:?}");
        }
    }
}

#[test]
fn quiet_series_cost_almost_nothing() {
    let mut enc = ColumnEncoder::new(128);
    for _ in 0..1280 {
        enc.push(12.5);
    }
    // The first block states the level, the nine after it are two bits each.
    assert!(enc.to_bytes().len() <= 16, "{} bytes", enc.to_bytes().len());
}

#[test]
fn values_in_pages_cost_no_more_than_values_in_ones() {
    let pages: Vec<f64> = (0..1280)
        .map(|i| ((i * 7919) % 97) as f64 * 4096.0)
        .collect();
    let ones: Vec<f64> = pages.iter().map(|v| v / 4096.0).collect();
    let size = |values: &[f64]| {
        let mut enc = ColumnEncoder::new(128);
        values.iter().for_each(|&v| enc.push(v));
        enc.to_bytes().len()
    };
    // Only the first residual of each block carries the 12 zero bits.
    assert!(
        size(&pages) <= size(&ones) + 10 * 4,
        "{} vs {}",
        size(&pages),
        size(&ones)
    );
}

#[test]
fn regular_timestamps_are_one_run() {
    let mut enc = ChunkEncoder::new(1, 128);
    for i in 0..1800 {
        enc.push(1_700_000_000_000 + i * 1000, &[1.0]);
    }
    let bytes = enc.to_bytes();
    assert!(bytes.len() <= 32, "{} bytes for 1,800 samples", bytes.len());
    let chunk = decode_chunk(&bytes).unwrap();
    assert_eq!(chunk.ts.len(), 1800);
    assert_eq!(chunk.ts[1799], 1_700_000_000_000 + 1799 * 1000);
}

#[test]
fn an_encoder_started_over_writes_what_a_new_one_would_in_the_buffers_it_had() {
    let fill = |enc: &mut ChunkEncoder, from: i64| {
        for i in 0..1000 {
            let t = from + i * 1000 + (i % 3);
            enc.push(t, &[(i as f64).sin() * 50.0, (i % 7) as f64]);
        }
    };
    let mut reused = ChunkEncoder::new(2, 128);
    fill(&mut reused, 0);
    let held = reused.heap_bytes();
    reused.restart();
    assert!(reused.is_empty());
    assert_eq!(
        reused.heap_bytes(),
        held,
        "a series still reporting keeps its buffers"
    );
    fill(&mut reused, 5_000_000);
    assert_eq!(reused.heap_bytes(), held, "the next window fits in them");
    let mut fresh = ChunkEncoder::new(2, 128);
    fill(&mut fresh, 5_000_000);
    assert_eq!(reused.to_bytes(), fresh.to_bytes());
    reused.restart();
    reused.restart();
    assert_eq!(
        reused.heap_bytes(),
        0,
        "a window without rows gives them back"
    );
    fill(&mut reused, 9_000_000);
    let mut fresh = ChunkEncoder::new(2, 128);
    fill(&mut fresh, 9_000_000);
    assert_eq!(reused.to_bytes(), fresh.to_bytes());
}

#[test]
fn irregular_timestamps_and_many_columns_round_trip() {
    let mut enc = ChunkEncoder::new(3, 16);
    let mut expect = DecodedChunk {
        ts: vec![],
        cols: vec![vec![]; 3],
    };
    let mut t = -5_000i64;
    for i in 0..100 {
        t += 1 + (i * i) % 17;
        let row = [i as f64, -(i as f64) / 3.0, 7.0];
        enc.push(t, &row);
        expect.ts.push(t);
        for (c, v) in expect.cols.iter_mut().zip(row) {
            c.push(v);
        }
    }
    assert_eq!(decode_chunk(&enc.to_bytes()).unwrap(), expect);
    assert_eq!(enc.decode().unwrap(), expect);
}

#[test]
fn corrupt_chunks_are_errors_not_panics() {
    let mut enc = ChunkEncoder::new(1, 8);
    for i in 0..50 {
        enc.push(i * 1000, &[(i as f64).cos()]);
    }
    let bytes = enc.to_bytes();
    for cut in 0..bytes.len() {
        assert!(decode_chunk(&bytes[..cut]).is_err(), "cut at {cut} decoded");
    }
    let mut bad = bytes.clone();
    bad[0] = 9;
    assert_eq!(decode_chunk(&bad), Err(CodecError::UnknownVersion(9)));
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0xa5;
        let _ = decode_chunk(&flipped);
    }
}

#[test]
fn rounding_keeps_what_a_user_sees() {
    assert_eq!(round_to(0.123_456_7, 4), 0.1235);
    assert_eq!(round_to(-2.5, 0), -3.0);
    assert_eq!(round_to(1e300, 2), 1e300);
    assert!(round_to(f64::NAN, 2).is_nan());
}
