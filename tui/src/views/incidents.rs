//! The incidents view: incidents by severity and time, each with why (the
//! series or rule, observed against expected, the model that fired), a
//! chart of its leading series against the expected band, what was
//! running, notes and history; keys to acknowledge, resolve, annotate and
//! give feedback. Also the overview's box of active incidents.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ward_shared::incident::{Feedback, Incident};
use ward_shared::status::AgentStatus;

use super::widgets::{
    draw_selectable, incident_widths, num, row_at, screen_now, severity, si, span, state_word, utc,
};
use crate::message::{Action, Request};

/// An incident's leading series around the incident's time.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChart {
    pub incident: u64,
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub points: Vec<(i64, f64)>,
}

/// What the incidents view holds.
#[derive(Debug, Default)]
pub struct IncidentsView {
    /// Every incident the agent keeps: active first, worst and newest first.
    pub all: Vec<Incident>,
    /// Whether the list shows resolved ones too.
    pub show_resolved: bool,
    pub selected: usize,
    /// The note being typed for the selected incident.
    pub note: Option<String>,
    /// The chart of the selected incident's leading series.
    pub chart: Option<IncidentChart>,
}

impl IncidentsView {
    /// The list and the detail pane within the view's `area`.
    fn panes(area: Rect) -> [Rect; 2] {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    }

    /// The incidents the list shows.
    pub fn visible(&self) -> Vec<&Incident> {
        self.all
            .iter()
            .filter(|i| self.show_resolved || i.is_active())
            .collect()
    }

    /// The incident the cursor is on.
    pub fn selected_incident(&self) -> Option<&Incident> {
        self.visible().get(self.selected).copied()
    }

    /// The chart to ask for the selected incident: its leading series from
    /// 15 minutes before it opened to 5 minutes after it resolved, or now.
    pub fn chart_request(&self) -> Option<Request> {
        let i = self.selected_incident()?;
        let key = i.signals.first()?.what.clone();
        Some(Request::IncidentChart {
            incident: i.id,
            key,
            start: i.opened - 15 * 60_000,
            end: i.resolved.map(|r| r + 5 * 60_000),
        })
    }

    pub fn select(&mut self, by: isize) {
        let n = self.visible().len() as isize;
        self.selected = (self.selected as isize + by).clamp(0, (n - 1).max(0)) as usize;
    }

    /// Selects the incident under a click in the view's `area`.
    pub fn click(&mut self, area: Rect, column: u16, row: u16) -> Vec<Request> {
        let [list, _] = Self::panes(area);
        match row_at(list, true, self.selected, column, row) {
            Some(i) if i < self.visible().len() => {
                self.selected = i;
                self.chart_request().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Takes in the agent's incidents, keeping the cursor on the same one.
    pub fn set(&mut self, incidents: Vec<Incident>) {
        let on = self.selected_incident().map(|i| i.id);
        self.all = incidents;
        let visible = self.visible();
        self.selected = on
            .and_then(|id| visible.iter().position(|i| i.id == id))
            .unwrap_or(self.selected.min(visible.len().saturating_sub(1)));
    }

    /// A key while a note is typed; Enter sends it.
    pub fn note_key(&mut self, code: KeyCode) -> Vec<Request> {
        let Some(text) = &mut self.note else {
            return Vec::new();
        };
        match code {
            KeyCode::Enter => {
                let text = std::mem::take(text);
                self.note = None;
                if text.trim().is_empty() {
                    return Vec::new();
                }
                return self
                    .selected_incident()
                    .map(|i| Request::Act {
                        incident: i.id,
                        action: Action::Note(text),
                    })
                    .into_iter()
                    .collect();
            }
            KeyCode::Esc => self.note = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
        Vec::new()
    }

    pub fn key(&mut self, code: KeyCode) -> Vec<Request> {
        let act = |view: &Self, action: Action| {
            view.selected_incident()
                .map(|i| Request::Act {
                    incident: i.id,
                    action,
                })
                .into_iter()
                .collect()
        };
        let moved = match code {
            KeyCode::Down | KeyCode::Char('j') => Some(1),
            KeyCode::Up | KeyCode::Char('k') => Some(-1),
            KeyCode::PageDown => Some(10),
            KeyCode::PageUp => Some(-10),
            _ => None,
        };
        if let Some(by) = moved {
            self.select(by);
            return self.chart_request().into_iter().collect();
        }
        match code {
            KeyCode::Char('v') => {
                self.show_resolved = !self.show_resolved;
                self.selected = 0;
                return self.chart_request().into_iter().collect();
            }
            KeyCode::Char('a') => return act(self, Action::Acknowledge),
            KeyCode::Char('r') => return act(self, Action::Resolve),
            KeyCode::Char('c') => return act(self, Action::Feedback(Feedback::Confirmed)),
            KeyCode::Char('x') => return act(self, Action::Feedback(Feedback::FalsePositive)),
            KeyCode::Char('e') => return act(self, Action::Feedback(Feedback::Expected)),
            KeyCode::Char('n') if self.selected_incident().is_some() => {
                self.note = Some(String::new());
            }
            _ => {}
        }
        Vec::new()
    }

    /// The overview's box: the active incidents, with the anomaly rate and
    /// how many jobs are watched.
    pub fn draw_summary(
        &self,
        f: &mut Frame,
        area: Rect,
        status: Option<&AgentStatus>,
        jobs: usize,
    ) {
        let now = screen_now(status);
        let active: Vec<&Incident> = self.all.iter().filter(|i| i.is_active()).collect();
        let rate = match status.and_then(|s| s.detect.as_ref()) {
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
            let text = format!("✓ nothing is wrong that Ward knows of · {jobs} jobs watched");
            f.render_widget(Paragraph::new(text).block(block), area);
            return;
        }
        let rows: Vec<Row> = active.iter().map(|i| incident_row(i, now, false)).collect();
        f.render_widget(Table::new(rows, incident_widths(false)).block(block), area);
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, status: Option<&AgentStatus>) {
        let now = screen_now(status);
        let [list, detail] = Self::panes(area);
        let visible = self.visible();
        let rows: Vec<Row> = visible.iter().map(|i| incident_row(i, now, true)).collect();
        let which = if self.show_resolved {
            "all kept"
        } else {
            "active"
        };
        let title = format!("Incidents, {which} ({}) · v resolved too", visible.len());
        let table = Table::new(rows, incident_widths(true))
            .block(Block::new().borders(Borders::ALL).title(title));
        let selected = (!visible.is_empty()).then_some(self.selected);
        draw_selectable(f, list, table, &["", "", "since (UTC)", "title"], selected);

        let block = Block::new()
            .borders(Borders::ALL)
            .title("Detail · a ack · r resolve · n note · c/x/e feedback");
        let Some(i) = self.selected_incident() else {
            let text = if self.all.is_empty() {
                "✓ no incidents"
            } else {
                "✓ no active incidents (v shows resolved ones)"
            };
            f.render_widget(Paragraph::new(text).block(block), detail);
            return;
        };
        // The leading series around the incident, with its expected band.
        let chart = self
            .chart
            .as_ref()
            .filter(|c| c.incident == i.id && !c.points.is_empty());
        let detail = match chart {
            Some(c) if detail.height > 16 => {
                let [chart_area, rest] =
                    Layout::vertical([Constraint::Length(10), Constraint::Min(0)]).areas(detail);
                draw_chart(f, c, i, chart_area);
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
                    format!(" · {} · #{} · {:?}", state_word(i.state), i.id, i.source)
                        .to_lowercase(),
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
                crate::message::feedback_word(fb)
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
}

/// An incident as a row: severity and state in words, or (`compact`) as
/// their symbols alone, which the help explains.
pub fn incident_row(i: &Incident, now: i64, compact: bool) -> Row<'static> {
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

fn draw_chart(f: &mut Frame, c: &IncidentChart, i: &Incident, area: Rect) {
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
