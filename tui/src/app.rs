//! What the dashboard holds, and how keys and data change it.
//!
//! Only [`App::update`] (a key or mouse event, which may ask the fetch
//! worker for something) and [`App::apply`] (data from the worker) change
//! the state; drawing reads it.

use std::cell::Cell;

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ward_shared::api::{GpuState, ProcessSnapshot, SeriesInfo};
use ward_shared::status::AgentStatus;

use ratatui::layout::Rect;
use ward_shared::incident::{Feedback, Incident};
use ward_shared::jobs::{JobRun, JobSummary};

use crate::message::{Action, Overview, Request, Update};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Metrics,
    Processes,
    Gpus,
    Incidents,
    Jobs,
    Fleet,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Overview,
        View::Metrics,
        View::Processes,
        View::Gpus,
        View::Incidents,
        View::Jobs,
        View::Fleet,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Metrics => "Metrics",
            View::Processes => "Processes",
            View::Gpus => "GPUs",
            View::Incidents => "Incidents",
            View::Jobs => "Jobs",
            View::Fleet => "Fleet",
        }
    }
}

/// How the processes view orders its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSort {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartData {
    pub series: u32,
    pub start: i64,
    pub end: i64,
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug)]
pub struct App {
    pub view: View,
    pub help: bool,
    /// The `/` filter of the metrics explorer, and whether a filter is being typed.
    pub filter: String,
    pub filtering: bool,
    /// The `/` filter of the processes view (name, user or command).
    pub process_filter: String,
    pub process_sort: ProcessSort,
    pub endpoint: String,
    pub status: Option<AgentStatus>,
    pub overview: Overview,
    pub processes: ProcessSnapshot,
    pub gpus: GpuState,
    pub series: Vec<SeriesInfo>,
    pub selected: usize,
    pub chart: Option<ChartData>,
    pub span: usize,
    /// End of the charted range; `None` follows now.
    pub end: Option<i64>,
    /// The last fetch error, until a fetch succeeds again.
    pub stale: Option<String>,
    /// The `:` command being typed.
    pub command: Option<String>,
    /// What the last command said, until the next key.
    pub message: Option<String>,
    pub quit: bool,
    /// Every incident the agent keeps: active first, worst and newest first.
    pub incidents: Vec<Incident>,
    /// Whether the incidents view lists resolved ones too.
    pub show_resolved: bool,
    pub incident_selected: usize,
    /// The note being typed for the selected incident.
    pub note: Option<String>,
    pub jobs: Vec<JobSummary>,
    pub job_selected: usize,
    /// The selected job's runs, newest first.
    pub job_runs: Option<(String, Vec<JobRun>)>,
    /// The chart of the selected incident's leading series.
    pub incident_chart: Option<IncidentChart>,
    /// The fleet file's agents (empty without one), and how each is doing.
    pub fleet_members: Vec<crate::fleet::Member>,
    pub fleet: Vec<crate::message::HostRow>,
    pub fleet_selected: usize,
    /// Where the current view's list was last drawn: its area, the line of
    /// its first row, and how far it was scrolled. Drawing records it
    /// (hence the cells); a click reads it to pick the row under the mouse.
    pub list_area: Cell<Rect>,
    pub list_first_row: Cell<u16>,
    pub list_offset: Cell<usize>,
}

/// An incident's leading series around the incident's time.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChart {
    pub incident: u64,
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub points: Vec<(i64, f64)>,
}

impl App {
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            view: View::Overview,
            help: false,
            filter: String::new(),
            filtering: false,
            process_filter: String::new(),
            process_sort: ProcessSort::Cpu,
            endpoint: endpoint.into(),
            status: None,
            overview: Overview::default(),
            processes: ProcessSnapshot::default(),
            gpus: GpuState::default(),
            series: Vec::new(),
            selected: 0,
            chart: None,
            span: 0,
            end: None,
            stale: None,
            command: None,
            message: None,
            quit: false,
            incidents: Vec::new(),
            show_resolved: false,
            incident_selected: 0,
            note: None,
            jobs: Vec::new(),
            job_selected: 0,
            job_runs: None,
            incident_chart: None,
            fleet_members: Vec::new(),
            fleet: Vec::new(),
            fleet_selected: 0,
            list_area: Cell::new(Rect::default()),
            list_first_row: Cell::new(0),
            list_offset: Cell::new(0),
        }
    }

    /// Selects the row under a click in the current view's list.
    fn click(&mut self, column: u16, row: u16) -> Vec<Request> {
        let area = self.list_area.get();
        let first = self.list_first_row.get();
        let inside = column >= area.x
            && column < area.x + area.width
            && row >= first
            && row < area.y + area.height.saturating_sub(1);
        if !inside {
            return Vec::new();
        }
        let index = self.list_offset.get() + usize::from(row - first);
        match self.view {
            View::Metrics if index < self.series.len() => {
                self.selected = index;
                self.chart_request().into_iter().collect()
            }
            View::Incidents if index < self.visible_incidents().len() => {
                self.incident_selected = index;
                self.incident_chart_request().into_iter().collect()
            }
            View::Jobs if index < self.jobs.len() => {
                self.job_selected = index;
                self.select_job(0)
            }
            View::Fleet if index < self.fleet.len() => {
                self.fleet_selected = index;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn fleet_key(&mut self, code: KeyCode) -> Vec<Request> {
        let last = self.fleet.len().saturating_sub(1) as isize;
        let by = match code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::PageDown => 10,
            KeyCode::PageUp => -10,
            KeyCode::Enter => return self.drill_in(),
            _ => return Vec::new(),
        };
        self.fleet_selected = (self.fleet_selected as isize + by).clamp(0, last) as usize;
        Vec::new()
    }

    /// Watches the selected fleet member from now on.
    fn drill_in(&mut self) -> Vec<Request> {
        let Some(row) = self.fleet.get(self.fleet_selected) else {
            return Vec::new();
        };
        let Some(member) = self
            .fleet_members
            .iter()
            .find(|m| m.name == row.name)
            .cloned()
        else {
            return Vec::new();
        };
        let token = member
            .token_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty());
        // What was shown is the last agent's: start afresh.
        let (members, fleet) = (
            std::mem::take(&mut self.fleet_members),
            std::mem::take(&mut self.fleet),
        );
        *self = App::new(format!("{} · {}", member.name, member.address));
        (self.fleet_members, self.fleet) = (members, fleet);
        self.message = Some(format!("watching {} ({})", member.name, member.address));
        vec![Request::Connect {
            address: member.address,
            token,
            ca_file: member.ca_file,
        }]
    }

    /// The chart to ask for the selected incident: its leading series from
    /// 15 minutes before it opened to 5 minutes after it resolved, or now.
    pub fn incident_chart_request(&self) -> Option<Request> {
        let i = self.selected_incident()?;
        let key = i.signals.first()?.what.clone();
        Some(Request::IncidentChart {
            incident: i.id,
            key,
            start: i.opened - 15 * 60_000,
            end: i.resolved.map(|r| r + 5 * 60_000),
        })
    }

    /// The incidents the incidents view lists.
    pub fn visible_incidents(&self) -> Vec<&Incident> {
        self.incidents
            .iter()
            .filter(|i| self.show_resolved || i.is_active())
            .collect()
    }

    /// The incident the cursor is on.
    pub fn selected_incident(&self) -> Option<&Incident> {
        self.visible_incidents()
            .get(self.incident_selected)
            .copied()
    }

    fn select_incident(&mut self, by: isize) {
        let n = self.visible_incidents().len() as isize;
        self.incident_selected =
            (self.incident_selected as isize + by).clamp(0, (n - 1).max(0)) as usize;
    }

    fn select_job(&mut self, by: isize) -> Vec<Request> {
        if self.jobs.is_empty() {
            return Vec::new();
        }
        let last = self.jobs.len() as isize - 1;
        self.job_selected = (self.job_selected as isize + by).clamp(0, last) as usize;
        self.jobs
            .get(self.job_selected)
            .map(|j| Request::JobRuns(j.name.clone()))
            .into_iter()
            .collect()
    }

    fn incidents_key(&mut self, code: KeyCode) -> Vec<Request> {
        let act = |app: &Self, action: Action| {
            app.selected_incident()
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
            self.select_incident(by);
            return self.incident_chart_request().into_iter().collect();
        }
        match code {
            KeyCode::Char('v') => {
                self.show_resolved = !self.show_resolved;
                self.incident_selected = 0;
                return self.incident_chart_request().into_iter().collect();
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

    fn jobs_key(&mut self, code: KeyCode) -> Vec<Request> {
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.select_job(1),
            KeyCode::Up | KeyCode::Char('k') => self.select_job(-1),
            KeyCode::PageDown => self.select_job(10),
            KeyCode::PageUp => self.select_job(-10),
            KeyCode::Enter => self.select_job(0),
            _ => Vec::new(),
        }
    }

    /// Takes in what the fetch worker sent.
    pub fn apply(&mut self, update: Update) {
        if !matches!(update, Update::Failed(_)) {
            self.stale = None;
        }
        match update {
            Update::Status(s) => self.status = Some(*s),
            Update::Overview(o) => self.overview = o,
            Update::Processes(p) => self.processes = p,
            Update::Gpus(g) => self.gpus = g,
            Update::Series(s) => {
                self.series = s;
                self.selected = self.selected.min(self.series.len().saturating_sub(1));
            }
            Update::Chart {
                series,
                start,
                end,
                points,
            } => {
                self.chart = Some(ChartData {
                    series,
                    start,
                    end,
                    points,
                });
            }
            Update::Incidents(i) => {
                // Keep the cursor on the same incident as the list changes.
                let on = self.selected_incident().map(|i| i.id);
                self.incidents = i;
                let visible = self.visible_incidents();
                self.incident_selected = on
                    .and_then(|id| visible.iter().position(|i| i.id == id))
                    .unwrap_or(self.incident_selected.min(visible.len().saturating_sub(1)));
            }
            Update::Jobs(j) => {
                self.jobs = j;
                self.job_selected = self.job_selected.min(self.jobs.len().saturating_sub(1));
            }
            Update::JobRuns { job, runs } => self.job_runs = Some((job, runs)),
            Update::IncidentChart {
                incident,
                key,
                start,
                end,
                points,
            } => {
                self.incident_chart = Some(IncidentChart {
                    incident,
                    key,
                    start,
                    end,
                    points,
                })
            }
            Update::Done(what) => self.message = Some(what),
            Update::Fleet(rows) => {
                let on = self.fleet.get(self.fleet_selected).map(|r| r.name.clone());
                self.fleet = rows;
                self.fleet_selected = on
                    .and_then(|n| self.fleet.iter().position(|r| r.name == n))
                    .unwrap_or(0);
            }
            Update::Failed(e) => self.stale = Some(e),
        }
    }

    fn chart_request(&self) -> Option<Request> {
        let s = self.series.get(self.selected)?;
        Some(Request::Chart {
            series: s.id,
            end: self.end,
            span: SPANS[self.span].0,
        })
    }

    /// The chart to ask for again each second while it follows now.
    pub fn live_chart(&self) -> Option<Request> {
        match self.view {
            View::Metrics if self.end.is_none() => self.chart_request(),
            View::Incidents => self.incident_chart_request(),
            _ => None,
        }
    }

    /// The processes the processes view shows: the top ones by CPU and by
    /// memory, each once, filtered and sorted as asked.
    pub fn visible_processes(&self) -> Vec<&ward_shared::api::ProcessInfo> {
        let mut seen = std::collections::HashSet::new();
        let needle = self.process_filter.to_lowercase();
        let mut rows: Vec<_> = self
            .processes
            .by_cpu
            .iter()
            .chain(&self.processes.by_memory)
            .filter(|p| seen.insert(p.pid))
            .filter(|p| {
                needle.is_empty()
                    || [&p.name, &p.user, &p.command]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect();
        match self.process_sort {
            ProcessSort::Cpu => rows.sort_by(|a, b| b.cpu.total_cmp(&a.cpu)),
            ProcessSort::Memory => rows.sort_by_key(|p| std::cmp::Reverse(p.memory_bytes)),
        }
        rows
    }

    /// Handles an event; returns what to ask the fetch worker for.
    pub fn update(&mut self, event: &Event, now: i64) -> Vec<Request> {
        match event {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.key(k, now),
            Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(_) if m.row == 0 => match tab_at(m.column) {
                    Some(v) => self.switch(v),
                    None => Vec::new(),
                },
                MouseEventKind::Down(_) => self.click(m.column, m.row),
                MouseEventKind::ScrollDown if self.view == View::Metrics => self.select(1),
                MouseEventKind::ScrollUp if self.view == View::Metrics => self.select(-1),
                MouseEventKind::ScrollDown if self.view == View::Incidents => {
                    self.select_incident(1);
                    Vec::new()
                }
                MouseEventKind::ScrollUp if self.view == View::Incidents => {
                    self.select_incident(-1);
                    Vec::new()
                }
                MouseEventKind::ScrollDown if self.view == View::Jobs => self.select_job(1),
                MouseEventKind::ScrollUp if self.view == View::Jobs => self.select_job(-1),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn select(&mut self, by: isize) -> Vec<Request> {
        if self.series.is_empty() {
            return Vec::new();
        }
        let last = self.series.len() as isize - 1;
        self.selected = (self.selected as isize + by).clamp(0, last) as usize;
        self.chart_request().into_iter().collect()
    }

    fn key(&mut self, k: &KeyEvent, now: i64) -> Vec<Request> {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        self.message = None;
        if let Some(text) = &mut self.note {
            match k.code {
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
            return Vec::new();
        }
        if let Some(text) = &mut self.command {
            match k.code {
                KeyCode::Enter => {
                    let line = std::mem::take(text);
                    self.command = None;
                    return self.run_command(line.trim());
                }
                KeyCode::Esc => self.command = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Vec::new();
        }
        if self.filtering {
            let processes = self.view == View::Processes;
            let text = if processes {
                &mut self.process_filter
            } else {
                &mut self.filter
            };
            match k.code {
                KeyCode::Enter => {
                    self.filtering = false;
                    if !processes {
                        self.selected = 0;
                        return vec![Request::Series(self.filter.clone())];
                    }
                }
                KeyCode::Esc => self.filtering = false,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Vec::new();
        }
        if self.help {
            // Any key closes the help, as in k9s; q still quits.
            self.help = false;
            if k.code != KeyCode::Char('q') {
                return Vec::new();
            }
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(':') => self.command = Some(String::new()),
            KeyCode::Tab | KeyCode::BackTab => {
                let at = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                let n = View::ALL.len();
                let next = if k.code == KeyCode::Tab {
                    (at + 1) % n
                } else {
                    (at + n - 1) % n
                };
                return self.switch(View::ALL[next]);
            }
            KeyCode::Char(c @ '1'..='7') => {
                return self.switch(View::ALL[usize::from(c as u8 - b'1')]);
            }
            _ if self.view == View::Metrics => return self.metrics_key(k.code, now),
            _ if self.view == View::Incidents => return self.incidents_key(k.code),
            _ if self.view == View::Jobs => return self.jobs_key(k.code),
            _ if self.view == View::Fleet => return self.fleet_key(k.code),
            KeyCode::Char('/') if self.view == View::Processes => self.filtering = true,
            KeyCode::Char('s') if self.view == View::Processes => {
                self.process_sort = match self.process_sort {
                    ProcessSort::Cpu => ProcessSort::Memory,
                    ProcessSort::Memory => ProcessSort::Cpu,
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Runs a `:` command: a view's name (or its first letter), or `q`.
    fn run_command(&mut self, line: &str) -> Vec<Request> {
        let word = line.to_lowercase();
        if word == "q" || word == "quit" {
            self.quit = true;
            return Vec::new();
        }
        match View::ALL.iter().find(|v| {
            let title = v.title().to_lowercase();
            !word.is_empty() && (title == word || title.starts_with(&word))
        }) {
            Some(&v) => self.switch(v),
            None => {
                let known: Vec<String> =
                    View::ALL.iter().map(|v| v.title().to_lowercase()).collect();
                self.message = Some(format!(
                    "unknown command {line:?}; known: {}, q",
                    known.join(", ")
                ));
                Vec::new()
            }
        }
    }

    fn switch(&mut self, view: View) -> Vec<Request> {
        self.view = view;
        // Until the new view is drawn, no list is under the mouse.
        self.list_area.set(Rect::default());
        if view == View::Metrics && self.series.is_empty() {
            return vec![Request::Series(self.filter.clone())];
        }
        if view == View::Jobs {
            return self.select_job(0);
        }
        if view == View::Incidents {
            return self.incident_chart_request().into_iter().collect();
        }
        Vec::new()
    }

    fn metrics_key(&mut self, code: KeyCode, now: i64) -> Vec<Request> {
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
}

/// The view whose tab is at `column` of the top line (see `ui::draw_tabs`).
pub fn tab_at(column: u16) -> Option<View> {
    let mut x = " ward ".len() as u16;
    for (i, v) in View::ALL.iter().enumerate() {
        let width = format!(" {} {} ", i + 1, v.title()).chars().count() as u16;
        if (x..x + width).contains(&column) {
            return Some(*v);
        }
        x += width;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;
    use ward_shared::MetricKind;

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        })
    }

    fn series(n: u32) -> Vec<SeriesInfo> {
        (0..n)
            .map(|i| SeriesInfo {
                id: i,
                key: format!("test.s{i}"),
                name: format!("test.s{i}"),
                kind: MetricKind::Gauge,
                unit: "1".into(),
            })
            .collect()
    }

    #[test]
    fn the_explorer_filters_selects_zooms_and_pans() {
        let mut app = App::new("sock");
        assert_eq!(
            app.update(&key(KeyCode::Char('2')), 0),
            vec![Request::Series(String::new())]
        );
        app.apply(Update::Series(series(3)));
        // '/' starts the filter; typing then Enter asks for matching series.
        app.update(&key(KeyCode::Char('/')), 0);
        for c in "mem".chars() {
            app.update(&key(KeyCode::Char(c)), 0);
        }
        assert_eq!(
            app.update(&key(KeyCode::Enter), 0),
            vec![Request::Series("mem".into())]
        );
        app.apply(Update::Series(series(3)));
        assert_eq!(
            app.update(&key(KeyCode::Char('j')), 0),
            vec![Request::Chart {
                series: 1,
                end: None,
                span: 300_000
            }]
        );
        assert_eq!(
            app.update(&key(KeyCode::Char('-')), 0),
            vec![Request::Chart {
                series: 1,
                end: None,
                span: 900_000
            }]
        );
        // Panning back moves the end by half a span; forward past now follows now again.
        let now = 10_000_000;
        assert_eq!(
            app.update(&key(KeyCode::Left), now),
            vec![Request::Chart {
                series: 1,
                end: Some(now - 450_000),
                span: 900_000
            }]
        );
        assert_eq!(
            app.update(&key(KeyCode::Right), now),
            vec![Request::Chart {
                series: 1,
                end: None,
                span: 900_000
            }]
        );
        app.update(&key(KeyCode::Char('j')), now);
        app.update(&key(KeyCode::Char('j')), now);
        assert_eq!(app.selected, 2, "selection stops at the last series");
    }

    #[test]
    fn processes_sort_and_filter_and_tab_goes_round() {
        use ward_shared::api::ProcessInfo;
        let p = |pid, name: &str, cpu, mem| ProcessInfo {
            pid,
            name: name.into(),
            user: "root".into(),
            command: name.into(),
            cpu,
            memory_bytes: mem,
        };
        let mut app = App::new("sock");
        app.apply(Update::Processes(ProcessSnapshot {
            ts: 0,
            by_cpu: vec![p(1, "postgres", 0.9, 10), p(2, "nginx", 0.5, 30)],
            by_memory: vec![p(3, "java", 0.1, 90), p(1, "postgres", 0.9, 10)],
        }));
        app.update(&key(KeyCode::Char('3')), 0);
        let pids = |app: &App| {
            app.visible_processes()
                .iter()
                .map(|p| p.pid)
                .collect::<Vec<_>>()
        };
        assert_eq!(pids(&app), vec![1, 2, 3], "by CPU, each process once");
        app.update(&key(KeyCode::Char('s')), 0);
        assert_eq!(pids(&app), vec![3, 2, 1], "by memory");
        app.update(&key(KeyCode::Char('/')), 0);
        for c in "NG".chars() {
            app.update(&key(KeyCode::Char(c)), 0);
        }
        app.update(&key(KeyCode::Enter), 0);
        assert_eq!(pids(&app), vec![2], "filter is case-insensitive");
        assert!(app.filter.is_empty(), "the series filter is untouched");
        app.update(&key(KeyCode::Tab), 0);
        assert_eq!(app.view, View::Gpus);
        app.update(&key(KeyCode::Tab), 0);
        assert_eq!(app.view, View::Incidents);
        app.update(&key(KeyCode::Tab), 0);
        assert_eq!(app.view, View::Jobs);
        app.update(&key(KeyCode::Tab), 0);
        assert_eq!(app.view, View::Fleet);
        app.update(&key(KeyCode::Tab), 0);
        assert_eq!(app.view, View::Overview);
        app.update(&key(KeyCode::BackTab), 0);
        assert_eq!(app.view, View::Fleet);
    }

    fn incident(id: u64, key: &str, active: bool) -> Incident {
        use ward_shared::incident::{IncidentContext, IncidentSource, IncidentState, Severity};
        Incident {
            id,
            key: key.into(),
            title: format!("{key} is wrong"),
            severity: Severity::Warning,
            state: if active {
                IncidentState::Open
            } else {
                IncidentState::Resolved
            },
            source: IncidentSource::Job,
            opened: 1000,
            updated: 1000,
            peak: 1000,
            cleared: None,
            resolved: (!active).then_some(2000),
            signals: Vec::new(),
            context: IncidentContext::default(),
            notes: Vec::new(),
            feedback: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn the_selected_incident_asks_for_its_series_around_its_time() {
        let mut app = App::new("sock");
        let mut i = incident(4, "anomaly:h", true);
        i.opened = 10_000_000;
        i.signals.push(ward_shared::incident::Signal {
            what: "system.cpu.utilization{cpu.mode=\"user\"}".into(),
            observed: 0.99,
            expected_low: Some(0.1),
            expected_high: Some(0.3),
            unit: "1".into(),
            contribution: 1.0,
            model: String::new(),
        });
        app.apply(Update::Incidents(vec![i]));
        let asked = Request::IncidentChart {
            incident: 4,
            key: "system.cpu.utilization{cpu.mode=\"user\"}".into(),
            start: 10_000_000 - 900_000,
            end: None,
        };
        assert_eq!(app.update(&key(KeyCode::Char('5')), 0), vec![asked.clone()]);
        assert_eq!(
            app.live_chart(),
            Some(asked),
            "refreshed while the incident is open"
        );
    }

    #[test]
    fn enter_on_a_fleet_member_watches_it_from_then_on() {
        use crate::fleet::Member;
        use crate::message::HostRow;
        let mut app = App::new("local");
        app.fleet_members = vec![
            Member {
                name: "a".into(),
                address: "10.0.0.1:7070".into(),
                token_env: None,
                ca_file: None,
            },
            Member {
                name: "b".into(),
                address: "10.0.0.2:7070".into(),
                token_env: Some("WARD_TEST_NO_SUCH_VAR".into()),
                ca_file: Some("/etc/ward/ca.pem".into()),
            },
        ];
        let row = |name: &str| HostRow {
            name: name.into(),
            address: String::new(),
            unreachable: None,
            host: name.into(),
            incidents: 0,
            critical: 0,
            anomaly_rate: None,
            worst: None,
            jobs: 0,
        };
        app.apply(Update::Fleet(vec![row("a"), row("b")]));
        app.apply(Update::Incidents(vec![incident(1, "job:x:failed", true)]));
        app.update(&key(KeyCode::Char('7')), 0);
        app.update(&key(KeyCode::Char('j')), 0);
        assert_eq!(
            app.update(&key(KeyCode::Enter), 0),
            vec![Request::Connect {
                address: "10.0.0.2:7070".into(),
                token: None,
                ca_file: Some("/etc/ward/ca.pem".into()),
            }]
        );
        assert_eq!(app.endpoint, "b · 10.0.0.2:7070");
        assert_eq!(app.view, View::Overview);
        assert!(app.incidents.is_empty(), "the last agent's data is gone");
        assert_eq!(app.fleet.len(), 2, "the fleet stays");
        assert_eq!(app.message.as_deref(), Some("watching b (10.0.0.2:7070)"));
    }

    #[test]
    fn incidents_are_acted_on_from_the_keyboard() {
        let mut app = App::new("sock");
        app.apply(Update::Incidents(vec![
            incident(7, "job:a:failed", true),
            incident(5, "job:b:missed", true),
            incident(2, "job:c:failed", false),
        ]));
        app.update(&key(KeyCode::Char('5')), 0);
        assert_eq!(app.view, View::Incidents);
        assert_eq!(app.visible_incidents().len(), 2, "resolved ones hidden");
        app.update(&key(KeyCode::Char('j')), 0);
        assert_eq!(
            app.update(&key(KeyCode::Char('a')), 0),
            vec![Request::Act {
                incident: 5,
                action: Action::Acknowledge
            }]
        );
        assert_eq!(
            app.update(&key(KeyCode::Char('x')), 0),
            vec![Request::Act {
                incident: 5,
                action: Action::Feedback(Feedback::FalsePositive)
            }]
        );
        // A note is typed at the bottom, then sent; Esc drops it.
        app.update(&key(KeyCode::Char('n')), 0);
        for c in "disk swap".chars() {
            app.update(&key(KeyCode::Char(c)), 0);
        }
        assert_eq!(app.note.as_deref(), Some("disk swap"));
        assert_eq!(
            app.update(&key(KeyCode::Enter), 0),
            vec![Request::Act {
                incident: 5,
                action: Action::Note("disk swap".into())
            }]
        );
        app.update(&key(KeyCode::Char('n')), 0);
        app.update(&key(KeyCode::Char('q')), 0);
        assert!(!app.quit, "q is text while a note is typed");
        app.update(&key(KeyCode::Esc), 0);
        assert!(app.note.is_none());
        // The cursor stays on its incident when the list changes under it.
        app.apply(Update::Incidents(vec![
            incident(9, "job:d:failed", true),
            incident(7, "job:a:failed", true),
            incident(5, "job:b:missed", true),
        ]));
        assert_eq!(app.selected_incident().map(|i| i.id), Some(5));
        app.update(&key(KeyCode::Char('v')), 0);
        assert_eq!(app.visible_incidents().len(), 3);
        assert_eq!(
            app.update(&key(KeyCode::Char('r')), 0),
            vec![Request::Act {
                incident: 9,
                action: Action::Resolve
            }]
        );
    }

    #[test]
    fn colon_commands_and_tab_clicks() {
        use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mut app = App::new("sock");
        let type_line = |app: &mut App, line: &str| {
            app.update(&key(KeyCode::Char(':')), 0);
            for c in line.chars() {
                app.update(&key(KeyCode::Char(c)), 0);
            }
            app.update(&key(KeyCode::Enter), 0)
        };
        assert_eq!(
            type_line(&mut app, "metrics"),
            vec![Request::Series(String::new())]
        );
        assert_eq!(app.view, View::Metrics);
        type_line(&mut app, "g");
        assert_eq!(app.view, View::Gpus);
        type_line(&mut app, "hosts");
        assert_eq!(
            app.message.as_deref(),
            Some(
                r#"unknown command "hosts"; known: overview, metrics, processes, gpus, incidents, jobs, fleet, q"#
            )
        );
        assert_eq!(app.view, View::Gpus);
        let click = |column| {
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column,
                row: 0,
                modifiers: KeyModifiers::NONE,
            })
        };
        // " ward " then " 1 Overview " then " 2 Metrics " ...
        app.update(&click(8), 0);
        assert_eq!(app.view, View::Overview);
        app.update(&click(20), 0);
        assert_eq!(app.view, View::Metrics);
        type_line(&mut app, "q");
        assert!(app.quit);
    }

    #[test]
    fn help_quit_and_stale_data() {
        let mut app = App::new("sock");
        app.update(&key(KeyCode::Char('?')), 0);
        assert!(app.help);
        app.update(&key(KeyCode::Char('x')), 0);
        assert!(!app.help && !app.quit, "any key closes the help");
        app.apply(Update::Failed(
            "the agent at sock did not answer in time".into(),
        ));
        assert!(app.stale.is_some());
        app.apply(Update::Processes(ProcessSnapshot::default()));
        assert!(app.stale.is_none(), "fresh data clears the warning");
        app.update(&key(KeyCode::Char('q')), 0);
        assert!(app.quit);
    }
}
