//! `ward-agent`: the per-node daemon.
//!
//! Layout:
//! - [`api`]: the local HTTP API (Unix socket, TCP opt-in) that the
//!   dashboard and the CLI read.
//! - [`store`]: the embedded time-series store on sled (the only module that
//!   touches sled): series index, compressed chunks, rollups, retention.
//! - [`collect`]: one module per source (cpu, memory, disk, filesystem,
//!   network, process, the agent itself); each only produces values, and a
//!   runner gives each a thread so that none delays another.
//! - [`budget`]: the agent's own RSS and CPU budget, and the optional work
//!   it sheds to stay under it.
//! - [`config`]: the TOML config file, environment overrides, validation.
//! - [`detect`]: the streaming anomaly detector of one series (k-means on
//!   shape and level features, causal), and the CSV of `ward-agent detect`.
//! - [`daemon`]: the running agent: tasks, flush and maintenance timers, and
//!   the shutdown order.
//! - [`status`]: the agent's status file, for `ward-agent status`.
//! - [`incidents`]: the incident book: open, update, clear, resolve,
//!   acknowledge, notes and feedback, persisted in the store.
//! - [`jobs`]: data-pipeline jobs: runs from `ward-agent job run`, the job
//!   events API and the spool, and job health raised as incidents.
//! - [`rules`]: static rules from the config (filesystem full soon, GPU too
//!   hot, XID errors), raising the same incidents.
//! - [`export`]: OTLP export (gRPC or HTTP/protobuf) of metrics from the
//!   store behind a persisted cursor, incidents and job runs as log
//!   records; the Prometheus text exposition on /metrics.
//! - [`notify`], [`outbound`]: notifications, and the outgoing HTTP they
//!   share with OTLP over HTTP.

pub mod allocator;
pub mod api;
pub mod budget;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod export;
pub mod incidents;
pub mod jobs;
pub mod notify;
pub mod outbound;
pub mod procfs;
pub mod rules;
pub mod status;
pub mod store;
pub mod sync;
pub mod system;
pub mod telemetry;
