//! `ward-tui`: the dashboard. Gathering, holding and drawing are apart:
//!
//! - [`message`]: what the screen asks the workers for and what they send
//!   back ([`message::Request`], [`message::Update`]).
//! - [`fetch`]: a worker thread that asks the agent for data, on a schedule
//!   and on request, and hands back updates; the UI never waits on the
//!   network.
//! - [`fleet`]: the fleet file, and a worker that asks every agent in it
//!   how it is doing.
//! - [`views`]: one module per view (overview, metrics, processes, GPUs,
//!   incidents, jobs, fleet), each with its state, its keys and its
//!   drawing.
//! - [`app`]: what the dashboard holds: the views and what they share;
//!   only [`app::App::update`] (events) and [`app::App::apply`] (data)
//!   change it.
//! - [`ui`]: draws an [`app::App`] on a frame: tabs, the view, the status
//!   line, the help; reads, never changes.
//!
//! Agents are reached only through `ward_shared::client`.

pub mod app;
pub mod fetch;
pub mod fleet;
pub mod message;
pub mod ui;
pub mod views;
