//! What the agent's integration tests share: the binary, a running agent.
//!
//! Each test crate uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn agent() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward-agent"));
    // The tests must not pick up an operator's overrides.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARD_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// A running agent whose log lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts an agent with fast ticks, its own socket and StatsD port, and `extra` settings.
    pub fn start_with(data_dir: &Path, extra: &[(&str, &std::ffi::OsStr)]) -> Self {
        let mut cmd = agent();
        cmd.args(["run", "--data-dir"])
            .arg(data_dir)
            .env("WARD_AGENT_INTERVAL", "100ms")
            .env("WARD_COLLECT_PROCESS_INTERVAL", "100ms")
            .env("WARD_API_SOCKET", data_dir.with_extension("sock"))
            .env("WARD_JOBS_STATSD_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// Starts `cmd`, its standard error piped, and follows its log.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    pub fn wait_for(&self, text: &str) -> String {
        self.lines_until(text).pop().unwrap()
    }

    /// Every log line up to and including the first with `text`.
    pub fn lines_until(&self, text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no log line with {text:?} within a minute; the last ones:\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                )
            });
            let done = line.contains(text);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A test that fails half-way must not leave its agent running.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a certificate for localhost signed by it, made with openssl
/// (.ci/run makes sure it is there): (ca.pem, cert.pem, key.pem) in `dir`.
pub fn test_certificates(
    dir: &Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n",
    )
    .unwrap();
    // A CA, and the agent's certificate for localhost signed by it (.ci/run
    // makes sure openssl is there).
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=ward test CA",
                "-days",
                "2",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    assert!(ca_key.exists());
    (ca, cert, key)
}
