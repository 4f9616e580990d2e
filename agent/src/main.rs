//! `ward-agent`: the daemon and its node-side commands.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::info;
use ward_agent::config::{self, Config, LogFormat};
use ward_agent::daemon;

/// Ward's per-node agent: collects, stores and watches this host's metrics.
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
    /// Data-pipeline jobs.
    Job {
        #[command(subcommand)]
        command: JobCommand,
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

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Run COMMAND as a run of job NAME: its output passes through, and
    /// start, end, exit code or signal, duration, CPU time, peak RSS and GPU
    /// memory are reported to the local agent (spooled while it is down).
    /// Exits with the command's exit code (128 + N when killed by signal N).
    Run {
        /// The job's name, e.g. "nightly-etl".
        #[arg(long)]
        name: String,
        /// A run is expected at least this often, e.g. "1h"; none within it
        /// (plus 10%) raises a missed-run incident.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        expect_every: Option<std::time::Duration>,
        /// A run still going after this long raises an incident, e.g. "30m".
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        max_duration: Option<std::time::Duration>,
        /// Config file, to find the agent's socket and the spool directory.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory, over the config's (the socket and spool default under it).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The agent's API: a socket path, HOST:PORT or https://HOST:PORT,
        /// over the config's. A token, if one is needed, comes from $WARD_TOKEN.
        #[arg(long, value_name = "ADDR")]
        agent: Option<String>,
        /// CA certificate (PEM) for an https:// agent; default: $WARD_CA_FILE.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
    },
}

/// The config from `file` (or defaults) and the environment, with `--data-dir`
/// over `agent.data_dir` so that what defaults under it (the API socket, the
/// spool) follows it.
fn load_config(
    file: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<Config, config::ConfigError> {
    let over = data_dir.map(|d| ("WARD_AGENT_DATA_DIR".to_string(), d.display().to_string()));
    Config::load(file, std::env::vars().chain(over))
}

fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as \"30s\", \"15m\" or \"1h30m\""))
}

/// The status from the agent's API on `socket`, if one answers within 2 s.
fn ask_running_agent(socket: &Path) -> Option<ward_shared::status::AgentStatus> {
    let client =
        ward_shared::client::Client::new(ward_shared::client::Endpoint::Unix(socket.to_path_buf()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(2), client.status())
            .await
            .ok()?
            .ok()
    })
}

#[global_allocator]
static ALLOCATOR: ward_agent::allocator::Allocator = ward_agent::allocator::Allocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(Some(&file), std::env::vars()) {
            // The files the API loads at start are checked as it loads them.
            Ok(c) if let Err(e) = ward_agent::api::Credentials::load(&c.api) => {
                eprintln!("ward-agent: {}: {e}", file.display());
                ExitCode::from(2)
            }
            Ok(c) => {
                println!(
                    "{}: ok (data in {}, interval {:?}, disk budget {} bytes)",
                    file.display(),
                    c.agent.data_dir.display(),
                    c.agent.interval,
                    c.store.disk_budget
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
            let told = config.is_some() || ward_agent::system::named_by_env();
            let loaded = Config::load(config.as_deref(), std::env::vars());
            let dir = match (data_dir, &loaded) {
                (Some(dir), _) => dir,
                (None, Ok(c)) if told => c.agent.data_dir.clone(),
                (None, Ok(c)) => match ward_agent::system::data_dir_instead_of(&c.agent.data_dir) {
                    Ok(system) => system.unwrap_or_else(|| c.agent.data_dir.clone()),
                    Err(e) => {
                        eprintln!("ward-agent: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                (None, Err(e)) => {
                    eprintln!("ward-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            // The socket the config names, or the default one for `dir`.
            let socket = match &loaded {
                Ok(c) if c.api.socket != ward_agent::api::default_socket(&c.agent.data_dir) => {
                    c.api.socket.clone()
                }
                _ => ward_agent::api::default_socket(&dir),
            };
            let show = |s: &ward_shared::status::AgentStatus| {
                if json {
                    println!("{}", serde_json::to_string_pretty(s).unwrap_or_default());
                } else {
                    print!(
                        "{}",
                        ward_agent::status::render(s, ward_shared::time::now_ms())
                    );
                }
            };
            let file = ward_agent::status::read(&dir);
            let why = match &file {
                Ok(s)
                    if s.state == "running" && ward_shared::time::now_ms() - s.updated < 30_000 =>
                {
                    show(s);
                    return ExitCode::SUCCESS;
                }
                Ok(s) => format!(
                    "its status is {} and {} s old",
                    s.state,
                    (ward_shared::time::now_ms() - s.updated) / 1000
                ),
                Err(e) => e.clone(),
            };
            // A running agent that cannot write its status file (a full
            // disk) still answers on its socket.
            if let Some(live) = ask_running_agent(&socket) {
                eprintln!(
                    "ward-agent: {} is not up to date ({why}); the agent answered on {} instead",
                    ward_agent::system::status_path(&dir).display(),
                    socket.display()
                );
                show(&live);
                return ExitCode::SUCCESS;
            }
            if let Ok(s) = &file {
                show(s);
            }
            eprintln!(
                "ward-agent: no agent is running on {} ({why}; none answers on {})",
                dir.display(),
                socket.display()
            );
            ExitCode::FAILURE
        }
        Command::Job {
            command:
                JobCommand::Run {
                    name,
                    expect_every,
                    max_duration,
                    config,
                    data_dir,
                    agent,
                    ca,
                    command,
                },
        } => {
            let told = config.is_some() || data_dir.is_some() || ward_agent::system::named_by_env();
            let mut cfg = match load_config(config.as_deref(), data_dir.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ward-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            if agent.is_none() && !told {
                // On a node with the package installed: the node's agent, and
                // its spool (group-writable) when it does not answer.
                match ward_agent::system::socket_instead_of(&cfg.api.socket) {
                    Ok(Some(socket)) => {
                        cfg.api.socket = socket;
                        cfg.jobs.spool_dir = Path::new(ward_agent::system::DATA_DIR).join("spool");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("ward-agent job run: {e}");
                        return ExitCode::from(125);
                    }
                }
            }
            let endpoint = match agent {
                Some(a) => ward_shared::client::Endpoint::parse(&a),
                None => ward_shared::client::Endpoint::Unix(cfg.api.socket.clone()),
            };
            let spec = ward_agent::job_wrapper::RunSpec {
                name,
                expect_every,
                max_duration,
                command,
                client: ward_shared::client::Client::new(endpoint)
                    .with_token(std::env::var("WARD_TOKEN").ok().filter(|t| !t.is_empty()))
                    .with_ca_file(
                        ca.or_else(|| std::env::var_os("WARD_CA_FILE").map(Into::into))
                            .as_deref(),
                    ),
                spool: cfg.jobs.spool_dir.clone(),
                heartbeat: std::time::Duration::from_secs(30),
                gpus: cfg
                    .collect
                    .enabled
                    .contains(&ward_agent::collect::CollectorKind::Gpu)
                    .then_some(ward_agent::collect::gpu::nvml::NvmlSource::open as _),
                proc_path: cfg.collect.paths.proc.clone(),
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let outcome = rt.block_on(ward_agent::job_wrapper::run(spec));
                    ExitCode::from(outcome.exit_code.clamp(0, 255) as u8)
                }
                Err(e) => {
                    eprintln!("ward-agent job run: cannot start the async runtime: {e}");
                    ExitCode::from(125)
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
            // Before the runtime starts any thread.
            let allocator = ward_agent::allocator::tune_allocator();
            let cfg = match load_config(config.as_deref(), data_dir.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ward-agent: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logs(&cfg);
            tracing::debug!(settings = ?allocator, "allocator tuned");
            match run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => match e.downcast_ref() {
                    // A file the API could not load is the config's error, told as one.
                    Some(daemon::DaemonError::Credentials(why)) => {
                        let origin = config.as_deref().map_or_else(
                            || "built-in defaults".to_string(),
                            |p| p.display().to_string(),
                        );
                        eprintln!("ward-agent: {origin}: {why}");
                        ExitCode::from(2)
                    }
                    _ => {
                        tracing::error!(error = format!("{e:#}"), "agent failed");
                        eprintln!("ward-agent: {e:#}");
                        ExitCode::FAILURE
                    }
                },
            }
        }
    }
}

fn detect(input: &Path, output: Option<&Path>) -> anyhow::Result<()> {
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
