//! `ward-tui`: the dashboard. Gathering, holding and drawing are apart:
//!
//! - [`message`]: what the screen asks the workers for and what they send
//!   back ([`message::Request`], [`message::Update`]).
//! - [`fetch`]: a worker thread that asks the agent for data, on a schedule
//!   and on request, and hands back updates; the UI never waits on the
//!   network.
//! - [`app`]: what the dashboard holds and shows; only [`app::App::update`]
//!   (events) and [`app::App::apply`] (data) change it.
//! - [`fleet`]: the fleet file, and a worker that asks every agent in it
//!   how it is doing.
//! - [`ui`]: draws an [`app::App`] on a frame; reads, never changes.
//!
//! Agents are reached only through `ward_shared::client`.

pub mod app;
pub mod fetch;
pub mod fleet;
pub mod message;
pub mod ui;
