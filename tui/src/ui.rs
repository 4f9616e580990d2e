//! Drawing: an [`App`] onto a frame. Reads the state, changes nothing.
//!
//! Meaning never rests on colour alone: states carry words and symbols
//! (`✓ running`, `✗ unsupported`, `⚠ stale`), so the screen reads the same
//! on a monochrome terminal. Usable from 80x24 up.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, List, ListItem, ListState, Paragraph,
    Row, Sparkline, Table,
};

use ward_shared::incident::{Incident, IncidentState, Severity};
use ward_shared::jobs::{JobRun, RunStatus};

use crate::app::{App, SPANS, View};
use crate::message::Trend;

pub fn draw(f: &mut Frame, app: &App) {
    let [top, main, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_tabs(f, app, top);
    match app.view {
        View::Overview => draw_overview(f, app, main),
        View::Metrics => draw_metrics(f, app, main),
        View::Processes => draw_processes_view(f, app, main),
        View::Gpus => draw_gpus_view(f, app, main),
        View::Incidents => draw_incidents_view(f, app, main),
        View::Jobs => draw_jobs_view(f, app, main),
        View::Fleet => draw_fleet_view(f, app, main),
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
    if let Some(text) = &app.note {
        let id = app.selected_incident().map_or(0, |i| i.id);
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
    let line = match (&app.stale, app.filtering) {
        (_, true) => Line::from(format!(
            " filter: {}▏  Enter apply · Esc cancel",
            if app.view == View::Processes {
                &app.process_filter
            } else {
                &app.filter
            }
        )),
        (Some(e), _) => Line::from(Span::styled(
            format!(" ⚠ stale: {e} (showing the last data)"),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
        (None, _) => {
            let active: Vec<&Incident> = app.incidents.iter().filter(|i| i.is_active()).collect();
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

/// 12.3 KB/s, 4.5 MB/s: a rate in bytes for a tile.
pub fn rate(bytes_per_s: f64) -> String {
    let units = ["B/s", "KB/s", "MB/s", "GB/s", "TB/s"];
    let mut v = bytes_per_s;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

pub use ward_shared::time::utc;

pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
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

fn draw_overview(f: &mut Frame, app: &App, area: Rect) {
    let [tiles, lower] = Layout::vertical([Constraint::Length(8), Constraint::Min(0)]).areas(area);
    let [row1, row2] = Layout::vertical([Constraint::Length(4); 2]).areas(tiles);
    let fifths = |r| Layout::horizontal([Constraint::Ratio(1, 5); 5]).areas::<5>(r);
    let o = &app.overview;
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
    let gpu_title = match (&app.gpus.unavailable, o.gpu_busy.last()) {
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
    let active = app.incidents.iter().filter(|i| i.is_active()).count() as u16;
    let [incidents, lower] = Layout::vertical([
        Constraint::Length(active.clamp(1, 4) + 2),
        Constraint::Min(0),
    ])
    .areas(lower);
    draw_incident_summary(f, app, incidents);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lower);
    let [health, gpu] = Layout::vertical([Constraint::Min(0), Constraint::Length(4)]).areas(left);
    draw_collectors(f, app, health);
    draw_gpus(f, app, gpu);
    draw_processes(f, app, right);
}

/// Records where a list was drawn, for mouse clicks (see `App::click`).
fn note_list(app: &App, area: Rect, header: bool, offset: usize) {
    app.list_area.set(area);
    app.list_first_row.set(area.y + 1 + u16::from(header));
    app.list_offset.set(offset);
}

/// A list the cursor moves in: bold `header`, the selected row reversed
/// and marked ▶, its place recorded for mouse clicks.
fn draw_selectable(
    f: &mut Frame,
    app: &App,
    area: Rect,
    table: Table,
    header: &[&str],
    selected: Option<usize>,
) {
    let table = table
        .header(Row::new(header.to_vec()).style(Style::new().add_modifier(Modifier::BOLD)))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶");
    let mut state = ratatui::widgets::TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
    note_list(app, area, true, state.offset());
}

/// `‼ critical`, `! warning`, `· info`: severity that reads without colour.
pub fn severity(s: Severity) -> (&'static str, Style) {
    match s {
        Severity::Critical => (
            "‼",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Severity::Warning => ("!", Style::new().fg(Color::Yellow)),
        Severity::Info => ("·", Style::new()),
    }
}

pub fn state_word(s: IncidentState) -> &'static str {
    match s {
        IncidentState::Open => "● open",
        IncidentState::Acknowledged => "◐ acked",
        IncidentState::Resolved => "✓ resolved",
    }
}

/// `45s`, `12m`, `3h05m`, `2d04h`: how long, as an on-call engineer reads it.
pub fn span(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The time the screen is drawn for: the agent's last status, so that the
/// same data always draws the same screen.
fn screen_now(app: &App) -> i64 {
    app.status.as_ref().map_or(0, |s| s.updated)
}

/// An incident as a row: severity and state in words, or (`compact`) as
/// their symbols alone, which the help explains.
fn incident_row(i: &Incident, now: i64, compact: bool) -> Row<'static> {
    let (sym, style) = severity(i.severity);
    let since = match i.resolved {
        Some(r) => format!("{} for {}", &utc(i.opened)[11..16], span(r - i.opened)),
        None => format!("{} for {}", &utc(i.opened)[11..16], span(now - i.opened)),
    };
    let (sev, state) = if compact {
        (
            sym.to_string(),
            state_word(i.state).chars().take(1).collect(),
        )
    } else {
        (
            format!("{sym} {}", i.severity.word()),
            state_word(i.state).to_string(),
        )
    };
    Row::new(vec![
        Span::styled(sev, style).into(),
        Line::from(state),
        Line::from(since),
        Line::from(i.title.clone()),
    ])
}

fn incident_widths(compact: bool) -> [Constraint; 4] {
    let (sev, state) = if compact { (1, 1) } else { (10, 10) };
    [
        Constraint::Length(sev),
        Constraint::Length(state),
        Constraint::Length(14),
        Constraint::Min(20),
    ]
}

fn draw_incident_summary(f: &mut Frame, app: &App, area: Rect) {
    let now = screen_now(app);
    let active: Vec<&Incident> = app.incidents.iter().filter(|i| i.is_active()).collect();
    let rate = match app.status.as_ref().and_then(|s| s.detect.as_ref()) {
        Some(d) => format!(
            " · anomaly rate {:.1}% of {} series",
            d.anomaly_rate * 100.0,
            d.series
        ),
        None => " · detection off".to_string(),
    };
    let title = format!("Incidents · {} active{rate} · 5 to open", active.len());
    let block = Block::new().borders(Borders::ALL).title(title);
    if active.is_empty() {
        let jobs = app.jobs.len();
        let text = format!("✓ nothing is wrong that Ward knows of · {jobs} jobs watched");
        f.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let rows: Vec<Row> = active.iter().map(|i| incident_row(i, now, false)).collect();
    f.render_widget(Table::new(rows, incident_widths(false)).block(block), area);
}

fn draw_incidents_view(f: &mut Frame, app: &App, area: Rect) {
    let now = screen_now(app);
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let visible = app.visible_incidents();
    let rows: Vec<Row> = visible.iter().map(|i| incident_row(i, now, true)).collect();
    let which = if app.show_resolved {
        "all kept"
    } else {
        "active"
    };
    let title = format!("Incidents, {which} ({}) · v resolved too", visible.len());
    let table = Table::new(rows, incident_widths(true))
        .block(Block::new().borders(Borders::ALL).title(title));
    let selected = (!visible.is_empty()).then_some(app.incident_selected);
    draw_selectable(
        f,
        app,
        list,
        table,
        &["", "", "since (UTC)", "title"],
        selected,
    );

    let block = Block::new()
        .borders(Borders::ALL)
        .title("Detail · a ack · r resolve · n note · c/x/e feedback");
    let Some(i) = app.selected_incident() else {
        let text = if app.incidents.is_empty() {
            "✓ no incidents"
        } else {
            "✓ no active incidents (v shows resolved ones)"
        };
        f.render_widget(Paragraph::new(text).block(block), detail);
        return;
    };
    // The leading series around the incident, with its expected band.
    let chart = app
        .incident_chart
        .as_ref()
        .filter(|c| c.incident == i.id && !c.points.is_empty());
    let detail = match chart {
        Some(c) if detail.height > 16 => {
            let [chart_area, rest] =
                Layout::vertical([Constraint::Length(10), Constraint::Min(0)]).areas(detail);
            draw_incident_chart(f, c, i, chart_area);
            rest
        }
        _ => detail,
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let (sym, style) = severity(i.severity);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{sym} {}", i.severity.word()), style),
            Span::raw(
                format!(" · {} · #{} · {:?}", state_word(i.state), i.id, i.source).to_lowercase(),
            ),
        ]),
        Line::styled(i.title.clone(), bold),
        Line::from(format!(
            "since {} · {} · peak {}",
            utc(i.opened),
            match i.resolved {
                Some(r) => format!("resolved after {}", span(r - i.opened)),
                None => format!("for {}", span(now - i.opened)),
            },
            &utc(i.peak)[11..19]
        )),
    ];
    if let Some(c) = i.cleared.filter(|_| i.is_active()) {
        lines.push(Line::from(format!(
            "condition gone since {}; resolves when quiet",
            &utc(c)[11..19]
        )));
    }
    if let Some(fb) = i.feedback {
        lines.push(Line::from(format!(
            "feedback: {}",
            crate::fetch::feedback_word(fb)
        )));
    }
    lines.push(Line::styled("Why", bold));
    for sig in &i.signals {
        let expected = match (sig.expected_low, sig.expected_high) {
            (Some(lo), Some(hi)) => format!("expected {} to {}", num(lo), num(hi)),
            (None, Some(hi)) => format!("expected at most {}", num(hi)),
            (Some(lo), None) => format!("expected at least {}", num(lo)),
            (None, None) => String::new(),
        };
        lines.push(Line::from(format!(
            " {}: {} {} · {expected}",
            sig.what,
            num(sig.observed),
            sig.unit.trim_matches(|c| c == '{' || c == '}')
        )));
        lines.push(Line::from(format!("   by {}", sig.model)));
    }
    let ctx = &i.context;
    let context: Vec<String> = ctx
        .jobs
        .iter()
        .map(|j| format!("job {j}"))
        .chain(ctx.processes.iter().map(|p| format!("process {p}")))
        .chain(ctx.gpus.iter().map(|g| format!("GPU {g}")))
        .collect();
    if !context.is_empty() {
        lines.push(Line::styled("At the time", bold));
        lines.push(Line::from(format!(" {}", context.join(", "))));
    }
    if !i.notes.is_empty() {
        lines.push(Line::styled("Notes", bold));
        for n in &i.notes {
            lines.push(Line::from(format!(
                " {} {}: {}",
                &utc(n.at)[11..16],
                n.by,
                n.text
            )));
        }
    }
    lines.push(Line::styled("History", bold));
    for e in i.history.iter().rev() {
        lines.push(Line::from(format!(
            " {} {} {}",
            &utc(e.at)[11..19],
            e.by,
            e.what
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(block),
        detail,
    );
}

fn draw_incident_chart(f: &mut Frame, c: &crate::app::IncidentChart, i: &Incident, area: Rect) {
    let x = |t: i64| (t - c.start) as f64 / 1000.0;
    let data: Vec<(f64, f64)> = c.points.iter().map(|&(t, v)| (x(t), v)).collect();
    let width = x(c.end).max(1.0);
    let signal = i.signals.first();
    let (band_lo, band_hi) = (
        signal.and_then(|s| s.expected_low),
        signal.and_then(|s| s.expected_high),
    );
    let (mut lo, mut hi) = data
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    for b in [band_lo, band_hi].into_iter().flatten() {
        (lo, hi) = (lo.min(b), hi.max(b));
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let band = |v: f64| vec![(0.0, v), (width, v)];
    let lo_line = band_lo.map(band).unwrap_or_default();
    let hi_line = band_hi.map(band).unwrap_or_default();
    let opened = vec![(x(i.opened), lo), (x(i.opened), hi)];
    let mut sets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .data(&data),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::DarkGray))
            .data(&opened),
    ];
    for line in [&lo_line, &hi_line] {
        if !line.is_empty() {
            sets.push(
                Dataset::default()
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(Color::Green))
                    .data(line),
            );
        }
    }
    let unit = signal.map_or("", |s| s.unit.as_str());
    let title = format!("{} · ┊ opened, ·· expected band", c.key);
    let widget = Chart::new(sets)
        .block(Block::new().borders(Borders::ALL).title(title))
        .x_axis(Axis::default().bounds([0.0, width]).labels(vec![
            Line::from(utc(c.start)[11..16].to_string()),
            Line::from(utc(c.end)[11..16].to_string()),
        ]))
        .y_axis(Axis::default().bounds([lo, hi]).labels(vec![
            Line::from(si(lo)),
            Line::from(format!("{} {unit}", si(hi))),
        ]));
    f.render_widget(widget, area);
}

/// An axis label: 84.0M, 2.5k, 0.25.
fn si(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.1}k", v / 1e3),
        _ => num(v),
    }
}

/// A measured value, short: 120000, 3.5, 0.25.
fn num(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn run_status(r: &JobRun) -> String {
    match (r.status, r.signal, r.exit_code) {
        (RunStatus::Running, ..) => "▶ running".into(),
        (RunStatus::Success, ..) => "✓ ok".into(),
        (RunStatus::Failed, Some(sig), _) => format!("✗ signal {sig}"),
        (RunStatus::Failed, None, Some(code)) => format!("✗ exit {code}"),
        (RunStatus::Failed, None, None) => "✗ failed".into(),
    }
}

fn draw_jobs_view(f: &mut Frame, app: &App, area: Rect) {
    let now = screen_now(app);
    let [jobs_area, runs_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let rows: Vec<Row> = app
        .jobs
        .iter()
        .map(|j| {
            let health = if !j.problems.is_empty() {
                format!(
                    "⚠ {}",
                    j.problems
                        .iter()
                        .map(|p| p.rsplit(':').next().unwrap_or(p))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            } else if j.running > 0 {
                "▶ running".into()
            } else if j.failure_streak > 0 {
                "✗ failing".into()
            } else {
                "✓ ok".into()
            };
            Row::new(vec![
                health,
                j.name.clone(),
                j.runs.to_string(),
                j.failures.to_string(),
                j.last_start
                    .map_or("–".into(), |t| format!("{} ago", span(now - t))),
                j.mean_duration_s
                    .map_or("–".into(), |d| span((d * 1000.0) as i64)),
                j.expect_every_s
                    .map_or("–".into(), |d| span((d * 1000.0) as i64)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(18),
            Constraint::Min(12),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .block(
        Block::new()
            .borders(Borders::ALL)
            .title(format!("Jobs ({}) · j/k select", app.jobs.len())),
    );
    let header = [
        "health", "job", "runs", "failed", "started", "mean", "every",
    ];
    let selected = (!app.jobs.is_empty()).then_some(app.job_selected);
    draw_selectable(f, app, jobs_area, table, &header, selected);

    let selected = app.jobs.get(app.job_selected).map(|j| j.name.as_str());
    let runs: Vec<Row> = match (&app.job_runs, selected) {
        (Some((job, runs)), Some(sel)) if job == sel => runs
            .iter()
            .map(|r| {
                Row::new(vec![
                    utc(r.started)[5..19].to_string(),
                    match r.duration_s {
                        Some(d) if d < 60.0 => format!("{d:.1}s"),
                        Some(d) => span((d * 1000.0) as i64),
                        None => span(now - r.started),
                    },
                    run_status(r),
                    r.cpu_seconds.map_or("–".into(), |c| format!("{c:.1}s")),
                    r.peak_rss_bytes.map_or("–".into(), bytes),
                    r.gpu_memory_bytes.map_or("–".into(), bytes),
                    r.records_out
                        .or(r.records_in)
                        .map_or("–".into(), |n| n.to_string()),
                ])
            })
            .collect(),
        _ => Vec::new(),
    };
    let title = format!("Runs of {}, newest first", selected.unwrap_or("–"));
    let table = Table::new(
        runs,
        [
            Constraint::Length(15),
            Constraint::Length(9),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Min(7),
        ],
    )
    .header(
        Row::new(vec![
            "started (UTC)",
            "took",
            "result",
            "cpu",
            "peak RSS",
            "GPU mem",
            "records",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::new().borders(Borders::ALL).title(title));
    f.render_widget(table, runs_area);
}

fn draw_fleet_view(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::new().borders(Borders::ALL).title(format!(
        "Fleet ({} agents), worst first · Enter to watch one",
        app.fleet.len()
    ));
    if app.fleet_members.is_empty() {
        let text = "No fleet file. `ward --fleet FILE` watches many agents; FILE is TOML:\n\n[[agent]]\nname = \"db-7\"\naddress = \"10.0.0.7:7070\"\ntoken_env = \"WARD_TOKEN_DB\"   # optional";
        f.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let rows: Vec<Row> = app
        .fleet
        .iter()
        .map(|r| {
            let (state, style) = match (&r.unreachable, r.critical, r.incidents) {
                (Some(_), ..) => ("✗ down".to_string(), Style::new().fg(Color::Red)),
                (None, c, _) if c > 0 => (format!("‼ {c} critical"), Style::new().fg(Color::Red)),
                (None, _, n) if n > 0 => (format!("! {n} open"), Style::new().fg(Color::Yellow)),
                _ => ("✓ ok".to_string(), Style::new()),
            };
            let what = match &r.unreachable {
                Some(why) => why.clone(),
                None => r.worst.clone().unwrap_or_default(),
            };
            Row::new(vec![
                Line::styled(state, style),
                Line::from(r.name.clone()),
                Line::from(r.incidents.to_string()),
                Line::from(
                    r.anomaly_rate
                        .map_or("–".into(), |a| format!("{:.1}%", a * 100.0)),
                ),
                Line::from(r.jobs.to_string()),
                Line::from(what),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(13),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Min(20),
        ],
    )
    .block(block);
    let header = [
        "state",
        "agent",
        "incidents",
        "anomaly",
        "jobs",
        "worst incident, or why it is down",
    ];
    let selected = (!app.fleet.is_empty()).then_some(app.fleet_selected);
    draw_selectable(f, app, area, table, &header, selected);
}

fn draw_collectors(f: &mut Frame, app: &App, area: Rect) {
    let export = app
        .status
        .as_ref()
        .and_then(|s| s.exporter.as_ref())
        .map(|e| {
            let state = if e.retrying {
                format!("⚠ lag {:.0}s", e.lag_seconds)
            } else {
                format!("✓ lag {:.0}s", e.lag_seconds)
            };
            Row::new(vec!["export".to_string(), state, e.protocol.clone()])
        });
    let rows: Vec<Row> = app
        .status
        .iter()
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

fn draw_gpus(f: &mut Frame, app: &App, area: Rect) {
    let text = match (&app.gpus.unavailable, app.gpus.devices.is_empty()) {
        (Some(why), _) => format!("✗ unavailable: {why}"),
        (None, true) => "no GPU readings yet".to_string(),
        (None, false) => app
            .gpus
            .devices
            .iter()
            .map(|d| {
                format!(
                    "{} {} util {} mem {}",
                    if d.parent.is_some() { "  ↳" } else { "▪" },
                    d.name,
                    d.utilization
                        .map_or("–".into(), |u| format!("{:.0}%", u * 100.0)),
                    d.memory_used.map_or("–".into(), bytes)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let title = format!("GPUs · XID errors: {}", app.gpus.xid_history.len());
    f.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::ALL).title(title)),
        area,
    );
}

fn draw_processes(f: &mut Frame, app: &App, area: Rect) {
    let rows: Vec<Row> = app
        .processes
        .by_cpu
        .iter()
        .map(|p| {
            Row::new(vec![
                p.pid.to_string(),
                format!("{:.1}%", p.cpu * 100.0),
                bytes(p.memory_bytes),
                p.user.clone(),
                if p.command.is_empty() {
                    p.name.clone()
                } else {
                    p.command.clone()
                },
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Min(8),
        ],
    )
    .header(
        Row::new(vec!["pid", "cpu", "memory", "user", "command"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(
        Block::new()
            .borders(Borders::ALL)
            .title("Top processes by CPU"),
    );
    f.render_widget(table, area);
}

fn draw_metrics(f: &mut Frame, app: &App, area: Rect) {
    let [list_area, chart_area] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let items: Vec<ListItem> = app
        .series
        .iter()
        .map(|s| ListItem::new(s.key.clone()))
        .collect();
    let title = if app.filter.is_empty() {
        format!("Series ({}) · / filter", app.series.len())
    } else {
        format!("Series matching {:?} ({})", app.filter, app.series.len())
    };
    let list = List::new(items)
        .block(Block::new().borders(Borders::ALL).title(title))
        .highlight_symbol("▶ ")
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state =
        ListState::default().with_selected((!app.series.is_empty()).then_some(app.selected));
    f.render_stateful_widget(list, list_area, &mut state);
    note_list(app, list_area, false, state.offset());

    let selected = app.series.get(app.selected);
    let chart = app
        .chart
        .as_ref()
        .filter(|c| selected.is_some_and(|s| s.id == c.series));
    let span = SPANS[app.span].1;
    let when = if app.end.is_some() {
        "⏸ history"
    } else {
        "● live"
    };
    let title = format!(
        "{} · {span} {when} · +/- zoom, ←/→ pan, 0 live",
        selected.map_or("no series", |s| s.name.as_str())
    );
    let block = Block::new().borders(Borders::ALL).title(title);
    let Some(chart) = chart else {
        let hint = if app.series.is_empty() {
            "no series match"
        } else {
            "j/k to pick a series"
        };
        f.render_widget(Paragraph::new(hint).block(block), chart_area);
        return;
    };
    let data: Vec<(f64, f64)> = chart
        .points
        .iter()
        .map(|&(t, v)| ((t - chart.start) as f64 / 1000.0, v))
        .collect();
    let (lo, hi) = data
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    };
    let width = ((chart.end - chart.start) as f64 / 1000.0).max(1.0);
    let unit = selected.map_or("", |s| s.unit.as_str());
    let widget = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .data(&data),
    ])
    .block(block)
    .x_axis(
        Axis::default()
            .bounds([0.0, width])
            .labels(vec![Line::from(format!("-{span}")), Line::from("end")]),
    )
    .y_axis(Axis::default().bounds([lo, hi]).labels(vec![
        Line::from(format!("{lo:.3}")),
        Line::from(format!("{hi:.3} {unit}")),
    ]));
    f.render_widget(widget, chart_area);
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

fn draw_processes_view(f: &mut Frame, app: &App, area: Rect) {
    let rows: Vec<Row> = app
        .visible_processes()
        .into_iter()
        .map(|p| {
            Row::new(vec![
                p.pid.to_string(),
                format!("{:.1}%", p.cpu * 100.0),
                bytes(p.memory_bytes),
                p.user.clone(),
                p.name.clone(),
                p.command.clone(),
            ])
        })
        .collect();
    let sort = match app.process_sort {
        crate::app::ProcessSort::Cpu => "by CPU ▼",
        crate::app::ProcessSort::Memory => "by memory ▼",
    };
    let filter = if app.process_filter.is_empty() {
        String::new()
    } else {
        format!(" matching {:?}", app.process_filter)
    };
    let title = format!("Top processes {sort}{filter} · s sort, / filter (command lines redacted)");
    let widths = [
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new(vec!["pid", "cpu", "memory", "user", "name", "command"])
                .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .block(Block::new().borders(Borders::ALL).title(title));
    f.render_widget(table, area);
}

fn gpu_row(d: &ward_shared::api::GpuReading) -> Row<'static> {
    let opt = |v: Option<f64>, fmt: &dyn Fn(f64) -> String| v.map_or("–".to_string(), fmt);
    let throttled: Vec<&str> = d
        .throttle
        .map(|b| {
            ward_shared::api::throttle_reasons(b)
                .filter(|r| *r != "gpu_idle")
                .collect()
        })
        .unwrap_or_default();
    Row::new(vec![
        format!("{}{}", if d.parent.is_some() { "  ↳ " } else { "" }, d.name),
        opt(d.utilization, &|u| format!("{:.0}%", u * 100.0)),
        match (d.memory_used, d.memory_total) {
            (Some(u), Some(t)) => format!("{} / {}", bytes(u), bytes(t)),
            _ => "–".into(),
        },
        opt(d.temperature_c, &|t| format!("{t:.0}°C")),
        match (d.power_w, d.power_limit_w) {
            (Some(p), Some(l)) => format!("{p:.0} / {l:.0} W"),
            (Some(p), None) => format!("{p:.0} W"),
            _ => "–".into(),
        },
        opt(d.sm_clock_hz, &|c| format!("{:.0} MHz", c / 1e6)),
        d.ecc_uncorrected.map_or("–".into(), |e| {
            format!("{e} / {}", d.ecc_corrected.unwrap_or(0))
        }),
        if throttled.is_empty() {
            "–".into()
        } else {
            format!("⚑ {}", throttled.join(","))
        },
    ])
}

fn draw_gpus_view(f: &mut Frame, app: &App, area: Rect) {
    let g = &app.gpus;
    if let Some(why) = &g.unavailable {
        let text = format!(
            "✗ No GPU readings: {why}\n\nThe agent loads NVML from the NVIDIA driver at run time; on a host with a driver, its GPUs show here."
        );
        let block = Block::new().borders(Borders::ALL).title("GPUs");
        f.render_widget(
            Paragraph::new(text)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let [devices, xids] = Layout::vertical([Constraint::Min(0), Constraint::Length(8)]).areas(area);
    let widths = [
        Constraint::Min(18),
        Constraint::Length(5),
        Constraint::Length(21),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let header = Row::new(vec![
        "GPU",
        "util",
        "memory",
        "temp",
        "power",
        "SM clock",
        "ECC u/c",
        "throttled",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(g.devices.iter().map(gpu_row), widths)
        .header(header)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!("GPUs ({})", g.devices.len())),
        );
    f.render_widget(table, devices);
    let items: Vec<ListItem> = g
        .xid_history
        .iter()
        .rev()
        .map(|x| {
            ListItem::new(format!(
                "{}  {}  XID {}  {}",
                utc(x.ts),
                x.gpu,
                x.code,
                x.description
            ))
        })
        .collect();
    let title = format!("XID errors, newest first ({})", g.xid_history.len());
    let list = if items.is_empty() {
        List::new(vec![ListItem::new("none")])
    } else {
        List::new(items)
    };
    f.render_widget(
        list.block(Block::new().borders(Borders::ALL).title(title)),
        xids,
    );
}

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
    use crate::message::{Overview, Update};
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
                id: 11,
                key: "job:ingest:records".into(),
                title: "job ingest processed 120000 (one run beyond 3 sigma), expected 978342 to 1061658 from 13 runs".into(),
                severity: Severity::Warning,
                state: IncidentState::Open,
                source: IncidentSource::Job,
                opened: t(13, 15),
                updated: t(13, 15),
                peak: t(13, 15),
                cleared: None,
                resolved: None,
                signals: Vec::new(),
                context: IncidentContext::default(),
                notes: Vec::new(),
                feedback: None,
                history: Vec::new(),
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
        let mut incidents = app.incidents.clone();
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
        app.incident_selected = 0;
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
        app.fleet_members = vec![member("db-7"), member("gpu-3"), member("web-1")];
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
        render(&app, 120, 30);
        // Tabs on line 0, the list's border on 1, its header on 2: line 4 is the second incident.
        app.update(&click(10, 4), 0);
        assert_eq!(app.incident_selected, 1);
        assert_eq!(app.selected_incident().map(|i| i.id), Some(11));
        // The detail pane and the empty rows below the list select nothing.
        app.update(&click(100, 3), 0);
        app.update(&click(10, 20), 0);
        assert_eq!(app.incident_selected, 1);

        app.view = View::Jobs;
        render(&app, 100, 24);
        assert_eq!(
            app.update(&click(30, 5), 0),
            vec![crate::message::Request::JobRuns("report".into())]
        );
        assert_eq!(app.job_selected, 2);
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
        let mut app = fixed_app();
        app.view = View::Gpus;
        let h100 = GpuReading {
            uuid: "GPU-a".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            utilization: Some(0.87),
            memory_used: Some(40 << 30),
            memory_total: Some(80 << 30),
            temperature_c: Some(71.0),
            power_w: Some(512.0),
            power_limit_w: Some(700.0),
            sm_clock_hz: Some(1.98e9),
            ecc_corrected: Some(3),
            ecc_uncorrected: Some(0),
            throttle: Some(0x1 | 0x20),
            ..GpuReading::default()
        };
        let mig = GpuReading {
            uuid: "MIG-1".into(),
            name: "1g.10gb".into(),
            parent: Some("GPU-a".into()),
            memory_used: Some(1 << 30),
            memory_total: Some(10 << 30),
            ..GpuReading::default()
        };
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
        app.process_sort = crate::app::ProcessSort::Memory;
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

    #[test]
    fn rates_and_sizes_read_like_a_person_writes_them() {
        assert_eq!(rate(5_300_000.0), "5.3 MB/s");
        assert_eq!(rate(12.0), "12.0 B/s");
        assert_eq!(bytes(512 << 20), "512.0 MiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
    }
}
