//! Dashboard redraw cost: a full frame at 200x60 on ratatui's TestBackend,
//! for the overview and for the metrics explorer with a chart of 240 points
//! and 500 series listed. Target: under 5 ms.
//!
//! Run: `cargo bench -p ward-benches --bench tui_redraw`

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ward_shared::MetricKind;
use ward_shared::api::{ProcessInfo, ProcessSnapshot, SeriesInfo};
use ward_shared::status::{AgentStatus, CollectorHealth, StoreHealth};
use ward_tui::app::{App, View};
use ward_tui::message::{Overview, Trend, Update};
use ward_tui::ui;

fn trend(n: usize, scale: f64) -> Trend {
    Trend {
        points: (0..n)
            .map(|i| (i as i64 * 5000, scale * (1.0 + (i as f64 / 7.0).sin())))
            .collect(),
    }
}

fn busy_app() -> App {
    let mut app = App::new("/run/ward/api.sock");
    app.apply(Update::Status(Box::new(AgentStatus {
        host: "gpu-node-17".into(),
        version: "0.1.0".into(),
        pid: 1,
        started: 0,
        updated: 0,
        state: "running".into(),
        collectors: [
            "cpu",
            "memory",
            "disk",
            "filesystem",
            "network",
            "process",
            "gpu",
            "agent",
        ]
        .iter()
        .map(|n| CollectorHealth {
            name: n.to_string(),
            interval_ms: 1000,
            state: "running".into(),
            runs: 3600,
            errors: 0,
            last_error: None,
            last_duration_us: 150,
            missed_ticks: 0,
            dropped_batches: 0,
        })
        .collect(),
        gpu_unavailable: None,
        gpus: 8,
        jobs: Default::default(),
        budget: None,
        notify: None,
        exporter: None,
        statsd: None,
        detect: None,
        store: StoreHealth::default(),
    })));
    app.apply(Update::Overview(Overview {
        cpu_busy: trend(60, 0.3),
        memory_used: trend(60, 0.4),
        network_rx: trend(60, 1e6),
        network_tx: trend(60, 2e5),
        disk_io: trend(60, 5e6),
        load: trend(60, 4.0),
        gpu_busy: trend(60, 0.7),
        anomaly: trend(60, 0.02),
        jobs_running: trend(60, 3.0),
        incidents_active: trend(60, 1.0),
    }));
    let process = |i: u32| ProcessInfo {
        pid: 1000 + i,
        name: format!("python{i}"),
        user: "train".into(),
        command: format!("python train.py --epochs 90 --shard {i} --config /etc/jobs/resnet.yaml"),
        cpu: 0.9,
        memory_bytes: 8 << 30,
    };
    app.apply(Update::Processes(ProcessSnapshot {
        ts: 0,
        by_cpu: (0..10).map(process).collect(),
        by_memory: (0..10).map(process).collect(),
    }));
    app.apply(Update::Series(
        (0..500)
            .map(|i| SeriesInfo {
                id: i,
                key: format!(
                    "system.disk.io{{disk.io.direction=\"read\",system.device=\"nvme{i}n1\"}}"
                ),
                name: "system.disk.io".into(),
                kind: MetricKind::Counter,
                unit: "By".into(),
            })
            .collect(),
    ));
    app.apply(Update::Chart {
        series: 0,
        start: 0,
        end: 1_200_000,
        points: (0..240)
            .map(|i| (i * 5000, (i as f64 / 9.0).sin()))
            .collect(),
    });
    app
}

fn redraw(c: &mut Criterion) {
    let mut app = busy_app();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("a test terminal");
    c.bench_function("redraw_200x60/overview", |b| {
        b.iter(|| {
            terminal
                .draw(|f| ui::draw(f, &app))
                .map(|_| ())
                .expect("draw")
        })
    });
    app.view = View::Metrics;
    c.bench_function("redraw_200x60/metrics_chart", |b| {
        b.iter(|| {
            terminal
                .draw(|f| ui::draw(f, &app))
                .map(|_| ())
                .expect("draw")
        })
    });
}

criterion_group!(benches, redraw);
criterion_main!(benches);
