//! The fleet view: every agent of the fleet file, worst first
//! (unreachable, critical incidents, open incidents, anomaly rate); Enter
//! watches one.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use super::widgets::{draw_selectable, row_at};
use crate::fleet::Member;
use crate::message::HostRow;

/// What the fleet view holds.
#[derive(Debug, Default)]
pub struct FleetView {
    /// The fleet file's agents (empty without one).
    pub members: Vec<Member>,
    /// How each is doing, worst first.
    pub rows: Vec<HostRow>,
    pub selected: usize,
}

impl FleetView {
    /// Takes in the fleet worker's rows, keeping the cursor on its agent.
    pub fn set(&mut self, rows: Vec<HostRow>) {
        let on = self.rows.get(self.selected).map(|r| r.name.clone());
        self.rows = rows;
        self.selected = on
            .and_then(|n| self.rows.iter().position(|r| r.name == n))
            .unwrap_or(0);
    }

    /// Moves the cursor; Enter gives the member to watch.
    pub fn key(&mut self, code: KeyCode) -> Option<Member> {
        let last = self.rows.len().saturating_sub(1) as isize;
        let by = match code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::PageDown => 10,
            KeyCode::PageUp => -10,
            KeyCode::Enter => return self.chosen(),
            _ => return None,
        };
        self.selected = (self.selected as isize + by).clamp(0, last) as usize;
        None
    }

    /// The member of the selected row.
    fn chosen(&self) -> Option<Member> {
        let row = self.rows.get(self.selected)?;
        self.members.iter().find(|m| m.name == row.name).cloned()
    }

    /// Selects the agent under a click in the view's `area`.
    pub fn click(&mut self, area: Rect, column: u16, row: u16) {
        if let Some(i) = row_at(area, true, self.selected, column, row)
            && i < self.rows.len()
        {
            self.selected = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        let block = Block::new().borders(Borders::ALL).title(format!(
            "Fleet ({} agents), worst first · Enter to watch one",
            self.rows.len()
        ));
        if self.members.is_empty() {
            let text = "No fleet file. `ward --fleet FILE` watches many agents; FILE is TOML:\n\n[[agent]]\nname = \"db-7\"\naddress = \"10.0.0.7:7070\"\ntoken_env = \"WARD_TOKEN_DB\"   # optional";
            f.render_widget(Paragraph::new(text).block(block), area);
            return;
        }
        let rows: Vec<Row> = self
            .rows
            .iter()
            .map(|r| {
                let (state, style) = match (&r.unreachable, r.critical, r.incidents) {
                    (Some(_), ..) => ("✗ down".to_string(), Style::new().fg(Color::Red)),
                    (None, c, _) if c > 0 => {
                        (format!("‼ {c} critical"), Style::new().fg(Color::Red))
                    }
                    (None, _, n) if n > 0 => {
                        (format!("! {n} open"), Style::new().fg(Color::Yellow))
                    }
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
        let selected = (!self.rows.is_empty()).then_some(self.selected);
        draw_selectable(f, area, table, &header, selected);
    }
}
