//! The jobs view: every job with its health, and the selected job's runs.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Row, Table};
use ward_shared::jobs::{JobRun, JobSummary, RunStatus};
use ward_shared::status::AgentStatus;

use super::widgets::{bytes, draw_selectable, row_at, screen_now, span, utc};
use crate::message::Request;

/// What the jobs view holds.
#[derive(Debug, Default)]
pub struct JobsView {
    pub jobs: Vec<JobSummary>,
    pub selected: usize,
    /// The selected job's runs, newest first.
    pub runs: Option<(String, Vec<JobRun>)>,
}

impl JobsView {
    /// The jobs list and the runs table within the view's `area`.
    fn panes(area: Rect) -> [Rect; 2] {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
    }

    /// Moves the cursor by `by` jobs and asks for the runs of the job there.
    pub fn select(&mut self, by: isize) -> Vec<Request> {
        if self.jobs.is_empty() {
            return Vec::new();
        }
        let last = self.jobs.len() as isize - 1;
        self.selected = (self.selected as isize + by).clamp(0, last) as usize;
        self.jobs
            .get(self.selected)
            .map(|j| Request::JobRuns(j.name.clone()))
            .into_iter()
            .collect()
    }

    /// Selects the job under a click in the view's `area`.
    pub fn click(&mut self, area: Rect, column: u16, row: u16) -> Vec<Request> {
        let [list, _] = Self::panes(area);
        match row_at(list, true, self.selected, column, row) {
            Some(i) if i < self.jobs.len() => {
                self.selected = i;
                self.select(0)
            }
            _ => Vec::new(),
        }
    }

    pub fn set(&mut self, jobs: Vec<JobSummary>) {
        self.jobs = jobs;
        self.selected = self.selected.min(self.jobs.len().saturating_sub(1));
    }

    pub fn key(&mut self, code: KeyCode) -> Vec<Request> {
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.select(1),
            KeyCode::Up | KeyCode::Char('k') => self.select(-1),
            KeyCode::PageDown => self.select(10),
            KeyCode::PageUp => self.select(-10),
            KeyCode::Enter => self.select(0),
            _ => Vec::new(),
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, status: Option<&AgentStatus>) {
        let now = screen_now(status);
        let [jobs_area, runs_area] = Self::panes(area);
        let rows: Vec<Row> = self
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
                .title(format!("Jobs ({}) · j/k select", self.jobs.len())),
        );
        let header = [
            "health", "job", "runs", "failed", "started", "mean", "every",
        ];
        let selected = (!self.jobs.is_empty()).then_some(self.selected);
        draw_selectable(f, jobs_area, table, &header, selected);

        let selected = self.jobs.get(self.selected).map(|j| j.name.as_str());
        let runs: Vec<Row> = match (&self.runs, selected) {
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
