//! `ward-agent`: the per-node daemon and its node-side commands.
//!
//! Layout, in layers from the bottom: a module names only modules of a
//! lower layer (`tests/tests/architecture.rs` checks it; docs/architecture.md
//! draws it).
//!
//! 1. Foundations: [`sync`] (the shared-state handle), [`procfs`] (what
//!    the agent reads of itself), [`outbound`] (outgoing HTTP), [`system`]
//!    (the host: its name, and where the system agent lives).
//! 2. The store and the agent's own resources: [`store`] (the embedded
//!    time-series and document store on sled, the only code that touches
//!    sled), [`budget`] (the RSS and CPU budget and what it sheds),
//!    [`allocator`] (the memory allocator set up for a long-running agent).
//! 3. Sources: [`collect`] (one module per source and their runner),
//!    [`notify`] (webhook, Slack, PagerDuty).
//! 4. [`incidents`]: the incident book, kept in the store.
//! 5. What raises incidents: [`jobs`] (job runs, job health, the spool),
//!    [`detect`] (per-series anomaly detection, grouped into incidents),
//!    [`rules`] (static rules: filesystems filling, GPU heat, XID errors).
//! 6. [`job_wrapper`]: `ward-agent job run`, a client of the agent.
//! 7. What reads the store for others: [`export`] (OTLP and Prometheus),
//!    [`api`] (the local HTTP API).
//! 8. The agent's account of itself: [`status`], [`telemetry`] (its own
//!    `ward.*` series).
//! 9. [`config`]: what the user wrote, then what it resolves to; each part
//!    owns its settings type.
//! 10. [`daemon`]: the running agent, `Agent::start` -> `Running` ->
//!     `Running::shutdown`.

pub mod allocator;
pub mod api;
pub mod budget;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod export;
pub mod incidents;
pub mod job_wrapper;
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
