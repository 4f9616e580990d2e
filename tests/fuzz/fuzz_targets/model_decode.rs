//! A detector's models as read back from the store (a torn write, a flipped
//! bit, a hostile file): read or refused with an error, never a panic; what
//! is read is exactly what was written, holds only finite numbers (an
//! infinite record or scale, a NaN centroid would make the series look
//! normal for good), and a detector that goes on from it scores every value
//! in [0, 1).
//!
//! The first byte picks: even, the rest is decoded as it is; odd, the rest
//! overwrites the models of a detector trained here (once, with the live
//! parameters) from an offset the input picks, which keeps the format and
//! parameters valid and so reaches the numbers and the scoring behind them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ward_agent::detect::{Detector, Params, Saved};

/// The stored form of a detector with three models in each view.
fn trained() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut d = Detector::new(Params::default());
        for i in 0..1100 {
            d.score((i as f64 / 9.0).sin() * 20.0 + (i % 7) as f64);
        }
        d.save()
            .expect("a detector past its warm-up has models")
            .encode()
    })
}

/// Every number in `saved` is finite.
fn finite(saved: &Saved) -> bool {
    saved.record.is_finite()
        && saved.models.iter().all(|m| {
            [m.scale, m.lo, m.range]
                .iter()
                .chain(m.centroids.iter().flatten())
                .all(|v| v.is_finite())
        })
        && saved.slow.as_deref().is_none_or(finite)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let bytes = if pick % 2 == 0 {
        rest.to_vec()
    } else {
        let mut bytes = trained().to_vec();
        let at = usize::from(pick >> 1) * bytes.len() / 128;
        for (slot, &b) in bytes.iter_mut().skip(at).zip(rest) {
            *slot = b;
        }
        bytes
    };
    let Ok(saved) = Saved::decode(&bytes) else {
        return;
    };
    assert_eq!(saved.encode(), bytes, "read back other than it was written");
    assert!(finite(&saved), "read numbers no training writes: {saved:?}");
    let mut d = Detector::restore(Params::default(), &saved);
    for i in 0..120 {
        let score = d.score((i as f64 / 5.0).cos() * 30.0);
        assert!((0.0..1.0).contains(&score), "row {i} scored {score}");
    }
});
