//! Time to the dashboard's first frame against a running agent.
//!
//! Builds the release `ward` and `ward-agent`, starts the agent, then ten
//! times launches `ward --agent SOCKET` in a fresh tmux session and polls the
//! pane every 2 ms: "first frame" is when the layout is on screen, "first
//! data" when the agent's collectors show in it. tmux's own start-up is
//! inside the figures, so they are upper bounds. Target: first frame within
//! 200 ms. Needs tmux.
//!
//! Run: `cargo bench -p ward-benches --bench tui_first_frame`

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pane(name: &str) -> String {
    Command::new("tmux")
        .args(["capture-pane", "-p", "-t", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "ward-agent", "-p", "ward-tui"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "building failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("api.sock");
    let mut agent = Command::new(target.join("release/ward-agent"))
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WARD_API_SOCKET", &socket)
        .env("WARD_LOG_LEVEL", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("the agent starts");
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));

    let ward = target.join("release/ward");
    let (mut frames, mut data) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let name = format!("ward-first-frame-{}-{i}", std::process::id());
        let started = Instant::now();
        let cmd = format!("{} --agent {}; sleep 5", ward.display(), socket.display());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "40",
                &cmd,
            ])
            .status()
            .expect("tmux is installed");
        assert!(ok.success());
        let (mut frame, mut first_data) = (None, None);
        while started.elapsed() < Duration::from_secs(5) && first_data.is_none() {
            let screen = pane(&name);
            if frame.is_none() && screen.contains("Collectors") {
                frame = Some(started.elapsed());
            }
            if screen.contains("cpu         ✓ ok") {
                first_data = Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &name])
            .status();
        frames.push(frame.expect("a first frame within 5 s"));
        data.push(first_data.expect("data within 5 s"));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status();
    let _ = agent.wait();
    frames.sort();
    data.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "first frame: median {:.0} ms, worst {:.0} ms (10 launches, tmux start-up included)",
        ms(frames[5]),
        ms(frames[9])
    );
    println!(
        "first data:  median {:.0} ms, worst {:.0} ms",
        ms(data[5]),
        ms(data[9])
    );
}
