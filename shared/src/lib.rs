//! `ward-shared`: the data model that the agent and the dashboard agree on.
//!
//! It owns the vocabulary (series, samples, metric kinds and units, the
//! agent's status) and test fixtures (`fixtures`), and nothing else: no I/O,
//! no storage, no collection. The agent's store,
//! collectors and API, and the dashboard, all speak these types.

pub mod api;
#[cfg(feature = "client")]
pub mod client;
pub mod fixtures;
pub mod incident;
pub mod jobs;
pub mod model;
pub mod status;
pub mod time;

pub use model::{
    Labels, MetricKind, Sample, SeriesDesc, SeriesId, SeriesKey, SeriesKeyError, TimestampMs,
};
