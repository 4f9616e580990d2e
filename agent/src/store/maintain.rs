//! Keeping the store in shape: sealing heads and rollup intervals into
//! chunks (one atomic batch, then a fresh log), and maintenance by the
//! clock: sealing windows gone quiet, dropping what is past its retention,
//! and staying within the disk budget, oldest data first.

use super::*;

impl Store {
    /// Seals every head and every rollup interval that ends by `until` into
    /// chunks, in one atomic batch, then starts a new log.
    ///
    /// A seal's working memory is a few large buffers (the series' states
    /// before it, each block file's chunks, the new snapshot), not a few
    /// allocations per series: freed whole, they leave no holes behind in
    /// the heap for the allocations made meanwhile to pin.
    pub(super) fn seal(&mut self, until: i64) -> Result<(), StoreError> {
        // All or nothing: a seal that fails half-way (a full disk) leaves the
        // heads, rollups and sizes as they were, to be sealed on a later try;
        // bytes already appended to a block file are never indexed. The heads
        // are read, not changed, until the seal has held, and then start over
        // in the buffers they have; the rollups are changed, so the series'
        // states are written aside first, as a snapshot would keep them.
        let mut before = Vec::with_capacity(usize::try_from(self.snapshot_bytes).unwrap_or(0));
        let mut ends = Vec::with_capacity(self.series.len());
        for state in &self.series {
            state.write_snapshot(&mut before);
            ends.push(before.len());
        }
        let saved = (self.sizes.clone(), self.oldest_on_disk);
        let out = self.seal_now(until);
        match out {
            Ok(()) => self.series.iter_mut().for_each(|s| s.head.restart()),
            Err(_) => {
                let mut start = 0;
                for (i, (state, end)) in self.series.iter_mut().zip(ends).enumerate() {
                    if let Err(e) = state.restore(&before[start..end]) {
                        // Written just above by the same code: not reached.
                        error!(series = i, error = %e, "a failed seal could not put a series' rollups back");
                    }
                    start = end;
                }
                (self.sizes, self.oldest_on_disk) = saved;
            }
        }
        out
    }

    pub(super) fn seal_now(&mut self, until: i64) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        let mut done = Vec::new();
        // Chunks by (tier, window): one buffer of their bytes, back to back,
        // and each one's series, first timestamp and length.
        type Sealed = (Vec<u8>, Vec<(SeriesId, i64, usize)>);
        let mut sealed: BTreeMap<(u8, i64), Sealed> = BTreeMap::new();
        for (i, state) in self.series.iter_mut().enumerate() {
            let id = SeriesId(i as u32);
            state
                .close_head(self.window_ms, &mut done)
                .map_err(|e| StoreError::Corrupt(format!("head of series {id}: {e}")))?;
            state.close_rollups(until, &mut done);
            for c in done.drain(..) {
                let (bytes, chunks) = sealed.entry((c.tier, c.window)).or_default();
                bytes.extend_from_slice(&c.bytes);
                chunks.push((id, c.first_ts, c.bytes.len()));
            }
        }
        // Chunk bytes first, synced; then the index that points at them.
        let mut count = 0usize;
        for (&(tier, window), (bytes, chunks)) in &sealed {
            let lens: Vec<usize> = chunks.iter().map(|&(_, _, len)| len).collect();
            let refs = self.blocks.append(tier, window, bytes, &lens)?;
            let entries: Vec<Entry> = chunks
                .iter()
                .zip(refs)
                .map(|(&(series, first_ts, _), at)| Entry {
                    series,
                    first_ts,
                    at,
                })
                .collect();
            if let Some((key, value)) = self.index_group(tier, window, &entries) {
                batch.insert(&key, &value);
            }
            count += entries.len();
        }
        drop(sealed);
        let generation = self.snapshot_generation + 1;
        let size_hint = usize::try_from(self.snapshot_bytes).unwrap_or(0);
        let mut snapshot = Snapshot::new(self.series.len(), size_hint);
        for (i, state) in self.series.iter().enumerate() {
            snapshot.add(i as u32, |out| state.write_snapshot(out));
        }
        self.snapshot_bytes = self.snapshots.write(generation, snapshot)?;
        let sealed_until = until.max(self.sealed_until);
        batch.insert(META_SEALED, &sealed_until.to_le_bytes());
        batch.insert(META_SNAPSHOT, &generation.to_le_bytes());
        self.kv.apply(batch)?;
        self.kv.flush()?;
        self.index_dirty = false;
        self.snapshot_generation = generation;
        self.snapshots.remove_others(generation)?;
        self.wal.rotate()?;
        self.sealed_until = sealed_until;
        self.stats.seals += 1;
        debug!(until, chunks = count, "sealed heads");
        Ok(())
    }

    /// Seals everything accepted so far, so that it is all in chunks and the
    /// log is empty. Samples older than the newest sealed one are refused after.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let Some(last) = self.series.iter().filter_map(|s| s.last_ts).max() else {
            return Ok(());
        };
        if last >= self.sealed_until {
            self.seal(last + 1)?;
        }
        Ok(())
    }

    /// Seals a window the clock has left behind, drops data past its
    /// retention, and keeps the store within its disk budget.
    pub fn maintain(&mut self, now: TimestampMs) -> Result<MaintenanceReport, StoreError> {
        let mut report = MaintenanceReport::default();
        if let Some(window) = self.window
            && now >= window + self.window_ms + LATE_GRACE_MS
        {
            self.seal(window + self.window_ms)?;
            self.window = None;
            report.sealed = true;
        }
        let retentions = [
            self.opts.raw_retention,
            self.opts.minute_retention,
            self.opts.hour_retention,
        ];
        for (tier, retention) in retentions.iter().enumerate() {
            let tier = tier as u8;
            let span = self.tier_window_ms(tier);
            let cutoff =
                now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            let expired: Vec<i64> = self
                .sizes
                .range((tier, i64::MIN)..(tier, i64::MAX))
                .map(|(&(_, w), _)| w)
                .filter(|&w| w.saturating_add(span) <= cutoff)
                .collect();
            for w in expired {
                report.bytes_freed += self.drop_window(tier, w)?;
                report.windows_expired += 1;
            }
        }
        while self.stored_bytes() > self.opts.disk_budget {
            let victim = (0..3u8).find_map(|tier| {
                let mut windows = self.sizes.range((tier, i64::MIN)..(tier, i64::MAX));
                let oldest = windows.next().map(|(&(_, w), _)| w);
                windows.next().and(oldest).map(|w| (tier, w))
            });
            let Some((tier, w)) = victim else {
                warn!(
                    budget = self.opts.disk_budget,
                    stored = self.stored_bytes(),
                    "disk budget too small to hold even one window per tier"
                );
                break;
            };
            report.bytes_freed += self.drop_window(tier, w)?;
            report.windows_evicted_for_budget += 1;
        }
        if report.windows_expired + report.windows_evicted_for_budget > 0 {
            self.kv.flush()?;
            info!(
                expired = report.windows_expired,
                evicted = report.windows_evicted_for_budget,
                bytes = report.bytes_freed,
                "dropped old data"
            );
        }
        Ok(report)
    }

    pub(super) fn tier_window_ms(&self, tier: u8) -> i64 {
        match tier {
            0 => self.window_ms,
            t => ROLLUP_TIERS[usize::from(t) - 1].window_ms,
        }
    }

    pub(super) fn drop_window(&mut self, tier: u8, window: i64) -> Result<u64, StoreError> {
        let mut batch = KvBatch::default();
        for item in self.kv.scan_prefix(&window_prefix(tier, window)) {
            batch.remove(&item?.0);
        }
        self.kv.apply(batch)?;
        // The index no longer points into the file: a crash here leaves a
        // file that the next open removes.
        self.blocks.remove(tier, window)?;
        let freed = self.sizes.remove(&(tier, window)).unwrap_or(0);
        if tier == 0 {
            let end = window + self.window_ms;
            self.raw_dropped_through = Some(self.raw_dropped_through.map_or(end, |d| d.max(end)));
        }
        // The tier's oldest data is now in its next window.
        let next = self
            .sizes
            .range((tier, i64::MIN)..(tier, i64::MAX))
            .next()
            .map(|(&(_, w), _)| w);
        self.oldest_on_disk[usize::from(tier)] = None;
        if let Some(w) = next {
            for item in self.kv.scan_prefix(&window_prefix(tier, w)) {
                let (_, v) = item?;
                for e in index::decode_group(&v).into_iter().flatten() {
                    note_oldest(&mut self.oldest_on_disk, tier, e.first_ts);
                }
            }
        }
        Ok(freed)
    }
}
