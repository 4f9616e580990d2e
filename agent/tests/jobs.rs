//! Pipeline jobs end to end: real commands under `ward-agent job run`
//! against a real agent, the job events API through the typed client, the
//! spool while the agent is down, and the incidents job health raises.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Running, agent};
use ward_shared::client::{Client, ClientError, Endpoint};
use ward_shared::incident::{Feedback, Incident, IncidentState, Severity};
use ward_shared::jobs::{JobEvent, JobEventKind, JobRun, RunStatus};

/// `ward-agent job run` against the test agent on `data`, with `args`.
fn job_command(data: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = agent();
    cmd.args(["job", "run", "--data-dir"])
        .arg(data)
        .arg("--agent")
        .arg(data.with_extension("sock"))
        .args(args);
    cmd
}

fn job_run(data: &Path, args: &[&str]) -> Output {
    job_command(data, args).output().unwrap()
}

struct Api {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Api {
    fn new(data: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = Client::new(Endpoint::Unix(data.with_extension("sock")));
        Self { rt, client }
    }

    fn runs(&self, job: &str) -> Vec<JobRun> {
        self.rt.block_on(self.client.job_runs(job)).unwrap()
    }

    fn incidents(&self, all: bool) -> Vec<Incident> {
        self.rt.block_on(self.client.incidents(all)).unwrap()
    }

    fn incident(&self, key: &str) -> Option<Incident> {
        self.incidents(true).into_iter().find(|i| i.key == key)
    }

    fn send(&self, e: &JobEvent) -> Result<JobRun, ClientError> {
        self.rt.block_on(self.client.job_event(e))
    }

    /// Polls `f` until it gives something, for at most `secs`.
    fn wait_until<T>(&self, what: &str, secs: u64, mut f: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A request as any HTTP client would send it, without the typed client.
fn raw_post(socket: &Path, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: ward\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn quick_resolve() -> [(&'static str, &'static OsStr); 1] {
    [("WARD_INCIDENTS_RESOLVE_AFTER", OsStr::new("1s"))]
}

#[test]
fn job_run_passes_output_through_keeps_the_exit_code_and_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start_with(&data, &quick_resolve());
    running.wait_for("api listening");
    let api = Api::new(&data);

    // Success: output passes through, the run records CPU time and memory.
    let out = job_run(
        &data,
        &[
            "--name",
            "train",
            "--",
            "python3",
            "-c",
            "import sys; x = b'x' * (150 * 2**20); s = sum(range(20_000_000)); print('rows', 42); print('warn', file=sys.stderr)",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rows 42\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warn\n",
        "the wrapper adds nothing when all is well"
    );
    let run = &api.runs("train")[0];
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.exit_code, Some(0));
    assert!(run.duration_s.unwrap() > 0.1, "{run:?}");
    assert!(
        run.cpu_seconds.unwrap() > 0.1,
        "summing 20 M numbers takes CPU: {run:?}"
    );
    assert!(
        run.peak_rss_bytes.unwrap() > 150 << 20,
        "a 150 MiB buffer shows in the peak RSS: {run:?}"
    );

    // Failure by exit code, then killed by a signal: the wrapper exits as a shell would.
    let out = job_run(
        &data,
        &["--name", "etl", "--", "sh", "-c", "echo partial; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "partial\n");
    let failed = api
        .incident("job:etl:failed")
        .expect("a failed run opens an incident");
    assert_eq!(failed.title, "job etl failed (exit code 3)");
    assert_eq!(failed.severity, Severity::Warning);

    let out = job_run(&data, &["--name", "etl", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    let out = job_run(&data, &["--name", "etl", "--", "/no/such/command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot run \"/no/such/command\""),
        "{out:?}"
    );
    let runs = api.runs("etl");
    assert_eq!(runs.len(), 3);
    assert_eq!((runs[0].exit_code, runs[0].signal), (Some(127), None));
    assert_eq!((runs[1].exit_code, runs[1].signal), (None, Some(15)));
    assert_eq!((runs[2].exit_code, runs[2].signal), (Some(3), None));
    assert!(runs.iter().all(|r| r.status == RunStatus::Failed));

    // Three in a row: the same incident, now critical.
    let failed2 = api.incident("job:etl:failed").unwrap();
    assert_eq!(failed2.id, failed.id, "one incident for the condition");
    assert_eq!(failed2.severity, Severity::Critical);
    assert_eq!(
        failed2.title,
        "job etl failed 3 runs in a row (last: exit code 127)"
    );

    // A success clears it, and it resolves itself after the quiet period.
    assert!(
        job_run(&data, &["--name", "etl", "--", "true"])
            .status
            .success()
    );
    let resolved = api.wait_until("the failure incident to resolve", 10, |a| {
        a.incident("job:etl:failed")
            .filter(|i| i.state == IncidentState::Resolved)
    });
    let history: Vec<&str> = resolved.history.iter().map(|e| e.what.as_str()).collect();
    assert!(
        history[0].starts_with("opened: job etl failed"),
        "{history:?}"
    );
    assert!(
        history.iter().any(|h| h.starts_with("cleared: run ")),
        "{history:?}"
    );
    assert_eq!(history.last().unwrap(), &"resolved: quiet for 1 s");
    let jobs = api.rt.block_on(api.client.jobs()).unwrap();
    let etl = jobs.iter().find(|j| j.name == "etl").unwrap();
    assert_eq!((etl.runs, etl.failures, etl.failure_streak), (4, 3, 0));
    // The failures are a series too (the overview's tile, and export).
    let failures = api.wait_until("ward.jobs.failures at 3", 10, |a| {
        let s = a.rt.block_on(a.client.series("ward.jobs.failures")).ok()?;
        let q = ward_shared::api::QueryRequest {
            series: vec![s.first()?.id],
            start: 0,
            end: i64::MAX / 2,
            step: None,
            agg: ward_shared::api::Aggregation::Last,
        };
        let points = a.rt.block_on(a.client.query(&q)).ok()?;
        points[0].points.last().map(|p| p.1).filter(|v| *v == 3.0)
    });
    assert_eq!(failures, 3.0);
}

#[test]
fn a_run_is_spooled_while_the_agent_is_down_and_delivered_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spool = data.join("spool");

    // No agent at all: the command runs, its report waits in the spool.
    let before = std::time::SystemTime::now();
    let out = job_run(&data, &["--name", "backup", "--", "sh", "-c", "exit 0"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot report to the agent"), "{stderr}");
    assert!(stderr.contains("will be spooled in"), "{stderr}");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1);

    // The agent goes down in the middle of a run: the start got through, the finish is spooled.
    let running = Running::start(&data);
    running.wait_for("api listening");
    let api = Api::new(&data);
    let backup = api.wait_until("the spooled run", 10, |a| {
        a.rt.block_on(a.client.job_runs("backup"))
            .ok()
            .filter(|r| !r.is_empty())
    });
    let started_ms = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        backup[0].started >= started_ms && backup[0].started < started_ms + 5000,
        "the run keeps the time it ran, not the time it was delivered: {backup:?}"
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "delivered files are removed"
    );

    let job = job_command(
        &data,
        &["--name", "long", "--", "sh", "-c", "sleep 2; exit 4"],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    api.wait_until("the run to start", 10, |a| {
        a.rt.block_on(a.client.job_runs("long"))
            .ok()
            .filter(|r| r.first().is_some_and(|r| r.status == RunStatus::Running))
    });
    running.signal("TERM");
    running.wait_for("agent stopped");
    let mut running = running;
    running.child.wait().unwrap();
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "the exit code is the command's");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1);

    let running = Running::start(&data);
    running.wait_for("spooled job reports delivered");
    let long = api.wait_until("the finished run", 10, |a| {
        a.rt.block_on(a.client.job_runs("long"))
            .ok()
            .filter(|r| r.first().is_some_and(|r| r.status != RunStatus::Running))
    });
    assert_eq!(
        long.len(),
        1,
        "one run, started before the outage and finished during it"
    );
    assert_eq!(long[0].status, RunStatus::Failed);
    assert_eq!(long[0].exit_code, Some(4));
    assert!(long[0].duration_s.unwrap() >= 2.0, "{long:?}");
    drop(running);
}

#[test]
fn overruns_and_missed_runs_raise_incidents_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start_with(&data, &quick_resolve());
    running.wait_for("api listening");
    let api = Api::new(&data);

    // A run past its max duration, while it is still running.
    let job = job_command(
        &data,
        &["--name", "slow", "--max-duration", "1s", "--", "sleep", "3"],
    )
    .spawn()
    .unwrap();
    let overdue = api.wait_until("the overrun incident", 10, |a| {
        a.incident("job:slow:overdue")
    });
    // Raised on the first clock check past the limit: a second or two in,
    // more on a loaded machine.
    let ran: u64 = overdue
        .title
        .strip_prefix("job slow still running after ")
        .and_then(|t| t.split(" s (max 1 s), run ").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{}", overdue.title));
    assert!((1..=5).contains(&ran), "{}", overdue.title);
    let runs = api.runs("slow");
    assert_eq!(
        runs[0].status,
        RunStatus::Running,
        "raised while the run still runs"
    );
    assert!(job.wait_with_output().unwrap().status.success());
    api.wait_until("the overrun to clear", 10, |a| {
        a.incident("job:slow:overdue")
            .filter(|i| i.cleared.is_some())
    });

    // A dead man's switch: a job expected every second that stops reporting.
    let mut start = JobEvent::new("heartbeat-job", "r1", JobEventKind::Start);
    start.expect_every_s = Some(1.0);
    api.send(&start).unwrap();
    api.send(&JobEvent::new("heartbeat-job", "r1", JobEventKind::Finish))
        .unwrap();
    let missed = api.wait_until("the missed run", 10, |a| {
        a.incident("job:heartbeat-job:missed")
    });
    assert!(
        missed
            .title
            .starts_with("job heartbeat-job missed its run: none started for "),
        "{}",
        missed.title
    );
    assert!(
        missed.title.ends_with("(expected every 1 s)"),
        "{}",
        missed.title
    );
    api.send(&JobEvent::new("heartbeat-job", "r2", JobEventKind::Start))
        .unwrap();
    let back = api.incident("job:heartbeat-job:missed").unwrap();
    assert!(back.cleared.is_some(), "a start clears it: {back:?}");
    drop(running);
}

#[test]
fn control_charts_catch_a_job_that_suddenly_processes_far_fewer_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start_with(&data, &quick_resolve());
    running.wait_for("api listening");
    let api = Api::new(&data);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let finish = |i: i64, rows: u64, secs: f64| {
        let mut e = JobEvent::new("ingest", &format!("run-{i}"), JobEventKind::Finish);
        e.at = Some(now - (100 - i) * 3_600_000);
        e.duration_s = Some(secs);
        e.records_out = Some(rows);
        e.exit_code = Some(0);
        e
    };
    for i in 0..20 {
        api.send(&finish(
            i,
            1_000_000 + (i as u64 % 5) * 10_000,
            600.0 + (i % 3) as f64 * 10.0,
        ))
        .unwrap();
    }
    assert!(
        api.incidents(false).is_empty(),
        "a steady job raises nothing"
    );
    api.send(&finish(20, 120_000, 605.0)).unwrap();
    let rows = api
        .incident("job:ingest:records")
        .expect("far fewer rows is out of control");
    assert!(
        rows.title
            .starts_with("job ingest processed 120000 (one run beyond 3 sigma), expected "),
        "{}",
        rows.title
    );
    let s = &rows.signals[0];
    assert_eq!(s.observed, 120_000.0);
    assert!(
        s.expected_low.unwrap() > 900_000.0 && s.expected_high.unwrap() < 1_100_000.0,
        "{s:?}"
    );
    assert!(
        s.model.contains("over 13 earlier successful runs"),
        "{}",
        s.model
    );
    assert!(
        api.incident("job:ingest:duration").is_none(),
        "the duration was normal"
    );
    api.send(&finish(21, 1_010_000, 610.0)).unwrap();
    assert!(
        api.incident("job:ingest:records")
            .unwrap()
            .cleared
            .is_some()
    );

    // Bad events are refused with the reason, counted, and change nothing.
    let mut bad = JobEvent::new("", "r", JobEventKind::Start);
    let err = api.send(&bad).unwrap_err().to_string();
    assert!(err.contains("job \"\" is not valid"), "{err}");
    bad.job = "ingest".into();
    bad.run = "run-3".into();
    let err = api.send(&bad).unwrap_err().to_string();
    assert!(
        err.contains("run \"run-3\" of job \"ingest\" has already finished"),
        "{err}"
    );
    bad.run = "x".into();
    bad.max_duration_s = Some(-1.0);
    let err = api.send(&bad).unwrap_err().to_string();
    assert!(err.contains("max_duration_s = -1 is not valid"), "{err}");
    let raw = raw_post(
        &data.with_extension("sock"),
        "/api/v1/jobs/events",
        r#"{"job":"a","run":"b","kind":"stop"}"#,
    );
    assert!(
        raw.contains("unknown variant `stop`, expected one of `start`, `heartbeat`, `finish`"),
        "{raw}"
    );
    let status = api.rt.block_on(api.client.status()).unwrap();
    assert_eq!(status.jobs.events_refused, 4);
    assert_eq!(status.jobs.events_accepted, 22);
    assert_eq!(api.runs("ingest").len(), 22);
    drop(running);
}

#[test]
fn operators_acknowledge_annotate_and_resolve_incidents_and_they_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start(&data);
    running.wait_for("api listening");
    let api = Api::new(&data);
    let mut fail = JobEvent::new("report", "r1", JobEventKind::Finish);
    fail.exit_code = Some(1);
    api.send(&fail).unwrap();
    let id = api.incident("job:report:failed").unwrap().id;
    let c = &api.client;
    let acked = api
        .rt
        .block_on(c.acknowledge(id, Some("alice".into())))
        .unwrap();
    assert_eq!(acked.state, IncidentState::Acknowledged);
    api.rt
        .block_on(c.note(id, "upstream export late; rerun at 09:00", None))
        .unwrap();
    api.rt
        .block_on(c.feedback(id, Feedback::Expected, Some("alice".into())))
        .unwrap();
    let err = api
        .rt
        .block_on(c.note(id, "   ", None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a note must have text"), "{err}");
    let err = api
        .rt
        .block_on(c.acknowledge(999, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no incident 999"), "{err}");

    running.signal("TERM");
    running.wait_for("agent stopped");
    let mut running = running;
    running.child.wait().unwrap();
    let running = Running::start(&data);
    running.wait_for("api listening");
    let kept = api.incident("job:report:failed").unwrap();
    assert_eq!(kept.id, id);
    assert_eq!(kept.state, IncidentState::Acknowledged);
    assert_eq!(kept.notes[0].text, "upstream export late; rerun at 09:00");
    assert_eq!(kept.notes[0].by, "operator");
    assert_eq!(kept.feedback, Some(Feedback::Expected));
    let resolved = api.rt.block_on(c.resolve(id, Some("bob".into()))).unwrap();
    assert_eq!(resolved.state, IncidentState::Resolved);
    let who: Vec<String> = resolved
        .history
        .iter()
        .map(|e| format!("{} {}", e.by, e.what))
        .collect();
    assert_eq!(
        who,
        [
            "ward opened: job report failed (exit code 1)",
            "alice (operator) acknowledged",
            "operator note added",
            "alice (operator) feedback: expected",
            "bob (operator) resolved",
        ]
    );
    let err = api
        .rt
        .block_on(c.acknowledge(id, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is resolved"), "{err}");
    assert!(api.incidents(false).is_empty());
    assert_eq!(api.incidents(true).len(), 1);
    // Once resolved by hand, the same condition opens a new incident.
    let mut again = JobEvent::new("report", "r2", JobEventKind::Finish);
    again.exit_code = Some(1);
    api.send(&again).unwrap();
    assert_ne!(api.incident("job:report:failed").map(|i| i.id), None);
    assert_eq!(api.incidents(false)[0].id, id + 1);
    drop(running);
}

/// A webhook receiver on a real socket: each request's JSON body on a channel.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/ward", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            let _ = tx.send(serde_json::from_slice(&body).unwrap());
        }
    });
    (url, rx)
}

#[test]
fn a_failed_job_is_pushed_to_the_webhook_and_so_is_its_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (url, bodies) = webhook_receiver();
    let running = Running::start_with(
        &data,
        &[
            ("WARD_NOTIFY_WEBHOOK_URL", OsStr::new(&url)),
            ("WARD_INCIDENTS_RESOLVE_AFTER", OsStr::new("1s")),
        ],
    );
    running.wait_for("notifications on");
    running.wait_for("api listening");
    let out = job_run(&data, &["--name", "nightly", "--", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let opened = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(opened["event"], "opened");
    assert_eq!(
        opened["incident"]["title"],
        "job nightly failed (exit code 5)"
    );
    assert_eq!(opened["incident"]["key"], "job:nightly:failed");
    assert!(
        job_run(&data, &["--name", "nightly", "--", "true"])
            .status
            .success()
    );
    let resolved = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(resolved["event"], "resolved");
    assert_eq!(resolved["incident"]["id"], opened["incident"]["id"]);
    let api = Api::new(&data);
    let status = api.rt.block_on(api.client.status()).unwrap();
    assert_eq!(status.notify.unwrap().sent, 2);
}
