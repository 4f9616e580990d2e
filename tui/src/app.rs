//! What the dashboard holds, and how keys and data change it.
//!
//! Each view keeps its own state in its module (`crate::views`); the app
//! holds what is shared (the agent's status, the view shown, the `:`
//! command, the help) and routes: [`App::update`] takes a key or mouse
//! event to the view it is for, and may ask the fetch worker for
//! something; [`App::apply`] takes data from the workers to the view that
//! shows it. Nothing else changes the state: drawing reads it.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::layout::{Constraint, Layout, Rect};
use ward_shared::api::GpuState;
use ward_shared::status::AgentStatus;

use crate::message::{Overview, Request, Update};
use crate::views::fleet::FleetView;
use crate::views::incidents::{IncidentChart, IncidentsView};
use crate::views::jobs::JobsView;
use crate::views::metrics::{ChartData, MetricsView};
use crate::views::processes::ProcessesView;

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
#[derive(Debug)]
pub struct App {
    pub view: View,
    pub help: bool,
    pub endpoint: String,
    pub status: Option<AgentStatus>,
    /// The last fetch error, until a fetch succeeds again.
    pub stale: Option<String>,
    /// The `:` command being typed.
    pub command: Option<String>,
    /// What the last command said, until the next key.
    pub message: Option<String>,
    pub quit: bool,
    /// The terminal's size, from resize events: where a click lands.
    pub size: Rect,
    pub overview: Overview,
    pub metrics: MetricsView,
    pub processes: ProcessesView,
    pub gpus: GpuState,
    pub incidents: IncidentsView,
    pub jobs: JobsView,
    pub fleet: FleetView,
}

/// The view's area on a screen of `size`: between the tabs and the status line.
pub fn main_area(size: Rect) -> Rect {
    let [_, main, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(size);
    main
}

impl App {
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            view: View::Overview,
            help: false,
            endpoint: endpoint.into(),
            status: None,
            stale: None,
            command: None,
            message: None,
            quit: false,
            size: Rect::default(),
            overview: Overview::default(),
            metrics: MetricsView::default(),
            processes: ProcessesView::default(),
            gpus: GpuState::default(),
            incidents: IncidentsView::default(),
            jobs: JobsView::default(),
            fleet: FleetView::default(),
        }
    }

    /// Takes in what a worker sent.
    pub fn apply(&mut self, update: Update) {
        if !matches!(update, Update::Failed(_)) {
            self.stale = None;
        }
        match update {
            Update::Status(s) => self.status = Some(*s),
            Update::Overview(o) => self.overview = o,
            Update::Processes(p) => self.processes.snapshot = p,
            Update::Gpus(g) => self.gpus = g,
            Update::Series(s) => self.metrics.set_series(s),
            Update::Chart {
                series,
                start,
                end,
                points,
            } => {
                self.metrics.chart = Some(ChartData {
                    series,
                    start,
                    end,
                    points,
                });
            }
            Update::Incidents(i) => self.incidents.set(i),
            Update::Jobs(j) => self.jobs.set(j),
            Update::JobRuns { job, runs } => self.jobs.runs = Some((job, runs)),
            Update::IncidentChart {
                incident,
                key,
                start,
                end,
                points,
            } => {
                self.incidents.chart = Some(IncidentChart {
                    incident,
                    key,
                    start,
                    end,
                    points,
                })
            }
            Update::Done(what) => self.message = Some(what),
            Update::Fleet(rows) => self.fleet.set(rows),
            Update::Failed(e) => self.stale = Some(e),
        }
    }

    /// The chart to ask for again each second while it follows now.
    pub fn live_chart(&self) -> Option<Request> {
        match self.view {
            View::Metrics if self.metrics.end.is_none() => self.metrics.chart_request(),
            View::Incidents => self.incidents.chart_request(),
            _ => None,
        }
    }

    /// Handles an event; returns what to ask the fetch worker for.
    pub fn update(&mut self, event: &Event, now: i64) -> Vec<Request> {
        match event {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.key(k, now),
            Event::Resize(width, height) => {
                self.size = Rect::new(0, 0, *width, *height);
                Vec::new()
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(_) if m.row == 0 => match tab_at(m.column) {
                    Some(v) => self.switch(v),
                    None => Vec::new(),
                },
                MouseEventKind::Down(_) => self.click(m.column, m.row),
                MouseEventKind::ScrollDown => self.scroll(1),
                MouseEventKind::ScrollUp => self.scroll(-1),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The mouse wheel moves the cursor of the view's list.
    fn scroll(&mut self, by: isize) -> Vec<Request> {
        match self.view {
            View::Metrics => self.metrics.select(by),
            View::Incidents => {
                self.incidents.select(by);
                Vec::new()
            }
            View::Jobs => self.jobs.select(by),
            _ => Vec::new(),
        }
    }

    /// Selects the row under a click in the view's list.
    fn click(&mut self, column: u16, row: u16) -> Vec<Request> {
        let area = main_area(self.size);
        match self.view {
            View::Metrics => self.metrics.click(area, column, row),
            View::Incidents => self.incidents.click(area, column, row),
            View::Jobs => self.jobs.click(area, column, row),
            View::Fleet => {
                self.fleet.click(area, column, row);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn key(&mut self, k: &KeyEvent, now: i64) -> Vec<Request> {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        self.message = None;
        if self.incidents.note.is_some() {
            return self.incidents.note_key(k.code);
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
        if self.view == View::Processes && self.processes.filtering {
            self.processes.filter_key(k.code);
            return Vec::new();
        }
        if self.metrics.filtering {
            return self.metrics.filter_key(k.code);
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
            code => match self.view {
                View::Metrics => return self.metrics.key(code, now),
                View::Incidents => return self.incidents.key(code),
                View::Jobs => return self.jobs.key(code),
                View::Fleet => {
                    if let Some(member) = self.fleet.key(code) {
                        return self.watch(member);
                    }
                }
                View::Processes => self.processes.key(code),
                View::Overview | View::Gpus => {}
            },
        }
        Vec::new()
    }

    /// Watches a fleet member from now on: what was shown was the last
    /// agent's, so everything but the fleet starts afresh.
    fn watch(&mut self, member: crate::fleet::Member) -> Vec<Request> {
        let token = member
            .token_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty());
        let (fleet, size) = (std::mem::take(&mut self.fleet), self.size);
        *self = App::new(format!("{} · {}", member.name, member.address));
        (self.fleet, self.size) = (fleet, size);
        self.fleet.selected = 0;
        self.message = Some(format!("watching {} ({})", member.name, member.address));
        vec![Request::Connect {
            address: member.address,
            token,
            ca_file: member.ca_file,
        }]
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
        match view {
            View::Metrics if self.metrics.series.is_empty() => {
                vec![Request::Series(self.metrics.filter.clone())]
            }
            View::Jobs => self.jobs.select(0),
            View::Incidents => self.incidents.chart_request().into_iter().collect(),
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
    use crate::message::Action;
    use ratatui::crossterm::event::KeyEventState;
    use ward_shared::MetricKind;
    use ward_shared::api::{ProcessSnapshot, SeriesInfo};
    use ward_shared::incident::{Feedback, Incident};

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
        assert_eq!(
            app.metrics.selected, 2,
            "selection stops at the last series"
        );
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
            app.processes
                .visible()
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
        assert!(
            app.metrics.filter.is_empty(),
            "the series filter is untouched"
        );
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
        use ward_shared::incident::IncidentState;
        Incident {
            state: if active {
                IncidentState::Open
            } else {
                IncidentState::Resolved
            },
            resolved: (!active).then_some(2000),
            ..ward_shared::fixtures::incident(id, key)
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
        app.fleet.members = vec![
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
        assert!(
            app.incidents.all.is_empty(),
            "the last agent's data is gone"
        );
        assert_eq!(app.fleet.rows.len(), 2, "the fleet stays");
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
        assert_eq!(app.incidents.visible().len(), 2, "resolved ones hidden");
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
        assert_eq!(app.incidents.note.as_deref(), Some("disk swap"));
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
        assert!(app.incidents.note.is_none());
        // The cursor stays on its incident when the list changes under it.
        app.apply(Update::Incidents(vec![
            incident(9, "job:d:failed", true),
            incident(7, "job:a:failed", true),
            incident(5, "job:b:missed", true),
        ]));
        assert_eq!(app.incidents.selected_incident().map(|i| i.id), Some(5));
        app.update(&key(KeyCode::Char('v')), 0);
        assert_eq!(app.incidents.visible().len(), 3);
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
