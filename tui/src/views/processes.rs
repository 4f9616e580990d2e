//! The processes view: the top processes by CPU and by memory, each once,
//! sorted and filtered; and the overview's top-by-CPU table.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Row, Table};
use ward_shared::api::{ProcessInfo, ProcessSnapshot};

use super::widgets::{bytes, header};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessSort {
    #[default]
    Cpu,
    Memory,
}

/// What the processes view holds.
#[derive(Debug, Default)]
pub struct ProcessesView {
    pub snapshot: ProcessSnapshot,
    /// The `/` filter (name, user or command), and whether it is being typed.
    pub filter: String,
    pub filtering: bool,
    pub sort: ProcessSort,
}

impl ProcessesView {
    /// The processes shown: the top ones by CPU and by memory, each once,
    /// filtered and sorted as asked.
    pub fn visible(&self) -> Vec<&ProcessInfo> {
        let mut seen = std::collections::HashSet::new();
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<_> = self
            .snapshot
            .by_cpu
            .iter()
            .chain(&self.snapshot.by_memory)
            .filter(|p| seen.insert(p.pid))
            .filter(|p| {
                needle.is_empty()
                    || [&p.name, &p.user, &p.command]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect();
        match self.sort {
            ProcessSort::Cpu => rows.sort_by(|a, b| b.cpu.total_cmp(&a.cpu)),
            ProcessSort::Memory => rows.sort_by_key(|p| std::cmp::Reverse(p.memory_bytes)),
        }
        rows
    }

    /// A key while the filter is typed.
    pub fn filter_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Enter | KeyCode::Esc => self.filtering = false,
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
    }

    pub fn key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Char('/') => self.filtering = true,
            KeyCode::Char('s') => {
                self.sort = match self.sort {
                    ProcessSort::Cpu => ProcessSort::Memory,
                    ProcessSort::Memory => ProcessSort::Cpu,
                }
            }
            _ => {}
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        let rows: Vec<Row> = self
            .visible()
            .into_iter()
            .map(|p| {
                let mut cells = usage(p);
                cells.extend([p.name.clone(), p.command.clone()]);
                Row::new(cells)
            })
            .collect();
        let sort = match self.sort {
            ProcessSort::Cpu => "by CPU ▼",
            ProcessSort::Memory => "by memory ▼",
        };
        let filter = if self.filter.is_empty() {
            String::new()
        } else {
            format!(" matching {:?}", self.filter)
        };
        let title =
            format!("Top processes {sort}{filter} · s sort, / filter (command lines redacted)");
        let widths = [
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Min(10),
        ];
        let table = Table::new(rows, widths)
            .header(header(&["pid", "cpu", "memory", "user", "name", "command"]))
            .block(Block::new().borders(Borders::ALL).title(title));
        f.render_widget(table, area);
    }

    /// The overview's table: the top processes by CPU.
    pub fn draw_top(&self, f: &mut Frame, area: Rect) {
        let rows: Vec<Row> = self
            .snapshot
            .by_cpu
            .iter()
            .map(|p| {
                let mut cells = usage(p);
                cells.push(if p.command.is_empty() {
                    p.name.clone()
                } else {
                    p.command.clone()
                });
                Row::new(cells)
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
        .header(header(&["pid", "cpu", "memory", "user", "command"]))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title("Top processes by CPU"),
        );
        f.render_widget(table, area);
    }
}

/// A process's pid, CPU, memory and user: the cells every process table
/// starts with.
fn usage(p: &ProcessInfo) -> Vec<String> {
    vec![
        p.pid.to_string(),
        format!("{:.1}%", p.cpu * 100.0),
        bytes(p.memory_bytes),
        p.user.clone(),
    ]
}
