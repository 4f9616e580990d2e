//! What every view draws with: numbers and times as people write them,
//! severities and states that read without colour, and the selectable
//! table with the arithmetic that places a mouse click on its rows.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Row, Table, TableState};
use ward_shared::incident::{IncidentState, Severity};
use ward_shared::status::AgentStatus;

pub use ward_shared::time::utc;

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
pub fn screen_now(status: Option<&AgentStatus>) -> i64 {
    status.map_or(0, |s| s.updated)
}

/// An axis label: 84.0M, 2.5k, 0.25.
pub fn si(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.1}k", v / 1e3),
        _ => num(v),
    }
}

/// A measured value, short: 120000, 3.5, 0.25.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A bold header row.
pub fn header(cells: &[&'static str]) -> Row<'static> {
    Row::new(cells.to_vec()).style(Style::new().add_modifier(Modifier::BOLD))
}

/// A list the cursor moves in: bold `header`, the selected row reversed
/// and marked ▶. Where its rows land is [`row_at`]'s to say.
pub fn draw_selectable(
    f: &mut Frame,
    area: Rect,
    table: Table,
    header_cells: &[&'static str],
    selected: Option<usize>,
) {
    let table = table
        .header(header(header_cells))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶");
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
}

/// The row of a bordered list in `area` under a click at (`column`,
/// `row`), as drawn with `selected` selected: a list drawn afresh scrolls
/// just far enough to show the selected row, as ratatui's tables and lists
/// do from a fresh state. `header` is whether a header line comes first.
pub fn row_at(area: Rect, header: bool, selected: usize, column: u16, row: u16) -> Option<usize> {
    let first = area.y + 1 + u16::from(header);
    let inside = column >= area.x
        && column < area.x + area.width
        && row >= first
        && row < area.y + area.height.saturating_sub(1);
    if !inside {
        return None;
    }
    let rows = usize::from(area.height.saturating_sub(2 + u16::from(header))).max(1);
    let offset = selected.saturating_sub(rows - 1);
    Some(offset + usize::from(row - first))
}

/// Column widths for an incident row, with severity and state in words or
/// (`compact`) as symbols.
pub fn incident_widths(compact: bool) -> [Constraint; 4] {
    let (sev, state) = if compact { (1, 1) } else { (10, 10) };
    [
        Constraint::Length(sev),
        Constraint::Length(state),
        Constraint::Length(14),
        Constraint::Min(20),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_click_lands_on_the_row_drawn_there_even_when_scrolled() {
        let area = Rect::new(0, 1, 40, 12); // 10 rows inside the border, 9 under a header
        assert_eq!(row_at(area, true, 0, 5, 3), Some(0));
        assert_eq!(row_at(area, true, 0, 5, 2), None, "the header");
        assert_eq!(row_at(area, true, 0, 5, 12), None, "the bottom border");
        assert_eq!(row_at(area, true, 0, 45, 5), None, "beside the list");
        // Row 20 selected: rows 12 to 20 are shown, 20 on the last line.
        assert_eq!(row_at(area, true, 20, 5, 11), Some(20));
        assert_eq!(row_at(area, false, 20, 5, 2), Some(11));
    }
}
