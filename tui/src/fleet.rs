//! The fleet: many agents at a glance.
//!
//! A fleet file names the agents, TOML:
//!
//! ```toml
//! [[agent]]
//! name = "db-7"
//! address = "10.0.0.7:7070"       # HOST:PORT, http://HOST:PORT or a socket path
//! token_env = "WARD_TOKEN_DB"      # optional: the variable holding its API token
//! ca_file = "/etc/ward/ca.pem"     # optional: for https:// addresses
//! ```
//!
//! A worker thread asks every agent for its status and incidents every few
//! seconds, all at once and each with a short timeout, so one slow agent
//! shows as unreachable without holding up the others.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use ward_shared::client::{Client, Endpoint};
use ward_shared::incident::Severity;

use crate::message::{HostRow, Update};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub token_env: Option<String>,
    /// CA certificate (PEM) for an https:// agent.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl Member {
    pub fn client(&self) -> Client {
        let token = self
            .token_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty());
        Client::new(Endpoint::parse(&self.address))
            .with_timeout(Duration::from_secs(2))
            .with_token(token)
            .with_ca_file(self.ca_file.as_deref())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    #[serde(default)]
    agent: Vec<Member>,
}

/// Reads a fleet file; the error names the file and what is wrong.
pub fn load(path: &Path) -> Result<Vec<Member>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: FleetFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    if file.agent.is_empty() {
        return Err(format!(
            "{}: no agents; add [[agent]] tables with name and address",
            path.display()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for m in &file.agent {
        if !seen.insert(&m.name) {
            return Err(format!(
                "{}: agent name {:?} appears twice",
                path.display(),
                m.name
            ));
        }
    }
    Ok(file.agent)
}

async fn ask(m: &Member) -> HostRow {
    let client = m.client();
    let mut row = HostRow {
        name: m.name.clone(),
        address: m.address.clone(),
        unreachable: None,
        host: String::new(),
        incidents: 0,
        critical: 0,
        anomaly_rate: None,
        worst: None,
        jobs: 0,
    };
    let (status, incidents) = tokio::join!(client.status(), client.incidents(false));
    match (status, incidents) {
        (Ok(s), Ok(i)) => {
            row.host = s.host;
            row.anomaly_rate = s.detect.map(|d| d.anomaly_rate);
            row.jobs = s.jobs.jobs;
            row.incidents = i.len();
            row.critical = i
                .iter()
                .filter(|i| i.severity == Severity::Critical)
                .count();
            row.worst = i.first().map(|i| i.title.clone());
        }
        (Err(e), _) | (_, Err(e)) => row.unreachable = Some(e.to_string()),
    }
    row
}

/// Polls every member every `every` until `stop` says so or the UI is gone.
pub fn run(members: Vec<Member>, out: Sender<Update>, stop: Receiver<()>, every: Duration) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = out.send(Update::Failed("could not start the fleet runtime".into()));
        return;
    };
    rt.block_on(async {
        let mut last: Option<Instant> = None;
        loop {
            match stop.try_recv() {
                Ok(()) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            if last.is_none_or(|l| l.elapsed() >= every) {
                last = Some(Instant::now());
                let asks = members
                    .iter()
                    .cloned()
                    .map(|m| async move { ask(&m).await });
                let mut rows: Vec<HostRow> = futures_join_all(asks).await;
                HostRow::rank(&mut rows);
                if out.send(Update::Fleet(rows)).is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Runs the futures at once (on this thread) and collects them in order.
async fn futures_join_all<F: std::future::Future<Output = HostRow> + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<HostRow> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let handles: Vec<_> = futures.map(tokio::task::spawn_local).collect();
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                if let Ok(r) = h.await {
                    out.push(r);
                }
            }
            out
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_files_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fleet.toml");
        std::fs::write(&f, "[[agent]]\nname = \"a\"\naddress = \"10.0.0.1:7070\"\n[[agent]]\nname = \"b\"\naddress = \"/run/ward/api.sock\"\ntoken_env = \"T\"\n").unwrap();
        let m = load(&f).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].token_env.as_deref(), Some("T"));
        std::fs::write(&f, "[[agent]]\nname = \"a\"\nadress = \"x\"\n").unwrap();
        let e = load(&f).unwrap_err();
        assert!(e.contains("unknown field `adress`"), "{e}");
        std::fs::write(
            &f,
            "[[agent]]\nname = \"a\"\naddress = \"x\"\n[[agent]]\nname = \"a\"\naddress = \"y\"\n",
        )
        .unwrap();
        assert!(
            load(&f)
                .unwrap_err()
                .ends_with("agent name \"a\" appears twice")
        );
        std::fs::write(&f, "").unwrap();
        assert!(load(&f).unwrap_err().contains("no agents"));
    }

    #[test]
    fn the_worst_hosts_come_first() {
        let row = |name: &str, down: bool, inc, crit, rate| HostRow {
            name: name.into(),
            address: String::new(),
            unreachable: down.then(|| "timeout".to_string()),
            host: name.into(),
            incidents: inc,
            critical: crit,
            anomaly_rate: Some(rate),
            worst: None,
            jobs: 0,
        };
        let mut rows = vec![
            row("calm", false, 0, 0, 0.01),
            row("noisy", false, 0, 0, 0.2),
            row("paged", false, 2, 1, 0.0),
            row("busy", false, 3, 0, 0.0),
            row("gone", true, 0, 0, 0.0),
        ];
        HostRow::rank(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["gone", "paged", "busy", "noisy", "calm"]);
    }
}
