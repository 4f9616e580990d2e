//! End-to-end tests with real processes.
//!
//! - `crash`: a writer killed with SIGKILL mid-ingest; the store reopens with
//!   everything it acknowledged as durable.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod crash;
