//! The overview: the host's figures as tiles with sparklines, the active
//! incidents, each collector's health, the GPUs and the top processes, on
//! one screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Row, Sparkline, Table};
use ward_shared::api::GpuState;
use ward_shared::status::AgentStatus;

use super::incidents::IncidentsView;
use super::processes::ProcessesView;
use super::widgets::rate;
use crate::message::{Overview, Trend};

/// What the overview draws, from the other views and the agent's status.
#[derive(Debug)]
pub struct OverviewScreen<'a> {
    pub overview: &'a Overview,
    pub status: Option<&'a AgentStatus>,
    pub incidents: &'a IncidentsView,
    /// How many jobs are watched.
    pub jobs: usize,
    pub gpus: &'a GpuState,
    pub processes: &'a ProcessesView,
}

fn tile(f: &mut Frame, area: Rect, title: String, trend: &Trend, scale: f64) {
    let data: Vec<u64> = trend
        .points
        .iter()
        .map(|&(_, v)| (v * scale).max(0.0) as u64)
        .collect();
    let spark = Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(title))
        .data(&data)
        .style(Style::new().fg(Color::Cyan));
    f.render_widget(spark, area);
}

/// Draws the overview from what the other views hold.
pub fn draw(f: &mut Frame, area: Rect, s: &OverviewScreen) {
    let [tiles, lower] = Layout::vertical([Constraint::Length(8), Constraint::Min(0)]).areas(area);
    let [row1, row2] = Layout::vertical([Constraint::Length(4); 2]).areas(tiles);
    let fifths = |r| Layout::horizontal([Constraint::Ratio(1, 5); 5]).areas::<5>(r);
    let o = s.overview;
    let pct = |t: &Trend| {
        t.last()
            .map_or("–".to_string(), |v| format!("{:.1}%", v * 100.0))
    };
    let [a, b, c, gpu_tile, jobs_tile] = fifths(row1);
    tile(
        f,
        a,
        format!("CPU {}", pct(&o.cpu_busy)),
        &o.cpu_busy,
        1000.0,
    );
    tile(
        f,
        b,
        format!("Memory {}", pct(&o.memory_used)),
        &o.memory_used,
        1000.0,
    );
    tile(
        f,
        c,
        format!(
            "Load {}",
            o.load.last().map_or("–".into(), |v| format!("{v:.2}"))
        ),
        &o.load,
        100.0,
    );
    let [d, e, g, anomaly_tile, incidents_tile] = fifths(row2);
    tile(
        f,
        d,
        format!("Net ↓{}", o.network_rx.last().map_or("–".into(), rate)),
        &o.network_rx,
        1.0,
    );
    tile(
        f,
        e,
        format!("Net ↑{}", o.network_tx.last().map_or("–".into(), rate)),
        &o.network_tx,
        1.0,
    );
    tile(
        f,
        g,
        format!("Disk {}", o.disk_io.last().map_or("–".into(), rate)),
        &o.disk_io,
        1.0,
    );
    let gpu_title = match (&s.gpus.unavailable, o.gpu_busy.last()) {
        (_, Some(v)) => format!("GPU {:.0}%", v * 100.0),
        (Some(_), None) => "GPU n/a".to_string(),
        (None, None) => "GPU –".to_string(),
    };
    tile(f, gpu_tile, gpu_title, &o.gpu_busy, 1000.0);
    tile(
        f,
        anomaly_tile,
        format!("Anomaly {}", pct(&o.anomaly)),
        &o.anomaly,
        10_000.0,
    );
    let count = |t: &Trend| t.last().map_or("–".to_string(), |v| format!("{v:.0}"));
    tile(
        f,
        jobs_tile,
        format!("Jobs {} run", count(&o.jobs_running)),
        &o.jobs_running,
        1.0,
    );
    tile(
        f,
        incidents_tile,
        format!("Incidents {}", count(&o.incidents_active)),
        &o.incidents_active,
        1.0,
    );

    // As tall as the active incidents need, up to four of them.
    let active = s.incidents.all.iter().filter(|i| i.is_active()).count() as u16;
    let [incidents, lower] = Layout::vertical([
        Constraint::Length(active.clamp(1, 4) + 2),
        Constraint::Min(0),
    ])
    .areas(lower);
    s.incidents.draw_summary(f, incidents, s.status, s.jobs);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lower);
    let [health, gpu] = Layout::vertical([Constraint::Min(0), Constraint::Length(4)]).areas(left);
    draw_collectors(f, s.status, health);
    super::gpus::draw_summary(s.gpus, f, gpu);
    s.processes.draw_top(f, right);
}

fn draw_collectors(f: &mut Frame, status: Option<&AgentStatus>, area: Rect) {
    let export = status.and_then(|s| s.exporter.as_ref()).map(|e| {
        let state = if e.retrying {
            format!("⚠ lag {:.0}s", e.lag_seconds)
        } else {
            format!("✓ lag {:.0}s", e.lag_seconds)
        };
        Row::new(vec!["export".to_string(), state, e.protocol.clone()])
    });
    let rows: Vec<Row> = status
        .into_iter()
        .flat_map(|s| &s.collectors)
        .map(|c| {
            let state = if c.state == "running" && c.errors == 0 {
                "✓ ok".to_string()
            } else if c.state.starts_with("unsupported") {
                "✗ n/a".to_string()
            } else if c.errors > 0 {
                format!("⚠ {} errors", c.errors)
            } else {
                c.state.clone()
            };
            Row::new(vec![
                c.name.clone(),
                state,
                format!("{}µs", c.last_duration_us),
            ])
        })
        .chain(export)
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Min(8),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec!["collector", "state", "last run"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::new().borders(Borders::ALL).title("Collectors"));
    f.render_widget(table, area);
}
