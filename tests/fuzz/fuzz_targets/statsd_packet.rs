//! A UDP datagram as the StatsD listener hands it to the aggregator: any
//! bytes. Bad lines are counted and skipped; nothing may panic, and the
//! aggregator's series stay within its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::collect::statsd::{Aggregator, StatsdLimits};

fuzz_target!(|data: &[u8]| {
    let mut agg = Aggregator::new(StatsdLimits::default());
    agg.packet(data);
    // A second packet on the same state: repeated names, type changes.
    agg.packet(data);
});
