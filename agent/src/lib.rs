//! `ward-agent`: the per-node daemon.
//!
//! Layout:
//! - [`store`]: the embedded time-series store on sled (the only module that
//!   touches sled): series index, compressed chunks, rollups, retention.
//! - [`config`]: the TOML config file, environment overrides, validation.
//! - [`daemon`]: the running agent: tasks, flush and maintenance timers, and
//!   the shutdown order.
//!
//! Collectors, detectors, incidents, exporters and the API arrive as their
//! issues land; each gets a module of its own beside these.

pub mod config;
pub mod daemon;
pub mod store;
