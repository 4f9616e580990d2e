//! Drawing the frame: the tabs, the view shown (each view draws itself,
//! see `crate::views`), the status line and the help. Reads the state,
//! changes nothing.
//!
//! Meaning never rests on colour alone: states carry words and symbols
//! (`✓ running`, `✗ unsupported`, `⚠ stale`), so the screen reads the same
//! on a monochrome terminal. Usable from 80x24 up.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};
use ward_shared::incident::{Incident, Severity};

use crate::app::{App, View};
use crate::views::overview::OverviewScreen;

pub fn draw(f: &mut Frame, app: &App) {
    let [top, main, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_tabs(f, app, top);
    let status = app.status.as_ref();
    match app.view {
        View::Overview => crate::views::overview::draw(
            f,
            main,
            &OverviewScreen {
                overview: &app.overview,
                status,
                incidents: &app.incidents,
                jobs: app.jobs.jobs.len(),
                gpus: &app.gpus,
                processes: &app.processes,
            },
        ),
        View::Metrics => app.metrics.draw(f, main),
        View::Processes => app.processes.draw(f, main),
        View::Gpus => crate::views::gpus::draw(&app.gpus, f, main),
        View::Incidents => app.incidents.draw(f, main, status),
        View::Jobs => app.jobs.draw(f, main, status),
        View::Fleet => app.fleet.draw(f, main),
    }
    draw_status_bar(f, app, bottom);
    if app.help {
        draw_help(f, f.area());
    }
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let tab = |n: &str, name: &str, on: bool| {
        let style = if on {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        Span::styled(format!(" {n} {name} "), style)
    };
    let host = app.status.as_ref().map_or("…", |s| s.host.as_str());
    let mut spans = vec![Span::styled(
        " ward ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (i, v) in View::ALL.iter().enumerate() {
        spans.push(tab(&(i + 1).to_string(), v.title(), app.view == *v));
    }
    // The host always; the endpoint as much of its end as fits.
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let room = usize::from(area.width).saturating_sub(used + host.chars().count() + 5);
    let endpoint: Vec<char> = app.endpoint.chars().collect();
    let endpoint = if endpoint.len() <= room {
        app.endpoint.clone()
    } else {
        let tail: String = endpoint[endpoint.len() - room.saturating_sub(1)..]
            .iter()
            .collect();
        format!("…{tail}")
    };
    spans.push(Span::raw(format!("  {host} · {endpoint}")));
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_status_bar(f: &mut Frame, app: &App, area: Rect) {
    if let Some(text) = &app.incidents.note {
        let id = app.incidents.selected_incident().map_or(0, |i| i.id);
        f.render_widget(
            Paragraph::new(format!(
                " note on incident {id}: {text}▏  Enter add · Esc cancel"
            )),
            area,
        );
        return;
    }
    if let Some(text) = &app.command {
        f.render_widget(
            Paragraph::new(format!(" :{text}▏  Enter run · Esc cancel")),
            area,
        );
        return;
    }
    if let Some(m) = &app.message {
        f.render_widget(Paragraph::new(format!(" ⚠ {m}")), area);
        return;
    }
    let filter = if app.view == View::Processes && app.processes.filtering {
        Some(&app.processes.filter)
    } else {
        app.metrics.filtering.then_some(&app.metrics.filter)
    };
    let line = match (&app.stale, filter) {
        (_, Some(text)) => Line::from(format!(" filter: {text}▏  Enter apply · Esc cancel")),
        (Some(e), _) => Line::from(Span::styled(
            format!(" ⚠ stale: {e} (showing the last data)"),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
        (None, None) => {
            let active: Vec<&Incident> =
                app.incidents.all.iter().filter(|i| i.is_active()).collect();
            let critical = active
                .iter()
                .filter(|i| i.severity == Severity::Critical)
                .count();
            let incidents = match (active.len(), critical) {
                (0, _) => "incidents: none active".to_string(),
                (n, 0) => format!("incidents: {n} active"),
                (n, c) => format!("incidents: {n} active, ‼ {c} critical"),
            };
            Line::from(format!(" ? help · Tab/1-7 views · q quit · {incidents}"))
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

const HELP: [(&str, &str); 20] = [
    ("?", "this help (any key closes it)"),
    ("q, Ctrl-C", "quit"),
    (":", "command: a view's name (:gpus, :inc), :q"),
    (
        "Tab, 1-6",
        "overview, metrics, processes, GPUs, incidents, jobs",
    ),
    ("/", "filter series or processes (Enter, Esc)"),
    ("j/k, ↓/↑", "next / previous row (mouse: wheel, click)"),
    ("PgDn/PgUp", "ten rows down / up"),
    ("Enter", "chart the series; fleet: watch the agent"),
    ("+ / -", "zoom in / out: 5m 15m 1h 6h 1d 3d 7d"),
    ("h/l, ←/→", "pan back / forward in history; 0, End: live"),
    ("s", "processes: sort by CPU / by memory"),
    ("a / r", "incident: acknowledge / resolve"),
    ("n", "incident: add a note (Enter adds, Esc drops)"),
    (
        "c / x / e",
        "incident: confirmed / false positive / expected",
    ),
    ("v", "incidents: show resolved ones too"),
    (
        "‼ ! ·",
        "critical, warning, info; ● open ◐ acked ✓ resolved",
    ),
    ("⚠ stale", "the agent did not answer; last data shown"),
    ("✓ ✗ ⚠ ▶", "ok, unavailable or failed, problem, running"),
    ("⚑", "GPU clocks held down (throttle reasons)"),
    ("● ⏸", "chart live, chart in history"),
];

fn draw_help(f: &mut Frame, area: Rect) {
    let w = 72.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let rows: Vec<Row> = HELP.iter().map(|(k, v)| Row::new(vec![*k, *v])).collect();
    f.render_widget(Clear, popup);
    f.render_widget(
        Table::new(rows, [Constraint::Length(12), Constraint::Min(10)])
            .block(Block::new().borders(Borders::ALL).title("Keys")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Overview, Trend, Update};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ward_shared::MetricKind;
    use ward_shared::api::{ProcessInfo, ProcessSnapshot, SeriesInfo};
    use ward_shared::status::{AgentStatus, CollectorHealth, StoreHealth};

    fn render(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn trend(values: &[f64]) -> Trend {
        Trend {
            points: values
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as i64 * 5000, v))
                .collect(),
        }
    }

    fn fixed_app() -> App {
        let mut app = App::new("/run/ward/api.sock");
        let collector = |name: &str, state: &str, errors: u64| CollectorHealth {
            name: name.into(),
            interval_ms: 1000,
            state: state.into(),
            runs: 60,
            errors,
            last_error: None,
            last_duration_us: 120,
            missed_ticks: 0,
            dropped_batches: 0,
        };
        app.apply(Update::Status(Box::new(AgentStatus {
            host: "db-7".into(),
            version: "0.1.0".into(),
            pid: 42,
            started: 0,
            updated: 0,
            state: "running".into(),
            collectors: vec![
                collector("cpu", "running", 0),
                collector("disk", "running", 3),
                collector("gpu", "unsupported: NVML could not be loaded", 0),
            ],
            gpu_unavailable: Some("NVML could not be loaded".into()),
            gpus: 0,
            jobs: Default::default(),
            budget: None,
            notify: None,
            statsd: None,
            exporter: Some(ward_shared::status::ExporterHealth {
                protocol: "grpc".into(),
                lag_seconds: 312.0,
                retrying: true,
                ..Default::default()
            }),
            detect: Some(ward_shared::status::DetectHealth {
                series: 142,
                dropped_batches: 0,
                anomaly_rate: 0.021,
                ..Default::default()
            }),
            store: StoreHealth::default(),
        })));
        app.apply(Update::Overview(Overview {
            cpu_busy: trend(&[0.1, 0.2, 0.35, 0.3]),
            memory_used: trend(&[0.41, 0.42]),
            network_rx: trend(&[1200.0, 5_300_000.0]),
            network_tx: trend(&[800.0, 900.0]),
            disk_io: trend(&[0.0, 2_048_000.0]),
            load: trend(&[1.5, 1.75]),
            gpu_busy: Trend::default(),
            anomaly: trend(&[0.0, 0.01, 0.021]),
            jobs_running: trend(&[0.0, 1.0, 2.0, 1.0]),
            incidents_active: trend(&[0.0, 0.0, 1.0, 2.0]),
        }));
        app.apply(Update::Processes(ProcessSnapshot {
            ts: 0,
            by_cpu: vec![ProcessInfo {
                pid: 311,
                name: "postgres".into(),
                user: "postgres".into(),
                command: "postgres: checkpointer".into(),
                cpu: 0.873,
                memory_bytes: 512 << 20,
            }],
            by_memory: vec![],
        }));
        app.apply(Update::Gpus(ward_shared::api::GpuState {
            unavailable: Some("NVML could not be loaded".into()),
            ..Default::default()
        }));
        app
    }

    /// The fixed app with a day of incidents and jobs, at 2026-11-22 14:50Z.
    fn with_incidents() -> App {
        use ward_shared::incident::*;
        use ward_shared::jobs::*;
        let mut app = fixed_app();
        let t = |h: i64, m: i64| 1_795_305_600_000 + (h * 60 + m) * 60_000;
        if let Some(s) = app.status.as_mut() {
            s.updated = t(14, 50);
        }
        let event = |at, by: &str, what: &str| IncidentEvent {
            at,
            by: by.into(),
            what: what.into(),
        };
        app.apply(Update::Incidents(vec![
            Incident {
                id: 12,
                key: "job:etl:failed".into(),
                title: "job etl failed 3 runs in a row (last: exit code 2)".into(),
                severity: Severity::Critical,
                state: IncidentState::Acknowledged,
                source: IncidentSource::Job,
                opened: t(14, 2),
                updated: t(14, 40),
                peak: t(14, 40),
                cleared: None,
                resolved: None,
                signals: vec![Signal {
                    what: "job etl failures in a row".into(),
                    observed: 3.0,
                    expected_low: Some(0.0),
                    expected_high: Some(0.0),
                    unit: "{run}".into(),
                    contribution: 1.0,
                    model: "rule: failure; critical at 3 in a row".into(),
                }],
                context: IncidentContext { jobs: vec!["etl run 1795311240000-311".into()], ..Default::default() },
                notes: vec![Note { at: t(14, 35), by: "alice (operator)".into(), text: "upstream export is late".into() }],
                feedback: None,
                history: vec![
                    event(t(14, 2), "ward", "opened: job etl failed (exit code 2)"),
                    event(t(14, 35), "alice (operator)", "acknowledged"),
                    event(t(14, 40), "ward", "severity raised to critical"),
                ],
            },
            Incident {
                title: "job ingest processed 120000 (one run beyond 3 sigma), expected 978342 to 1061658 from 13 runs".into(),
                opened: t(13, 15),
                updated: t(13, 15),
                peak: t(13, 15),
                ..ward_shared::fixtures::incident(11, "job:ingest:records")
            },
        ]));
        let run = |run: &str, started, secs: Option<f64>, status, exit| JobRun {
            job: "etl".into(),
            run: run.into(),
            status,
            started,
            ended: secs.map(|s| started + (s * 1000.0) as i64),
            last_heartbeat: started,
            duration_s: secs,
            exit_code: exit,
            signal: None,
            cpu_seconds: secs.map(|s| s * 0.8),
            peak_rss_bytes: Some(734 << 20),
            gpu_memory_bytes: None,
            records_in: None,
            records_out: secs.map(|_| 1_000_000),
            bytes_in: None,
            bytes_out: None,
        };
        let summary = |name: &str, runs, failures, streak, running, problems: &[&str]| JobSummary {
            name: name.into(),
            expect_every_s: Some(3600.0),
            max_duration_s: None,
            runs,
            failures,
            failure_streak: streak,
            running,
            last_start: Some(t(14, 40)),
            last_run: None,
            mean_duration_s: Some(754.0),
            problems: problems.iter().map(|p| p.to_string()).collect(),
        };
        app.apply(Update::Jobs(vec![
            summary("etl", 40, 3, 3, 0, &["job:etl:failed"]),
            summary("ingest", 22, 0, 0, 0, &["job:ingest:records"]),
            summary("report", 12, 1, 0, 1, &[]),
        ]));
        app.apply(Update::JobRuns {
            job: "etl".into(),
            runs: vec![
                run("r4", t(14, 45), None, RunStatus::Running, None),
                run("r3", t(14, 40), Some(12.5), RunStatus::Failed, Some(2)),
                run("r2", t(13, 40), Some(731.2), RunStatus::Success, Some(0)),
            ],
        });
        app
    }

    #[test]
    fn overview_with_incidents_at_80x24() {
        insta::assert_snapshot!(render(&with_incidents(), 80, 24));
    }

    #[test]
    fn incidents_list_and_detail_at_120x30() {
        let mut app = with_incidents();
        app.view = View::Incidents;
        insta::assert_snapshot!(render(&app, 120, 30));
    }

    #[test]
    fn an_anomaly_incident_charts_its_leading_series_against_the_band() {
        use ward_shared::incident::*;
        let mut app = with_incidents();
        let t = |m: i64| 1_795_305_600_000 + (14 * 60 + m) * 60_000;
        let key = r#"system.disk.io{direction="write",system.device="nvme0n1"}"#;
        let mut incidents = app.incidents.all.clone();
        incidents.insert(
            0,
            Incident {
                id: 13,
                key: "anomaly:db-7".into(),
                title: "disk writes on nvme0n1 with iowait and 1 more unusual on db-7, since 14:32 (3 series)".into(),
                severity: Severity::Warning,
                state: IncidentState::Open,
                source: IncidentSource::Anomaly,
                opened: t(32),
                updated: t(33),
                peak: t(33),
                cleared: None,
                resolved: None,
                signals: vec![Signal {
                    what: key.into(),
                    observed: 84_000_000.0,
                    expected_low: Some(0.0),
                    expected_high: Some(2_000_000.0),
                    unit: "By/s".into(),
                    contribution: 0.61,
                    model: "k-means (k=2) on shape and level, score 0.97; 18 models kept, the newest trained at 2026-11-22 14:27:00Z (row 5400) on the 1440 samples before it (model format 1)".into(),
                }],
                context: IncidentContext {
                    processes: vec!["postgres (pid 311, 87% CPU)".into()],
                    ..Default::default()
                },
                notes: Vec::new(),
                feedback: None,
                history: vec![IncidentEvent {
                    at: t(32),
                    by: "ward".into(),
                    what: "opened".into(),
                }],
            },
        );
        app.apply(Update::Incidents(incidents));
        app.incidents.selected = 0;
        app.view = View::Incidents;
        let points: Vec<(i64, f64)> = (0..100)
            .map(|i| {
                let ts = t(17) + i * 12_000;
                (
                    ts,
                    if (75..82).contains(&i) {
                        84e6
                    } else {
                        1e6 + (i % 5) as f64 * 2e5
                    },
                )
            })
            .collect();
        app.apply(Update::IncidentChart {
            incident: 13,
            key: key.into(),
            start: t(17),
            end: t(37),
            points,
        });
        insta::assert_snapshot!(render(&app, 120, 34));
    }

    #[test]
    fn the_fleet_worst_first_at_100x12() {
        use crate::fleet::Member;
        use crate::message::HostRow;
        let mut app = fixed_app();
        app.view = View::Fleet;
        let member = |name: &str| Member {
            name: name.into(),
            address: format!("{name}:7070"),
            token_env: None,
            ca_file: None,
        };
        app.fleet.members = vec![member("db-7"), member("gpu-3"), member("web-1")];
        let row = |name: &str,
                   down: Option<&str>,
                   incidents,
                   critical,
                   rate: f64,
                   worst: Option<&str>| HostRow {
            name: name.into(),
            address: format!("{name}:7070"),
            unreachable: down.map(String::from),
            host: name.into(),
            incidents,
            critical,
            anomaly_rate: down.is_none().then_some(rate),
            worst: worst.map(String::from),
            jobs: 4,
        };
        app.apply(Update::Fleet(vec![
            row(
                "gpu-3",
                Some("cannot reach the agent at gpu-3:7070: connection refused"),
                0,
                0,
                0.0,
                None,
            ),
            row(
                "db-7",
                None,
                2,
                1,
                0.031,
                Some("job etl failed 3 runs in a row (last: exit code 2)"),
            ),
            row("web-1", None, 0, 0, 0.004, None),
        ]));
        insta::assert_snapshot!(render(&app, 100, 12));
    }

    #[test]
    fn a_click_selects_the_row_under_the_mouse() {
        use ratatui::crossterm::event::{
            Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
        };
        let click = |column, row| {
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        let mut app = with_incidents();
        app.view = View::Incidents;
        app.update(&Event::Resize(120, 30), 0);
        // Tabs on line 0, the list's border on 1, its header on 2: line 4 is the second incident.
        app.update(&click(10, 4), 0);
        assert_eq!(app.incidents.selected, 1);
        assert_eq!(app.incidents.selected_incident().map(|i| i.id), Some(11));
        // The detail pane and the empty rows below the list select nothing.
        app.update(&click(100, 3), 0);
        app.update(&click(10, 20), 0);
        assert_eq!(app.incidents.selected, 1);

        app.view = View::Jobs;
        app.update(&Event::Resize(100, 24), 0);
        assert_eq!(
            app.update(&click(30, 5), 0),
            vec![crate::message::Request::JobRuns("report".into())]
        );
        assert_eq!(app.jobs.selected, 2);
    }

    #[test]
    fn jobs_and_their_runs_at_100x24() {
        let mut app = with_incidents();
        app.view = View::Jobs;
        insta::assert_snapshot!(render(&app, 100, 24));
    }

    #[test]
    fn overview_at_80x24() {
        insta::assert_snapshot!(render(&fixed_app(), 80, 24));
    }

    #[test]
    fn metrics_explorer_with_a_chart_and_a_stale_agent() {
        let mut app = fixed_app();
        app.view = View::Metrics;
        app.apply(Update::Series(
            ["system.cpu.load_average.1m", "system.memory.utilization"]
                .iter()
                .enumerate()
                .map(|(i, n)| SeriesInfo {
                    id: i as u32,
                    key: format!("{n}{{host.name=\"db-7\"}}"),
                    name: n.to_string(),
                    kind: MetricKind::Gauge,
                    unit: "1".into(),
                })
                .collect(),
        ));
        app.apply(Update::Chart {
            series: 0,
            start: 0,
            end: 300_000,
            points: (0..60)
                .map(|i| (i * 5000, 1.0 + (i % 10) as f64 / 10.0))
                .collect(),
        });
        app.apply(Update::Failed(
            "the agent at /run/ward/api.sock did not answer in time".into(),
        ));
        insta::assert_snapshot!(render(&app, 100, 24));
    }

    #[test]
    fn gpus_with_a_mig_instance_throttling_and_xids() {
        use ward_shared::api::{GpuReading, GpuState, XidEvent};
        use ward_shared::fixtures;
        let mut app = fixed_app();
        app.view = View::Gpus;
        // The GPUs view shows power to the watt and names the throttle reasons.
        let h100 = GpuReading {
            power_w: Some(512.0),
            throttle: Some(0x1 | 0x20),
            ..fixtures::h100("GPU-a")
        };
        let mig = fixtures::mig("MIG-1", "GPU-a");
        let xid = XidEvent {
            ts: 1_700_000_000_000,
            gpu: "GPU-a".into(),
            code: 79,
            description: "GPU has fallen off the bus".into(),
        };
        app.apply(Update::Gpus(GpuState {
            unavailable: None,
            devices: vec![h100, mig],
            xid_history: [xid].into_iter().collect(),
        }));
        insta::assert_snapshot!(render(&app, 120, 20));
    }

    #[test]
    fn gpus_unavailable_say_why() {
        let mut app = fixed_app();
        app.view = View::Gpus;
        let screen = render(&app, 80, 12);
        assert!(
            screen.contains("✗ No GPU readings: NVML could not be loaded"),
            "{screen}"
        );
    }

    #[test]
    fn processes_by_memory() {
        let mut app = fixed_app();
        app.view = View::Processes;
        app.processes.sort = crate::views::processes::ProcessSort::Memory;
        insta::assert_snapshot!(render(&app, 100, 8));
    }

    #[test]
    fn help_overlay_lists_every_key() {
        let mut app = fixed_app();
        app.help = true;
        let screen = render(&app, 80, 24);
        for (k, _) in HELP {
            assert!(screen.contains(k), "help lacks {k}:\n{screen}");
        }
    }
}
