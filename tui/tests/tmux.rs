//! The real `ward` binary in a real terminal (tmux), on a machine with no
//! agent running: it starts one, shows live data, and answers keys.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::process::Command;

use std::time::{Duration, Instant};
use ward_shared::client::{Client, Endpoint};
use ward_shared::jobs::{JobEvent, JobEventKind};

struct Session(String);

impl Session {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", &self.0, k]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// Waits until the screen shows every one of `texts`.
    fn wait_for(&self, texts: &[&str]) -> String {
        self.wait_until(&format!("{texts:?}"), |screen| {
            texts.iter().all(|t| screen.contains(t))
        })
    }

    /// Waits until `ok` holds for the screen; `what` says what was awaited.
    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never showed {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn ward_starts_an_agent_shows_live_data_and_answers_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    let name = format!("ward-e2e-{}", std::process::id());
    // A fleet of two: the agent `ward` starts, and one that is not there.
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[[agent]]\nname = \"here\"\naddress = \"{}\"\n\n[[agent]]\nname = \"nowhere\"\naddress = \"127.0.0.1:9\"\n",
            run.join("ward/api.sock").display()
        ),
    )
    .unwrap();
    let command = format!(
        "env -u WARD_API_SOCKET -u WARD_AGENT_DATA_DIR WARD_JOBS_STATSD_LISTEN=127.0.0.1:0 XDG_DATA_HOME={} XDG_RUNTIME_DIR={} {} --fleet {}; echo EXITED $?; sleep 60",
        data.display(),
        run.display(),
        env!("CARGO_BIN_EXE_ward"),
        fleet.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "30",
            &command,
        ])
        .status()
        .expect("tmux is installed (.ci/run installs it)");
    assert!(status.success());
    let s = Session(name);

    // Overview: the agent it started, live tiles, every collector's state.
    let screen = s.wait_for(&[
        "(started here)",
        "CPU ",
        "Memory ",
        "cpu         ✓ ok",
        "gpu         ✗ n/a",
    ]);
    assert!(screen.contains("Top processes by CPU"), "{screen}");

    // Metrics explorer: filter, chart, zoom out.
    s.keys(&["2", "/", "l", "o", "a", "d", "Enter"]);
    s.wait_for(&["Series matching \"load\" (3)", "system.cpu.load_average.5m"]);
    s.keys(&["Enter"]);
    s.wait_for(&["system.cpu.load_average.1m · 5m ● live"]);
    s.keys(&["-"]);
    s.wait_for(&["· 15m ● live"]);
    s.keys(&["Left"]);
    s.wait_for(&["· 15m ⏸ history"]);

    // Processes, sorted by memory; GPUs, which this machine has none of.
    s.keys(&["3"]);
    s.wait_for(&["Top processes by CPU ▼"]);
    s.keys(&["s"]);
    s.wait_for(&["Top processes by memory ▼"]);
    s.keys(&["4"]);
    s.wait_for(&["No GPU readings"]);

    // A job fails: its incident shows on the overview and in the incidents
    // view, where it is acknowledged and annotated; the jobs view has the run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(Endpoint::Unix(run.join("ward/api.sock")));
    let mut failed = JobEvent::new("nightly-etl", "r1", JobEventKind::Finish);
    failed.exit_code = Some(2);
    failed.duration_s = Some(42.0);
    rt.block_on(client.job_event(&failed)).unwrap();
    s.keys(&["1"]);
    s.wait_for(&[
        "Incidents · 1 active",
        "job nightly-etl failed (exit code 2)",
    ]);
    s.keys(&["5"]);
    s.wait_for(&[
        "! warning · ● open · #1 · job",
        "job nightly-etl failures in a row: 1",
    ]);
    s.keys(&["a"]);
    s.wait_for(&["incident 1 acknowledged", "◐ acked"]);
    s.keys(&["n", "r", "e", "r", "u", "n", "Enter"]);
    s.wait_for(&["incident 1 noted", "operator: rerun"]);
    s.keys(&["6"]);
    s.wait_for(&["nightly-etl", "✗ exit 2", "42.0s"]);

    // The fleet: the agent that is not there first, then this one with its
    // incident; Enter on it watches it.
    s.keys(&["7"]);
    let fleet = s.wait_for(&["Fleet (2 agents)", "✗ down", "! 1 open"]);
    let down = fleet.find("nowhere").unwrap();
    let here = fleet.find("job nightly-etl failed").unwrap();
    assert!(down < here, "the unreachable agent ranks first:\n{fleet}");
    s.keys(&["j", "Enter"]);
    s.wait_for(&["watching here", "CPU "]);

    // Resizing redraws cleanly, down to 80x24 and back.
    s.keys(&["1"]);
    s.tmux(&["resize-window", "-t", &s.0, "-x", "80", "-y", "24"]);
    let small = s.wait_until("the layout at 80x24", |screen| {
        screen.lines().count() == 24
            && screen.lines().all(|l| l.chars().count() <= 80)
            && ["CPU ", "Collectors", "? help"]
                .iter()
                .all(|t| screen.contains(t))
    });
    assert!(
        small.lines().nth(1).is_some_and(|l| l.starts_with("┌CPU")),
        "{small}"
    );
    s.tmux(&["resize-window", "-t", &s.0, "-x", "140", "-y", "40"]);
    s.wait_until("the layout widened to 140 columns", |screen| {
        screen.lines().any(|l| l.chars().count() > 120) && screen.contains("? help")
    });

    // Help, then quit: the terminal comes back and the embedded agent stops cleanly.
    s.keys(&["?"]);
    s.wait_for(&["Keys", "this help (any key closes it)"]);
    s.keys(&["x", "q"]);
    s.wait_for(&["EXITED 0"]);
    // The agent released its data directory and sealed the store.
    assert!(
        !data
            .join("ward/wal")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().metadata().unwrap().len() > 8 }),
        "the write-ahead log is empty after a clean stop"
    );
    assert!(!run.join("ward/api.sock").exists(), "the socket is gone");
}
