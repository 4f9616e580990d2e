//! The metrics explorer: every series, filtered with `/`, and a chart of
//! the chosen one from 5 minutes to 7 days, panned back in history.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, List, ListItem, ListState, Paragraph,
};
use ward_shared::api::SeriesInfo;

use super::widgets::row_at;
use crate::message::Request;

/// Chart spans, from the closest look to the widest.
pub const SPANS: [(i64, &str); 7] = [
    (5 * 60_000, "5m"),
    (15 * 60_000, "15m"),
    (3_600_000, "1h"),
    (6 * 3_600_000, "6h"),
    (86_400_000, "1d"),
    (3 * 86_400_000, "3d"),
    (7 * 86_400_000, "7d"),
];

/// A series' points over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub series: u32,
    pub start: i64,
    pub end: i64,
    pub points: Vec<(i64, f64)>,
}

/// What the explorer holds.
#[derive(Debug, Default)]
pub struct MetricsView {
    /// The `/` filter, and whether it is being typed.
    pub filter: String,
    pub filtering: bool,
    pub series: Vec<SeriesInfo>,
    pub selected: usize,
    pub chart: Option<ChartData>,
    /// Index into [`SPANS`].
    pub span: usize,
    /// End of the charted range; `None` follows now.
    pub end: Option<i64>,
}

impl MetricsView {
    /// The series list and the chart within the view's `area`.
    fn panes(area: Rect) -> [Rect; 2] {
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area)
    }

    pub fn chart_request(&self) -> Option<Request> {
        let s = self.series.get(self.selected)?;
        Some(Request::Chart {
            series: s.id,
            end: self.end,
            span: SPANS[self.span].0,
        })
    }

    /// Moves the cursor by `by` series and asks for the chart there.
    pub fn select(&mut self, by: isize) -> Vec<Request> {
        if self.series.is_empty() {
            return Vec::new();
        }
        let last = self.series.len() as isize - 1;
        self.selected = (self.selected as isize + by).clamp(0, last) as usize;
        self.chart_request().into_iter().collect()
    }

    /// Selects the series under a click in the view's `area`.
    pub fn click(&mut self, area: Rect, column: u16, row: u16) -> Vec<Request> {
        let [list, _] = Self::panes(area);
        match row_at(list, false, self.selected, column, row) {
            Some(i) if i < self.series.len() => {
                self.selected = i;
                self.chart_request().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// A key while the filter is typed.
    pub fn filter_key(&mut self, code: KeyCode) -> Vec<Request> {
        match code {
            KeyCode::Enter => {
                self.filtering = false;
                self.selected = 0;
                return vec![Request::Series(self.filter.clone())];
            }
            KeyCode::Esc => self.filtering = false,
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
        Vec::new()
    }

    pub fn key(&mut self, code: KeyCode, now: i64) -> Vec<Request> {
        match code {
            KeyCode::Char('/') => {
                self.filtering = true;
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => self.select(1),
            KeyCode::Up | KeyCode::Char('k') => self.select(-1),
            KeyCode::PageDown => self.select(10),
            KeyCode::PageUp => self.select(-10),
            KeyCode::Enter => self.chart_request().into_iter().collect(),
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.span = self.span.saturating_sub(1);
                self.chart_request().into_iter().collect()
            }
            KeyCode::Char('-') => {
                self.span = (self.span + 1).min(SPANS.len() - 1);
                self.chart_request().into_iter().collect()
            }
            KeyCode::Left | KeyCode::Char('h') => {
                let end = self.end.unwrap_or(now);
                self.end = Some(end - SPANS[self.span].0 / 2);
                self.chart_request().into_iter().collect()
            }
            KeyCode::Right | KeyCode::Char('l') => {
                let end = self.end.map(|e| e + SPANS[self.span].0 / 2);
                self.end = end.filter(|&e| e < now);
                self.chart_request().into_iter().collect()
            }
            KeyCode::End | KeyCode::Char('0') => {
                self.end = None;
                self.chart_request().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Takes in a new list of series, keeping the cursor inside it.
    pub fn set_series(&mut self, series: Vec<SeriesInfo>) {
        self.series = series;
        self.selected = self.selected.min(self.series.len().saturating_sub(1));
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        let [list_area, chart_area] = Self::panes(area);
        let items: Vec<ListItem> = self
            .series
            .iter()
            .map(|s| ListItem::new(s.key.clone()))
            .collect();
        let title = if self.filter.is_empty() {
            format!("Series ({}) · / filter", self.series.len())
        } else {
            format!("Series matching {:?} ({})", self.filter, self.series.len())
        };
        let list = List::new(items)
            .block(Block::new().borders(Borders::ALL).title(title))
            .highlight_symbol("▶ ")
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state =
            ListState::default().with_selected((!self.series.is_empty()).then_some(self.selected));
        f.render_stateful_widget(list, list_area, &mut state);

        let selected = self.series.get(self.selected);
        let chart = self
            .chart
            .as_ref()
            .filter(|c| selected.is_some_and(|s| s.id == c.series));
        let span = SPANS[self.span].1;
        let when = if self.end.is_some() {
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
            let hint = if self.series.is_empty() {
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
}
