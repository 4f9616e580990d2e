//! A config file's text, as `ward-agent check-config` and `run` read it: an
//! error that names the problem, or a config; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_agent::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Config::parse(&text, "fuzz.toml", Vec::new()) {
        // Every error names where it came from.
        assert!(e.to_string().contains("fuzz.toml"), "{e}");
    }
});
