//! Reading back: the raw and rollup rows of a series from its chunks and
//! its head, and what happens to a chunk that cannot be trusted (counted,
//! logged, copied to quarantine/ and taken out of the index, so that one
//! bad chunk never takes the rest of a series down).

use super::*;

impl Store {
    /// Raw chunks of `series` overlapping `[from, to]`, decoded, then the head.
    pub(super) fn raw_rows(
        &self,
        series: SeriesId,
        from: i64,
        to: i64,
        mut each: impl FnMut(i64, f64),
    ) -> Result<(), StoreError> {
        if from > to {
            return Ok(());
        }
        let state = &self.series[series.0 as usize];
        let first_window = floor_to(from, self.window_ms);
        let windows: Vec<i64> = self
            .sizes
            .range((0, first_window)..=(0, to))
            .map(|(&(_, w), _)| w)
            .collect();
        for w in windows {
            for (group, entry) in self.window_chunks(0, w, series)? {
                self.chunk_rows(0, w, group, &entry, (from, to), |ts, row| each(ts, row[0]));
            }
        }
        if state.head.first_ts().is_some_and(|f| f <= to) {
            let chunk = state
                .head
                .decode()
                .map_err(|e| StoreError::Corrupt(format!("head of series {series}: {e}")))?;
            for (i, &ts) in chunk.ts.iter().enumerate() {
                if ts >= from && ts <= to {
                    each(ts, chunk.cols[0][i]);
                }
            }
        }
        Ok(())
    }

    /// Rollup rows of `series` in `tier` starting within `[from, to]`.
    pub(super) fn rollup_rows(
        &self,
        series: SeriesId,
        tier: u8,
        from: i64,
        to: i64,
        mut each: impl FnMut(i64, &[f64]),
    ) -> Result<(), StoreError> {
        if from > to {
            return Ok(());
        }
        let state = &self.series[series.0 as usize];
        let t = ROLLUP_TIERS[usize::from(tier) - 1];
        let windows: Vec<i64> = self
            .sizes
            .range((tier, floor_to(from, t.window_ms))..=(tier, to))
            .map(|(&(_, w), _)| w)
            .collect();
        for w in windows {
            for (group, entry) in self.window_chunks(tier, w, series)? {
                self.chunk_rows(tier, w, group, &entry, (from, to), &mut each);
            }
        }
        let building = &state.tiers[usize::from(tier) - 1].enc;
        if building.first_ts().is_some_and(|f| f <= to) {
            let chunk = building
                .decode()
                .map_err(|e| StoreError::Corrupt(format!("rollup of series {series}: {e}")))?;
            let mut row = [0.0; series::ROLLUP_COLS];
            for (i, &ts) in chunk.ts.iter().enumerate() {
                if ts >= from && ts <= to {
                    for (slot, col) in row.iter_mut().zip(&chunk.cols) {
                        *slot = col[i];
                    }
                    each(ts, &row);
                }
            }
        }
        Ok(())
    }

    /// The chunks of `series` in a tier's window, in time order, each with
    /// the offset that names its index group. A group that does not decode
    /// is taken out of the index (quarantined, with nothing to keep).
    pub(super) fn window_chunks(
        &self,
        tier: u8,
        window: i64,
        series: SeriesId,
    ) -> Result<Vec<(u64, Entry)>, StoreError> {
        let mut found = Vec::new();
        for item in self.kv.scan_prefix(&window_prefix(tier, window)) {
            let (key, value) = item?;
            let group = index::parse_key(&key).map(|(_, _, offset)| offset);
            match (group, index::decode_group(&value)) {
                (Some(group), Some(entries)) => {
                    found.extend(entries.filter(|e| e.series == series).map(|e| (group, e)))
                }
                (Some(group), None) => {
                    self.quarantine(tier, window, group, None, None, "bad index entry")
                }
                (None, _) => {
                    return Err(StoreError::Corrupt(
                        "a chunk index key has the wrong length".into(),
                    ));
                }
            }
        }
        found.sort_by_key(|(_, e)| e.first_ts);
        Ok(found)
    }

    /// The rows of the chunk `entry` (indexed in the group at `group`) that
    /// start within `[from, to]`. A chunk that cannot be trusted gives none:
    /// it is counted, logged and quarantined, so that one bad chunk never
    /// takes the rest of the series down with it.
    pub(super) fn chunk_rows(
        &self,
        tier: u8,
        window: i64,
        group: u64,
        entry: &Entry,
        (from, to): (i64, i64),
        mut each: impl FnMut(i64, &[f64]),
    ) {
        let bad = |bytes: Option<&[u8]>, why: &str| {
            self.quarantine(tier, window, group, Some(entry), bytes, why);
        };
        let bytes = match self.blocks.read(tier, window, entry.at) {
            Ok(bytes) => bytes,
            Err(ReadFailure::Checksum(bytes)) => return bad(Some(&bytes), "checksum mismatch"),
            Err(ReadFailure::Missing(why)) => return bad(None, &why),
            Err(ReadFailure::Io(why)) => {
                // Perhaps passing (permissions, a flaky device): skipped this
                // time, but left in place.
                self.chunks_unreadable.fetch_add(1, Ordering::Relaxed);
                warn!(tier, window, error = %why, "skipping a chunk that could not be read");
                return;
            }
        };
        let chunk = match decode_chunk(&bytes) {
            Ok(chunk) => chunk,
            Err(e) => return bad(Some(&bytes), &e.to_string()),
        };
        let mut row = vec![0.0; chunk.cols.len()];
        for (i, &ts) in chunk.ts.iter().enumerate() {
            if ts < from {
                continue;
            }
            if ts > to {
                break;
            }
            for (slot, col) in row.iter_mut().zip(&chunk.cols) {
                *slot = col[i];
            }
            each(ts, &row);
        }
    }

    /// Takes a damaged chunk out of service: its bytes (when there are any)
    /// are copied to `<data dir>/quarantine/` for a person to look at, its
    /// record is removed from its index group (the whole group, when that
    /// does not decode: `entry` is `None`) so that no later read trips on
    /// it, and it is counted and logged. The block file is left as it is
    /// (block files are never rewritten; retention deletes the window's file
    /// whole).
    pub(super) fn quarantine(
        &self,
        tier: u8,
        window: i64,
        group: u64,
        entry: Option<&Entry>,
        bytes: Option<&[u8]>,
        why: &str,
    ) {
        self.chunks_unreadable.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(QUARANTINE_DIR);
        let kept = bytes.zip(entry).map(|(bytes, e)| {
            let path = dir.join(format!(
                "{tier}-{window}-{}-{}-{}.chunk",
                e.series, e.first_ts, e.at.offset
            ));
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, bytes))
                .map(|()| path)
        });
        match (kept, self.unindex(tier, window, group, entry)) {
            (Some(Err(e)), _) => warn!(
                tier, window, error = %why, copy_failed = %e,
                "skipping an unreadable chunk; it stays indexed, as it could not be copied aside"
            ),
            (_, Err(e)) => warn!(
                tier, window, error = %why, unindex_failed = %e,
                "skipping an unreadable chunk; it could not be taken out of the index"
            ),
            (kept, Ok(())) => {
                self.chunks_quarantined.fetch_add(1, Ordering::Relaxed);
                match kept {
                    Some(Ok(path)) => warn!(
                        tier, window, error = %why, kept = %path.display(),
                        "quarantined an unreadable chunk: its samples are skipped from now on"
                    ),
                    _ => warn!(
                        tier, window, error = %why,
                        "quarantined an unreadable chunk (nothing left to keep): its samples are skipped from now on"
                    ),
                }
            }
        }
    }

    /// Removes `entry` from its index group (the group goes when nothing is
    /// left in it), or the whole group for `None`. The store is used under
    /// one lock, so nothing writes the group between the read and the write.
    pub(super) fn unindex(
        &self,
        tier: u8,
        window: i64,
        group: u64,
        entry: Option<&Entry>,
    ) -> Result<(), StoreError> {
        let key = group_key(tier, window, group);
        let kept: Vec<Entry> = match (entry, self.kv.get(&key)?) {
            (Some(entry), Some(value)) => index::decode_group(&value)
                .into_iter()
                .flatten()
                .filter(|e| e != entry)
                .collect(),
            _ => Vec::new(),
        };
        let mut batch = KvBatch::default();
        if kept.is_empty() {
            batch.remove(&key);
        } else {
            batch.insert(&key, &index::encode_group(&kept));
        }
        self.kv.apply(batch)
    }

    /// The first timestamp a tier holds, if any (a rollup row's is its start).
    pub(super) fn oldest(&self, tier: u8) -> Option<i64> {
        let on_disk = self.oldest_on_disk[usize::from(tier)];
        let in_memory = self
            .series
            .iter()
            .filter_map(|s| match tier {
                0 => s.head.first_ts(),
                t => s.tiers[usize::from(t) - 1].enc.first_ts(),
            })
            .min();
        on_disk.into_iter().chain(in_memory).min()
    }
}
