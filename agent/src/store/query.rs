//! Range queries: pick the tier for the step, aggregate into buckets.
//!
//! A query with a step reads the coarsest tier the step allows (1 h rows for
//! steps of an hour or more, 1 min rows from a minute, raw below), falling
//! to a coarser tier when the finer one no longer reaches back to the start.
//! The end of the range that the coarse tier has not rolled up yet is read
//! from the finer tiers, so the newest bucket is never missing.
//!
//! Buckets are aligned to multiples of the step since the epoch, so that a
//! chart does not shimmer as it pans; each point is stamped with its
//! bucket's start. Buckets without data are left out.

pub use ward_shared::api::Aggregation;
use ward_shared::{SeriesId, TimestampMs};

use super::series::{Agg, ROLLUP_TIERS, counter_increase, floor_to};
use super::{Store, StoreError};

/// A range of one series: `[start, end]`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub series: SeriesId,
    pub start: TimestampMs,
    pub end: TimestampMs,
    /// Bucket width in ms; `None` returns the raw samples.
    pub step: Option<i64>,
    pub agg: Aggregation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts: TimestampMs,
    pub value: f64,
}

fn tier_for_step(step: i64) -> u8 {
    match step {
        s if s >= ROLLUP_TIERS[1].width_ms => 2,
        s if s >= ROLLUP_TIERS[0].width_ms => 1,
        _ => 0,
    }
}

impl Store {
    pub fn query(&self, q: &Query) -> Result<Vec<Point>, StoreError> {
        let state = self
            .series
            .get(q.series.0 as usize)
            .ok_or(StoreError::UnknownSeries(q.series))?;
        let counter = state.is_counter();
        if q.agg == Aggregation::Rate && !counter {
            return Err(StoreError::RateOfGauge(state.desc.key.clone()));
        }
        if q.end < q.start {
            return Ok(Vec::new());
        }
        match q.step {
            Some(step) if step > 0 => self.bucketed(q, step, counter),
            _ => self.raw_points(q, counter),
        }
    }

    /// Every raw sample with `after < ts <= until`, series by series in id
    /// order, each series' samples in time order; returns how many.
    pub fn raw_between(
        &self,
        after: TimestampMs,
        until: TimestampMs,
        mut each: impl FnMut(SeriesId, &ward_shared::SeriesDesc, TimestampMs, f64),
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for (i, state) in self.series.iter().enumerate() {
            if state.last_ts.is_none_or(|last| last <= after) {
                continue;
            }
            let id = SeriesId(i as u32);
            self.raw_rows(id, after.saturating_add(1), until, |ts, v| {
                n += 1;
                each(id, &state.desc, ts, v);
            })?;
        }
        Ok(n)
    }

    /// The newest sample of every series that has one since the store opened.
    pub fn latest(
        &self,
    ) -> impl Iterator<Item = (&ward_shared::SeriesDesc, TimestampMs, f64)> + '_ {
        self.series
            .iter()
            .filter_map(|s| Some((&s.desc, s.last_ts?, s.last_value?)))
    }

    /// The oldest raw sample still kept, if any.
    pub fn oldest_raw(&self) -> Option<TimestampMs> {
        self.oldest(0)
    }

    /// End of the newest raw window dropped by retention or the disk budget
    /// since the store was opened, if any was.
    pub fn raw_dropped_through(&self) -> Option<TimestampMs> {
        self.raw_dropped_through
    }

    fn raw_points(&self, q: &Query, counter: bool) -> Result<Vec<Point>, StoreError> {
        let rate = q.agg == Aggregation::Rate || (counter && q.agg == Aggregation::Avg);
        let mut out = Vec::new();
        let mut prev: Option<(i64, f64)> = None;
        let from = if rate {
            floor_to(q.start, self.window_ms)
        } else {
            q.start
        };
        self.raw_rows(q.series, from, q.end, |ts, v| {
            if rate {
                if ts >= q.start
                    && let Some((pt, pv)) = prev
                {
                    out.push(Point {
                        ts,
                        value: counter_increase(pv, v) * 1000.0 / (ts - pt) as f64,
                    });
                }
                prev = Some((ts, v));
            } else {
                out.push(Point { ts, value: v });
            }
        })?;
        Ok(out)
    }

    fn bucketed(&self, q: &Query, step: i64, counter: bool) -> Result<Vec<Point>, StoreError> {
        let mut tier = tier_for_step(step);
        // Fall back to a coarser tier when this one no longer reaches the
        // start and the coarser one holds whole rows from before it (the
        // finer tier's retention is shorter).
        while tier < 2 {
            let here = self.oldest(tier);
            let coarser_width = ROLLUP_TIERS[usize::from(tier)].width_ms;
            let short = here.is_none_or(|h| h > q.start);
            let older = self
                .oldest(tier + 1)
                .is_some_and(|c| here.is_none_or(|h| c + coarser_width <= h));
            if short && older {
                tier += 1;
            } else {
                break;
            }
        }

        let mut buckets: Vec<Agg> = Vec::new();
        let mut add = |agg: Agg| {
            let bucket = floor_to(agg.start, step);
            match buckets.last_mut() {
                Some(last) if last.start == bucket => last.merge(&agg),
                _ => buckets.push(Agg {
                    start: bucket,
                    ..agg
                }),
            }
        };

        // Coarse to fine: each finer tier fills in after what the coarser covered.
        let mut from = q.start;
        for t in (1..=tier).rev() {
            if from > q.end {
                break;
            }
            let width = ROLLUP_TIERS[usize::from(t) - 1].width_ms;
            let mut covered = from;
            self.rollup_rows(q.series, t, floor_to(from, width), q.end, |start, row| {
                add(Agg::from_row(start, row));
                covered = covered.max(start + width);
            })?;
            from = covered;
        }
        if from <= q.end {
            let mut prev: Option<(i64, f64)> = None;
            let read_from = if counter {
                floor_to(from, self.window_ms)
            } else {
                from
            };
            self.raw_rows(q.series, read_from, q.end, |ts, v| {
                let agg = if counter {
                    let (inc, span) = prev.map_or((0.0, 0.0), |(pt, pv)| {
                        (counter_increase(pv, v), (ts - pt) as f64)
                    });
                    prev = Some((ts, v));
                    Agg::of_sample(ts, v, inc, span)
                } else {
                    Agg::of_sample(ts, v, v, 0.0)
                };
                if ts >= from {
                    add(agg);
                }
            })?;
        }

        let rate = q.agg == Aggregation::Rate || (counter && q.agg == Aggregation::Avg);
        Ok(buckets
            .iter()
            .filter_map(|a| {
                let value = if rate {
                    if a.span_ms <= 0.0 {
                        return None;
                    }
                    a.sum * 1000.0 / a.span_ms
                } else {
                    match q.agg {
                        Aggregation::Min => a.min,
                        Aggregation::Max => a.max,
                        Aggregation::Last => a.last,
                        Aggregation::Avg | Aggregation::Rate => a.sum / a.count,
                    }
                };
                Some(Point { ts: a.start, value })
            })
            .collect())
    }
}
