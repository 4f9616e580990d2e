//! `ward`: the dashboard for the engineer on call.
//!
//! Connects to the local agent (the socket the agent's config names, else
//! the system agent's that the Debian package runs); when none answers,
//! starts one in this process so that a fresh machine shows live data at
//! once. `ward --agent ADDR` watches another agent (a socket
//! path or `http://127.0.0.1:7070`); `ward --fleet FILE` adds the fleet view.

use std::io::stdout;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use tokio_util::sync::CancellationToken;
use ward_agent::config::Config;
use ward_shared::client::{Client, Endpoint};
use ward_shared::time::now_ms;
use ward_tui::app::App;
use ward_tui::fetch;
use ward_tui::message::Request;
use ward_tui::ui;

/// The terminal dashboard for Ward agents.
#[derive(Debug, Parser)]
#[command(name = "ward", version, about)]
struct Cli {
    /// The agent to watch: its API socket path, http://HOST:PORT (loopback)
    /// or https://HOST:PORT.
    /// Default: the local agent; started here if none runs.
    #[arg(long, value_name = "ADDR")]
    agent: Option<String>,
    /// Config file of the local agent (for its socket and data directory).
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// API token, needed over TCP; default: $WARD_TOKEN.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// CA certificate (PEM) that an https:// agent's certificate must chain
    /// to, instead of the system's roots; default: $WARD_CA_FILE.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// A fleet file (TOML, [[agent]] name, address, token_env, ca_file): the fleet
    /// view ranks them, Enter watches one.
    #[arg(long, value_name = "FILE")]
    fleet: Option<std::path::PathBuf>,
}

/// An agent running inside this process.
struct Embedded {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

fn reachable(client: &Client) -> bool {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .is_ok_and(|rt| rt.block_on(client.health()).is_ok())
}

fn start_embedded(config: Config, client: &Client) -> anyhow::Result<Embedded> {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let thread = std::thread::Builder::new()
        .name("embedded-agent".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            // Its errors cannot be printed over the dashboard; the dashboard shows it as unreachable.
            let _ = rt.block_on(ward_agent::daemon::run(config, token));
        })?;
    for _ in 0..50 {
        if reachable(client) {
            return Ok(Embedded { stop, thread });
        }
        if thread.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.cancel();
    let _ = thread.join();
    anyhow::bail!(
        "no agent answers at {} and one could not be started here (is another agent using the same data directory? run `ward-agent status`)",
        client.endpoint()
    )
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    // Read before the terminal is taken over, so an error prints plainly.
    let fleet = match &cli.fleet {
        Some(path) => Some(ward_tui::fleet::load(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let told = cli.config.is_some() || ward_agent::system::named_by_env();
    let (endpoint, local) = match &cli.agent {
        Some(a) => (Endpoint::parse(a), false),
        // On a node with the package installed: the node's agent.
        None if !told => match ward_agent::system::socket_instead_of(&config.api.socket)
            .map_err(anyhow::Error::msg)?
        {
            Some(socket) => (Endpoint::Unix(socket), false),
            None => (Endpoint::Unix(config.api.socket.clone()), true),
        },
        None => (Endpoint::Unix(config.api.socket.clone()), true),
    };
    let token = cli
        .token
        .clone()
        .or_else(|| std::env::var("WARD_TOKEN").ok());
    let client = Client::new(endpoint.clone())
        .with_timeout(Duration::from_secs(2))
        .with_token(token)
        .with_ca_file(
            cli.ca
                .clone()
                .or_else(|| std::env::var_os("WARD_CA_FILE").map(Into::into))
                .as_deref(),
        );
    let embedded = if local && !reachable(&client) {
        Some(start_embedded(config, &client)?)
    } else {
        None
    };

    let (req_tx, req_rx) = mpsc::channel::<Request>();
    let (upd_tx, upd_rx) = mpsc::channel();
    let upd_tx_fleet = upd_tx.clone();
    let worker = {
        let client = client.clone();
        std::thread::Builder::new()
            .name("fetch".into())
            .spawn(move || fetch::run(client, req_rx, upd_tx, Duration::from_secs(1)))
            .context("starting the fetch worker")?
    };

    let mut terminal = ratatui::init();
    let _ = execute!(stdout(), EnableMouseCapture);
    let label = match &embedded {
        Some(_) => format!("{endpoint} (started here)"),
        None => endpoint.to_string(),
    };
    let mut app = App::new(label);
    let fleet_stop = match fleet {
        Some(members) => {
            app.fleet.members = members.clone();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let out = upd_tx_fleet.clone();
            std::thread::Builder::new()
                .name("fleet".into())
                .spawn(move || ward_tui::fleet::run(members, out, stop_rx, Duration::from_secs(5)))
                .context("starting the fleet worker")?;
            Some(stop_tx)
        }
        None => None,
    };
    // Clicks are placed on the screen as it is drawn: the app needs its size.
    let size = terminal.size()?;
    app.update(&event::Event::Resize(size.width, size.height), now_ms());
    let mut last_live = std::time::Instant::now();
    let result = (|| -> anyhow::Result<()> {
        while !app.quit {
            while let Ok(update) = upd_rx.try_recv() {
                app.apply(update);
            }
            terminal.draw(|f| ui::draw(f, &app))?;
            if event::poll(Duration::from_millis(100))? {
                for request in app.update(&event::read()?, now_ms()) {
                    let _ = req_tx.send(request);
                }
            }
            if last_live.elapsed() >= Duration::from_secs(1) {
                last_live = std::time::Instant::now();
                if let Some(r) = app.live_chart() {
                    let _ = req_tx.send(r);
                }
            }
        }
        Ok(())
    })();
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
    let _ = req_tx.send(Request::Stop);
    if let Some(stop) = fleet_stop {
        let _ = stop.send(());
    }
    let _ = worker.join();
    if let Some(e) = embedded {
        e.stop.cancel();
        let _ = e.thread.join();
    }
    result
}

#[global_allocator]
static ALLOCATOR: ward_agent::allocator::Allocator = ward_agent::allocator::Allocator;

fn main() -> ExitCode {
    // Before any thread: the dashboard may run the agent in this process.
    ward_agent::allocator::tune_allocator();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward: {e:#}");
            ExitCode::FAILURE
        }
    }
}
