//! The host the agent runs on: its name, and the system agent, the one the
//! Debian package's service runs, with its API
//! socket and data directory where `packaging/systemd/ward-agent.service`
//! puts them. Commands told nothing about which agent to use (no `--agent`,
//! `--config` or `--data-dir`, no `WARD_API_SOCKET` or `WARD_AGENT_DATA_DIR`)
//! use it when the user's own agent is not there: on a node with the package
//! installed, `ward`, `ward-agent status` and `ward-agent job run` reach the
//! node's agent with no flags.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// This host's name: the kernel's, else `$HOSTNAME`, else "localhost".
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Where an agent whose data directory is `data_dir` writes its status.
pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("status.json")
}

/// The system agent's API socket (the unit's `WARD_API_SOCKET`).
pub const SOCKET: &str = "/run/ward/api.sock";
/// The system agent's data directory (the unit's `WARD_AGENT_DATA_DIR`).
pub const DATA_DIR: &str = "/var/lib/ward";

const GROUP_HINT: &str = "the system agent is open to group ward only: `sudo usermod -aG ward $USER`, then log in again (or pass --agent, --config or --data-dir for another agent)";

/// Whether the environment names an agent, which then wins over the system's.
pub fn named_by_env() -> bool {
    ["WARD_API_SOCKET", "WARD_AGENT_DATA_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The system agent's socket, when nothing answers at `own` and the system
/// agent does; an error when the system agent is there but closed to this
/// user. `None` leaves the user's own (a dashboard then starts one).
pub fn socket_instead_of(own: &Path) -> Result<Option<PathBuf>, String> {
    socket_at(own, Path::new(SOCKET))
}

fn socket_at(own: &Path, system: &Path) -> Result<Option<PathBuf>, String> {
    if own == system || UnixStream::connect(own).is_ok() || !system.exists() {
        return Ok(None);
    }
    match UnixStream::connect(system) {
        Ok(_) => Ok(Some(system.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(format!("{}: {e}; {GROUP_HINT}", system.display()))
        }
        // A socket left by a system agent that is not running.
        Err(_) => Ok(None),
    }
}

/// The system agent's data directory (its status, its job spool), when
/// `own` holds no agent's status and the system's does; an error when the
/// system's is there but closed to this user.
pub fn data_dir_instead_of(own: &Path) -> Result<Option<PathBuf>, String> {
    data_dir_at(own, Path::new(DATA_DIR))
}

fn data_dir_at(own: &Path, system: &Path) -> Result<Option<PathBuf>, String> {
    if own == system || status_path(own).exists() || !system.exists() {
        return Ok(None);
    }
    let status = status_path(system);
    match std::fs::metadata(&status) {
        Ok(_) => Ok(Some(system.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(format!("{}: {e}; {GROUP_HINT}", status.display()))
        }
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_users_own_agent_wins_and_the_system_one_stands_in() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own.sock");
        let system = dir.path().join("system.sock");
        // Neither there: the user's own (the dashboard starts one).
        assert_eq!(socket_at(&own, &system), Ok(None));
        // Only the system agent listens: it stands in.
        let sys_listener = std::os::unix::net::UnixListener::bind(&system).unwrap();
        assert_eq!(socket_at(&own, &system), Ok(Some(system.clone())));
        // The user's own listens too: it wins.
        let own_listener = std::os::unix::net::UnixListener::bind(&own).unwrap();
        assert_eq!(socket_at(&own, &system), Ok(None));
        drop(own_listener);
        // A stale system socket (its agent stopped) is not used.
        drop(sys_listener);
        assert_eq!(socket_at(&own, &system), Ok(None));
    }

    #[test]
    fn the_system_data_dir_stands_in_only_when_it_holds_a_status() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        let system = dir.path().join("system");
        std::fs::create_dir_all(&system).unwrap();
        assert_eq!(data_dir_at(&own, &system), Ok(None));
        std::fs::write(status_path(&system), "{}").unwrap();
        assert_eq!(data_dir_at(&own, &system), Ok(Some(system.clone())));
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(status_path(&own), "{}").unwrap();
        assert_eq!(data_dir_at(&own, &system), Ok(None));
    }
}
