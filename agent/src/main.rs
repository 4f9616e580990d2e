//! `ward-agent`: the daemon and its node-side commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::info;
use ward_agent::config::{self, Config, LogFormat};
use ward_agent::daemon;

/// Ward's per-node agent: collects, stores and (soon) watches this host's metrics.
#[derive(Debug, Parser)]
#[command(name = "ward-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGINT or SIGTERM.
    Run {
        /// Config file (TOML). Without one, every key takes its default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory, over the config's agent.data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check a config file: exit 0 if it is valid, 2 with the reason if not.
    CheckConfig {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the default config file.
    DefaultConfig,
    /// Run the live detector offline over a `timestamp,value` CSV and write
    /// `timestamp,value,anomaly_score` (scores in [0, 1], causal).
    Detect {
        #[arg(long, value_name = "FILE.csv")]
        input: PathBuf,
        /// Where to write; standard output when absent.
        #[arg(long, value_name = "FILE.csv")]
        output: Option<PathBuf>,
    },
    /// Show how the agent on a data directory is doing: collectors, GPUs, store.
    /// Exits 1 when no agent has written a status lately.
    Status {
        /// Config file, to find the data directory.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory, over the config's.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(Some(&file), std::env::vars()) {
            Ok(c) => {
                println!(
                    "{}: ok (data in {}, interval {:?}, disk budget {} bytes)",
                    file.display(),
                    c.agent.data_dir.display(),
                    c.agent.interval,
                    c.store.options.disk_budget
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ward-agent: {e}");
                ExitCode::from(2)
            }
        },
        Command::Status {
            config,
            data_dir,
            json,
        } => {
            let dir = match (data_dir, Config::load(config.as_deref(), std::env::vars())) {
                (Some(dir), _) => dir,
                (None, Ok(c)) => c.agent.data_dir,
                (None, Err(e)) => {
                    eprintln!("ward-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            match ward_agent::status::read(&dir) {
                Ok(s) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
                    } else {
                        print!("{}", ward_agent::status::render(&s, daemon::now_ms()));
                    }
                    let fresh = daemon::now_ms() - s.updated < 30_000;
                    if s.state == "running" && fresh {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "ward-agent: no agent is running on {} (its status is {} and {} s old)",
                            dir.display(),
                            s.state,
                            (daemon::now_ms() - s.updated) / 1000
                        );
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("ward-agent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Detect { input, output } => match detect(&input, output.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ward-agent: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::DefaultConfig => {
            print!("{}", config::default_toml());
            ExitCode::SUCCESS
        }
        Command::Run { config, data_dir } => {
            let mut cfg = match Config::load(config.as_deref(), std::env::vars()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ward-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(dir) = data_dir {
                cfg.agent.data_dir = dir;
            }
            init_logs(&cfg);
            match run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "agent failed");
                    eprintln!("ward-agent: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn detect(input: &std::path::Path, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    use ward_agent::detect::{Detector, Params, csv};
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let rows = csv::parse(&text).with_context(|| input.display().to_string())?;
    let mut detector = Detector::new(Params::default());
    let scores: Vec<f64> = rows.iter().map(|(_, v)| detector.score(*v)).collect();
    match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            csv::write(&mut std::io::BufWriter::new(file), &rows, &scores)?;
        }
        None => csv::write(&mut std::io::stdout().lock(), &rows, &scores)?,
    }
    Ok(())
}

fn init_logs(cfg: &Config) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(cfg.log.level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!(signal = "SIGINT", "stop requested"),
                _ = term.recv() => info!(signal = "SIGTERM", "stop requested"),
            }
            signals.cancel();
        });
        Ok(daemon::run(cfg, shutdown).await?)
    })
}
