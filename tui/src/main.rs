//! `ward`: the terminal dashboard for the engineer on call.
//!
//! Not built yet: it arrives with the local API (issue 7), through the typed
//! client in `ward-shared`. Until then this binary says so and points at
//! what does run, rather than pretending to be a dashboard.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "ward: the dashboard is not built yet; it comes with the agent's local API.\n\
         What runs today is the agent and its store:\n\
         \n    cargo run --release -p ward-agent -- run\n"
    );
    ExitCode::from(2)
}
