//! The GPUs view: every GPU and MIG instance with utilization, memory,
//! temperature, power, clocks, ECC errors and throttle reasons, and the XID
//! history; and the overview's GPU box. It draws the GPU state as the agent
//! last sent it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph, Row, Table};
use ward_shared::api::GpuState;

use super::widgets::{bytes, utc};

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

/// The GPUs view: every GPU and MIG instance, and the XID history.
pub fn draw(g: &GpuState, f: &mut Frame, area: Rect) {
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

/// The overview's GPU box: each device's utilization and memory, or why there are none.
pub fn draw_summary(g: &GpuState, f: &mut Frame, area: Rect) {
    let text = match (&g.unavailable, g.devices.is_empty()) {
        (Some(why), _) => format!("✗ unavailable: {why}"),
        (None, true) => "no GPU readings yet".to_string(),
        (None, false) => g
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
    let title = format!("GPUs · XID errors: {}", g.xid_history.len());
    f.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::ALL).title(title)),
        area,
    );
}
