//! A heavy writer for the crash test: ingests 50 series as fast as it can,
//! flushing every 20 ticks and printing `durable <tick>` once a flush has
//! returned, until it is killed. Restarted on the same directory, it goes on
//! after the last tick the store holds.
//!
//! Tick `t` of series `s` is stamped `BASE + t * 1000` and holds `value(s, t)`.

use std::io::Write;
use std::path::PathBuf;

use ward_agent::store::{Aggregation, Query, Store, StoreSettings};
use ward_shared::{Labels, Sample, SeriesDesc, SeriesKey};

pub const BASE: i64 = 1_700_000_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: store-writer DIR")?
        .into();
    let mut store = Store::open(&dir, StoreSettings::default())?;
    let mut ids = Vec::new();
    for s in 0..50 {
        let key = SeriesKey::new("crash.series", Labels::new([("n", s.to_string())])?)?;
        ids.push(store.register(SeriesDesc::gauge(key, "1"))?);
    }
    let last = store
        .query(&Query {
            series: ids[0],
            start: BASE,
            end: i64::MAX,
            step: None,
            agg: Aggregation::Last,
        })?
        .last()
        .map(|p| (p.ts - BASE) / 1000);
    let mut tick = last.map_or(0, |t| t + 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {tick}")?;
    out.flush()?;
    let mut batch = Vec::with_capacity(ids.len());
    loop {
        batch.clear();
        for (s, &id) in ids.iter().enumerate() {
            batch.push(Sample {
                series: id,
                ts: BASE + tick * 1000,
                value: ((s as i64 * 31 + tick * 7) % 1000) as f64 / 4.0,
            });
        }
        store.append(&batch)?;
        if tick % 20 == 19 {
            store.flush()?;
            writeln!(out, "durable {tick}")?;
            out.flush()?;
        }
        tick += 1;
    }
}
