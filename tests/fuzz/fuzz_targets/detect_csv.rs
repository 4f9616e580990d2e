//! The `timestamp,value` CSV that `ward-agent detect --input` reads: rows
//! or an error naming the line; never a panic, and every row kept has a
//! valid timestamp and a finite value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::detect::csv;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(rows) = csv::parse(&text) {
        for (ts, value) in rows {
            assert!(csv::valid_timestamp(&ts), "{ts:?} accepted");
            assert!(value.is_finite(), "{value} accepted");
        }
    }
});
