//! The `ward-agent` binary, run for real: config checking, the daemon's
//! start, its refusal to share a data directory, and its shutdown on signals.
//!
//! One file of some 870 lines: every test drives the real binary through
//! the helpers below, and a second test binary would link the whole agent
//! again (a minute and more of CI on two cores) to share them.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

mod common;

use common::{Running, agent};
use ward_agent::store::{Aggregation, Query, Store, StoreSettings};
use ward_shared::{Labels, SeriesKey};

fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ward.toml");
    std::fs::write(&file, text).unwrap();
    agent().arg("check-config").arg(&file).output().unwrap()
}

#[test]
fn check_config_accepts_the_defaults_and_names_what_is_wrong() {
    let defaults = agent().arg("default-config").output().unwrap();
    assert!(defaults.status.success());
    let out = check(std::str::from_utf8(&defaults.stdout).unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));

    let out = check("[store]\nflush_interval = \"often\"\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.flush_interval = \"often\" is not valid"),
        "{err}"
    );
    assert!(err.contains("expected a duration"), "{err}");

    let out = check("[agent]\nintreval = \"1s\"\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `intreval`"));

    let out = agent()
        .arg("check-config")
        .arg("/nonexistent/ward.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ward.toml"));
}

#[test]
fn the_daemon_stores_its_own_health_refuses_a_second_agent_and_stops_on_signals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Running::start(&data);
    first.wait_for("agent started");

    // A second agent on the same directory is refused, naming the holder.
    let out = agent()
        .args(["run", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("is in use by pid {}", first.child.id())),
        "{err}"
    );
    assert!(err.contains(&data.display().to_string()), "{err}");

    std::thread::sleep(Duration::from_millis(1500));
    first.signal("TERM");
    first.wait_for("store closed");
    let mut first = first;
    assert!(first.child.wait().unwrap().success());

    // Again, stopped with SIGINT this time; the data adds up across both runs.
    let second = Running::start(&data);
    second.wait_for("agent started");
    std::thread::sleep(Duration::from_millis(1000));
    second.signal("INT");
    second.wait_for("agent stopped");
    let mut second = second;
    assert!(second.child.wait().unwrap().success());

    let store = Store::open(&data, StoreSettings::default()).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let key = SeriesKey::new(
        "ward.agent.memory.rss",
        Labels::new([("host.name", host.trim())]).unwrap(),
    )
    .unwrap();
    let id = store
        .lookup(&key)
        .expect("the agent registered its RSS series");
    let points = store
        .query(&Query {
            series: id,
            start: 0,
            end: i64::MAX,
            step: None,
            agg: Aggregation::Last,
        })
        .unwrap();
    assert!(
        points.len() >= 15,
        "{} samples over ~2.5 s at 100 ms",
        points.len()
    );
    assert!(
        points.iter().all(|p| p.value > 1e6 && p.value < 1e9),
        "an RSS in bytes"
    );

    // Every host collector wrote its series, and each collector its health.
    let names: std::collections::BTreeSet<String> =
        store.series().map(|(_, d)| d.key.name.clone()).collect();
    for name in [
        "system.cpu.time",
        "system.cpu.utilization",
        "system.cpu.load_average.1m",
        "system.memory.usage",
        "system.network.io",
        "system.filesystem.usage",
        "system.process.count",
        "ward.collector.duration",
    ] {
        assert!(names.contains(name), "no {name} in {names:?}");
    }
    let collectors: std::collections::BTreeSet<String> = store
        .series()
        .filter(|(_, d)| d.key.name == "ward.collector.duration")
        .filter_map(|(_, d)| d.key.labels.get("collector").map(String::from))
        .collect();
    assert_eq!(
        collectors.into_iter().collect::<Vec<_>>(),
        [
            "agent",
            "cpu",
            "disk",
            "filesystem",
            "memory",
            "network",
            "process",
            "statsd",
        ]
    );
}

#[test]
fn without_a_gpu_driver_the_agent_says_so_once_and_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Running::start(&dir.path().join("data"));
    agent.wait_for("agent started");
    let line = agent.wait_for("collector unavailable on this host");
    assert!(
        line.contains("collector=\"gpu\"") || line.contains("collector=gpu"),
        "{line}"
    );
    assert!(line.contains("NVML"), "{line}");
    agent.signal("TERM");
    agent.wait_for("agent stopped");
    let mut agent = agent;
    assert!(agent.child.wait().unwrap().success());
}

#[test]
fn status_tells_how_each_collector_is_doing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start(&data);
    running.wait_for("agent started");
    std::thread::sleep(Duration::from_millis(500));
    let out = agent()
        .args(["status", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(", running, "));

    std::thread::sleep(Duration::from_millis(1000));
    running.signal("TERM");
    running.wait_for("agent stopped");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());

    // The last status, written after the collectors stopped.
    let out = agent_status_json(&data);
    assert_eq!(out.state, "stopped");
    assert!(
        out.gpu_unavailable
            .as_deref()
            .is_some_and(|w| w.contains("NVML")),
        "{:?}",
        out.gpu_unavailable
    );
    let cpu = out.collectors.iter().find(|c| c.name == "cpu").unwrap();
    assert!(cpu.runs >= 5, "cpu ran {} times", cpu.runs);
    assert_eq!(cpu.errors, 0);
    let gpu = out.collectors.iter().find(|c| c.name == "gpu").unwrap();
    assert!(gpu.state.starts_with("unsupported: NVML"), "{}", gpu.state);
    assert!(out.store.samples_accepted > 100);
    // Every host series has a detector; the agent's own are left out.
    let detect = out.detect.expect("detection is on by default");
    assert!(detect.series > 20, "{detect:?}");
    assert!(detect.series < out.store.series, "{detect:?}");
    assert_eq!(detect.dropped_batches, 0);
    // What the store's heads and the detectors hold, for whoever wonders
    // where the agent's memory goes.
    assert!(out.store.memory_bytes > 0, "{:?}", out.store);
    assert!(detect.memory_bytes > 0, "{detect:?}");

    let text = agent()
        .args(["status", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        text.status.code(),
        Some(1),
        "a stopped agent is not running"
    );
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("gpus: unavailable (NVML"), "{stdout}");
    assert!(stdout.contains(" bytes on disk, "), "{stdout}");
    assert!(stdout.contains(" MB in memory, "), "{stdout}");
    assert!(String::from_utf8_lossy(&text.stderr).contains("no agent is running"));
}

fn agent_status_json(data: &Path) -> ward_shared::status::AgentStatus {
    let out = agent()
        .args(["status", "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_api_answers_on_its_socket_through_the_typed_client() {
    use ward_shared::api::{Aggregation, QueryRequest};
    use ward_shared::client::{Client, ClientError, Endpoint};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start(&data);
    running.wait_for("api listening");
    std::thread::sleep(Duration::from_millis(1200));
    let socket = data.with_extension("sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660, "the socket is for its owner and group");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Client::new(Endpoint::Unix(socket.clone()));
        assert_eq!(client.health().await.unwrap().status, "ok");
        let load = client.series("system.cpu.load_average.1m").await.unwrap();
        assert_eq!(load.len(), 1, "{load:?}");
        let now = i64::MAX / 2;
        let answer = client
            .query(&QueryRequest { series: vec![load[0].id], start: 0, end: now, step: None, agg: Aggregation::Last })
            .await
            .unwrap();
        assert!(answer[0].points.len() >= 5, "{answer:?}");
        let status = client.status().await.unwrap();
        assert_eq!(status.state, "running");
        assert!(status.collectors.iter().any(|c| c.name == "cpu" && c.runs > 0));

        let err = client
            .query(&QueryRequest { series: vec![load[0].id], start: 10, end: 5, step: None, agg: Aggregation::Last })
            .await
            .unwrap_err();
        assert!(matches!(&err, ClientError::Refused { status: 400, message } if message.contains("end 5 is before start 10")), "{err}");
        let err = client
            .query(&QueryRequest { series: vec![load[0].id], start: 0, end: now, step: None, agg: Aggregation::Rate })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("needs a counter"), "{err}");
    });

    running.signal("TERM");
    running.wait_for("store closed");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());
    assert!(!socket.exists(), "the socket is removed on shutdown");
    rt.block_on(async {
        let err = Client::new(Endpoint::Unix(socket.clone()))
            .health()
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot reach the agent at"),
            "{err}"
        );
    });
}

#[test]
fn detect_scores_a_csv_offline_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let mut csv = String::from("timestamp,value\r\n");
    for i in 0..1000 {
        let v = (i as f64 / 10.0).sin() + if i == 900 { 25.0 } else { 0.0 };
        csv.push_str(&format!(
            "2014-04-{:02} {:02}:{:02}:00,{v}\r\n",
            1 + i / 1440,
            (i / 60) % 24,
            i % 60
        ));
    }
    std::fs::write(&input, &csv).unwrap();
    let out = agent()
        .arg("detect")
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    let scores: Vec<f64> = lines
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(scores.len(), 1000);
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    let top = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert!(
        (900..905).contains(&top),
        "the spike at row 900 scores highest, not row {top}"
    );

    std::fs::write(
        &input,
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:01:00,n/a\n",
    )
    .unwrap();
    let out = agent()
        .arg("detect")
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: the value is not a number"), "{err}");
}

#[test]
fn with_tls_the_api_listens_beyond_loopback_and_clients_verify_it() {
    use std::os::unix::fs::PermissionsExt;
    use ward_shared::client::{Client, Endpoint};

    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::test_certificates(dir.path());
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "operator op-token-0123456789abc\n").unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Without TLS, any address but loopback is refused, and the error says why.
    let out = check("[api]\nlisten = \"0.0.0.0:7070\"\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("any other address needs TLS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&format!("[api]\ntls_cert = \"{}\"\n", cert.display()));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("both api.tls_cert and api.tls_key, or neither")
    );
    let out = check(&format!(
        "[api]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        key.display(),
        cert.display()
    ));
    assert_eq!(out.status.code(), Some(2), "the two swapped are refused");

    let data = dir.path().join("data");
    let running = Running::start_with(
        &data,
        &[
            ("WARD_API_LISTEN", "0.0.0.0:0".as_ref()),
            ("WARD_API_TOKENS_FILE", tokens.as_os_str()),
            ("WARD_API_TLS_CERT", cert.as_os_str()),
            ("WARD_API_TLS_KEY", key.as_os_str()),
        ],
    );
    let line = running.wait_for("api listening on tcp");
    assert!(line.contains("tls=true"), "{line}");
    let port = line
        .split("addr=0.0.0.0:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let token = Some("op-token-0123456789abc".to_string());
        let https = Client::new(Endpoint::parse(&format!("https://localhost:{port}")))
            .with_token(token.clone());
        // The system's roots do not know a self-signed certificate.
        let err = https.clone().health().await.unwrap_err().to_string();
        assert!(err.contains("TLS: invalid peer certificate"), "{err}");
        let ok = https.with_ca_file(Some(&ca)).health().await.unwrap();
        assert_eq!(ok.status, "ok");
        // Plain HTTP to a TLS port gets nowhere.
        let plain = Client::new(Endpoint::Tcp(format!("127.0.0.1:{port}"))).with_token(token);
        assert!(plain.health().await.is_err());
    });
    running.signal("TERM");
    running.wait_for("agent stopped");
}

/// An agent with a tokens file (`text`, mode 600) and TCP on a loopback
/// port; the agent and the address it listens on.
fn with_tokens_on_tcp(dir: &Path, text: &str) -> (Running, String) {
    use std::os::unix::fs::PermissionsExt;
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, text).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let running = Running::start_with(
        &dir.join("data"),
        &[
            ("WARD_API_LISTEN", "127.0.0.1:0".as_ref()),
            ("WARD_API_TOKENS_FILE", tokens.as_os_str()),
        ],
    );
    let line = running.wait_for("api listening on tcp");
    let addr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    (running, addr.to_string())
}

#[test]
fn over_tcp_the_api_needs_a_token_and_the_socket_does_not() {
    use ward_shared::client::{Client, ClientError, Endpoint};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (running, addr) = with_tokens_on_tcp(
        dir.path(),
        "# who may read\nviewer read-only-token-0123456789\n",
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = Client::new(Endpoint::Tcp(addr.clone()));
        let err = tcp.health().await.unwrap_err();
        assert!(matches!(&err, ClientError::Refused { status: 401, message } if message.contains("Authorization: Bearer")), "{err}");
        let err = tcp.clone().with_token(Some("not-a-token-not-a-token".into())).health().await.unwrap_err();
        assert!(err.to_string().contains("not one this agent knows"), "{err}");
        let ok = tcp.with_token(Some("read-only-token-0123456789".into())).health().await.unwrap();
        assert_eq!(ok.status, "ok");
        let socket = Client::new(Endpoint::Unix(data.with_extension("sock")));
        assert_eq!(socket.health().await.unwrap().status, "ok", "the socket's permissions are its authentication");
    });
    running.signal("TERM");
    running.wait_for("agent stopped");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());

    // A tokens file that others can read is refused before the agent starts.
    use std::os::unix::fs::PermissionsExt;
    let tokens = dir.path().join("tokens");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        format!("[api]\ntokens_file = {:?}\n", tokens.display().to_string()),
    )
    .unwrap();
    let out = agent().arg("check-config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api.tokens_file") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn a_real_statsd_client_reports_airflow_dags_as_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start(&data);
    let line = running.wait_for("statsd listening");
    let addr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    // What Airflow sends, through the statsd package from PyPI (.ci/run installs it).
    let script = format!(
        "import statsd\n\
         c = statsd.StatsClient('{host}', {port}, prefix='airflow')\n\
         c.timing('dagrun.duration.success.etl_daily', 4210)\n\
         c.timing('dagrun.duration.success.etl_daily', 3790)\n\
         c.timing('dagrun.duration.failed.etl_hourly', 1500)\n\
         c.incr('ti.finish.etl_daily.load.success')\n\
         c.incr('ti.finish.etl_daily.load.failed')\n\
         c.gauge('pool.open_slots.default_pool', 12)\n\
         c.incr('scheduler_heartbeat')\n\
         s = c.pipeline()\n\
         s.incr('ti.finish.etl_daily.load.success')\n\
         s.send()\n"
    );
    let status = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "python3 with the statsd package (pip install statsd)"
    );
    // Garbage on the same port is counted, not fatal.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"not a statsd line\n:1|c", &addr).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // Each DAG run is a job run, with no setup: the DAG is the job.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = ward_shared::client::Client::new(ward_shared::client::Endpoint::Unix(
        data.with_extension("sock"),
    ));
    let daily = rt.block_on(client.job_runs("etl_daily")).unwrap();
    let mut took: Vec<f64> = daily.iter().map(|r| r.duration_s.unwrap()).collect();
    took.sort_by(f64::total_cmp);
    assert_eq!(took, [3.79, 4.21]);
    assert!(
        daily
            .iter()
            .all(|r| r.status == ward_shared::jobs::RunStatus::Success)
    );
    let incidents = rt.block_on(client.incidents(false)).unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(
        incidents[0].title,
        "job etl_hourly failed (reported failed)"
    );
    running.signal("TERM");
    running.wait_for("store closed");
    let mut running = running;
    assert!(running.child.wait().unwrap().success());

    let store = Store::open(&data, StoreSettings::default()).unwrap();
    let last = |text: &str| {
        let (id, _) = store
            .series()
            .find(|(_, d)| d.key.to_string() == text)
            .unwrap_or_else(|| panic!("no series {text}"));
        store
            .query(&Query {
                series: id,
                start: 0,
                end: i64::MAX,
                step: None,
                agg: Aggregation::Last,
            })
            .unwrap()
            .last()
            .unwrap()
            .value
    };
    assert_eq!(
        last(r#"airflow.dagrun.duration{dag_id="etl_daily",stat="count",state="success"}"#),
        2.0
    );
    // Count and sum are cumulative, whichever ticks the two timings fell in.
    assert_eq!(
        last(r#"airflow.dagrun.duration{dag_id="etl_daily",stat="sum",state="success"}"#),
        8000.0
    );
    assert_eq!(
        last(r#"airflow.ti.finish{dag_id="etl_daily",state="success",task_id="load"}"#),
        2.0
    );
    assert_eq!(
        last(r#"airflow.ti.finish{dag_id="etl_daily",state="failed",task_id="load"}"#),
        1.0
    );
    assert_eq!(
        last(r#"airflow.pool.open_slots{pool="default_pool"}"#),
        12.0
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        last(&format!(
            r#"ward.statsd.malformed{{host.name="{}"}}"#,
            host_name.trim()
        )),
        2.0
    );
}

#[test]
fn the_configuration_doc_shows_the_default_config_as_the_code_has_it() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let defaults = ward_agent::config::default_toml();
    assert!(
        readme.contains(&format!("```toml\n{defaults}```")),
        "docs/configuration.md's config block differs from `ward-agent default-config`:\n{defaults}"
    );
}

#[test]
fn the_configuration_doc_explains_every_config_key() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let mut section = String::new();
    let mut missing = Vec::new();
    for line in ward_agent::config::default_toml().lines() {
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            let name = format!("`{section}.{key}`");
            if !table
                .iter()
                .any(|row| row.split(" | ").next().is_some_and(|c| c.contains(&name)))
            {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md's keys table has no row for {missing:?}"
    );
}

#[test]
fn the_packaged_config_shows_every_default_as_the_code_has_it() {
    // /etc/ward/ward.toml in the Debian package: every key commented out
    // with its default ("#key = value", "#[section]"), prose as "# ...".
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/debian/ward.toml");
    let packaged = std::fs::read_to_string(path).unwrap();
    let shown: Vec<&str> = packaged
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '#']))
        .collect();
    let defaults = ward_agent::config::default_toml();
    let expected: Vec<&str> = defaults.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        shown, expected,
        "packaging/debian/ward.toml's commented defaults differ from `ward-agent default-config`"
    );
    // As shipped (all commented) it is a valid config: the defaults.
    let out = agent().arg("check-config").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One request over HTTP/1.1 on a fresh connection; the status code.
fn http_status(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: ward\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn every_route_answers_each_role_as_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (running, addr) = with_tokens_on_tcp(
        dir.path(),
        "viewer viewer-token-0123456789\noperator operator-token-0123456789\nadmin admin-token-0123456789\n",
    );
    // Something to act on: a failed job opens incident 1 (over the socket,
    // where no token is needed).
    let out = agent()
        .args(["job", "run", "--data-dir"])
        .arg(&data)
        .arg("--agent")
        .arg(data.with_extension("sock"))
        .args(["--name", "probe", "--", "false"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let event = r#"{"job":"probe","run":"r9","kind":"start"}"#;
    // Every route, and whether it changes something (operator) or reads (viewer).
    let routes: [(&str, &str, &str, bool); 15] = [
        ("GET", "/api/v1/health", "", false),
        ("GET", "/api/v1/status", "", false),
        ("GET", "/api/v1/series?match=cpu", "", false),
        (
            "POST",
            "/api/v1/query",
            r#"{"series":[],"start":0,"end":1,"agg":"last"}"#,
            false,
        ),
        ("GET", "/api/v1/processes", "", false),
        ("GET", "/api/v1/gpus", "", false),
        ("GET", "/api/v1/incidents?state=all", "", false),
        ("GET", "/api/v1/incidents/1", "", false),
        ("GET", "/api/v1/jobs", "", false),
        ("GET", "/api/v1/jobs/probe/runs", "", false),
        ("POST", "/api/v1/jobs/events", event, true),
        (
            "POST",
            "/api/v1/incidents/1/notes",
            r#"{"text":"seen"}"#,
            true,
        ),
        (
            "POST",
            "/api/v1/incidents/1/feedback",
            r#"{"feedback":"confirmed"}"#,
            true,
        ),
        ("POST", "/api/v1/incidents/1/ack", "{}", true),
        ("POST", "/api/v1/incidents/1/resolve", "{}", true),
    ];
    for (method, path, body, changes) in routes {
        let status = |token: Option<&str>| http_status(&addr, method, path, token, body);
        assert_eq!(status(None), 401, "{method} {path} without a token");
        assert_eq!(
            status(Some("guessed-token-0123456789")),
            401,
            "{method} {path}, unknown token"
        );
        let viewer = status(Some("viewer-token-0123456789"));
        if changes {
            assert_eq!(viewer, 403, "{method} {path} as viewer");
        } else {
            assert_eq!(viewer, 200, "{method} {path} as viewer");
        }
        for role in ["operator", "admin"] {
            let token = format!("{role}-token-0123456789");
            let got = status(Some(&token));
            // The second resolve finds the incident resolved (409): allowed, just late.
            assert!(
                got == 200 || (path.ends_with("resolve") || path.ends_with("ack")) && got == 409,
                "{method} {path} as {role}: {got}"
            );
        }
    }
    // On the socket, whose permissions already say who may connect, no token acts as operator.
    let api = ward_shared::client::Client::new(ward_shared::client::Endpoint::Unix(
        data.with_extension("sock"),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let note = rt.block_on(api.note(1, "from the socket", None)).unwrap();
    assert_eq!(note.notes.last().unwrap().by, "operator");
    running.signal("TERM");
    running.wait_for("agent stopped");
}

#[test]
fn over_its_memory_budget_the_agent_sheds_optional_work_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = Running::start_with(&data, &[("WARD_AGENT_BUDGET_RSS", "1MiB".as_ref())]);
    let line = running.wait_for("over 90% of the agent's resource budget");
    assert!(line.contains("detector training"), "{line}");
    let line = running.wait_for("over 90% of the agent's resource budget");
    assert!(line.contains("process snapshots"), "{line}");
    let client = ward_shared::client::Client::new(ward_shared::client::Endpoint::Unix(
        data.with_extension("sock"),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(client.status()).unwrap();
    let budget = status.budget.unwrap();
    assert_eq!(budget.shedding, ["detector training", "process snapshots"]);
    assert_eq!(budget.max_rss_bytes, 1 << 20);
    assert!(budget.rss_bytes > budget.max_rss_bytes);
    // `ward-agent status` says so too, once the status file is rewritten (every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let out = agent()
            .args(["status", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("shedding detector training, process snapshots")
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    running.signal("TERM");
    running.wait_for("agent stopped");
    assert!(
        text.contains("shedding detector training, process snapshots"),
        "{text}"
    );
}
