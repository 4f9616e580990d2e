//! The outbox: events (incident changes, finished job runs) waiting for the
//! log exporter, in the order they happened.
//!
//! Entries are documents of [`Collection::Outbox`] keyed by a sequence
//! number, so they survive restarts with everything else. The exporter reads
//! after its cursor and trims what the backend has taken. Nothing is written
//! until an exporter enables the outbox, and it holds at most
//! [`OUTBOX_MAX`] entries: past that the oldest go, counted.

use serde::{Deserialize, Serialize};
use tracing::warn;
use ward_shared::incident::{Incident, IncidentEvent};
use ward_shared::jobs::JobRun;

use super::docs::doc_key;
use super::{Collection, Store, StoreError};

/// What waits in the store's outbox for the log exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outgoing {
    /// One change to an incident, with the incident as it was after it.
    Incident {
        change: IncidentEvent,
        incident: Box<Incident>,
    },
    /// A run that finished.
    JobRun { run: Box<JobRun> },
}

impl Outgoing {
    /// Queues the event in `store`'s outbox (a no-op unless an exporter
    /// wants events).
    pub fn queue(&self, store: &mut Store) -> Result<(), StoreError> {
        if !store.outbox_enabled() {
            return Ok(());
        }
        let json = serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.push_outbox(&json)
    }
}

/// Most events kept for the log exporter.
pub const OUTBOX_MAX: u64 = 100_000;

#[derive(Debug, Default)]
pub struct OutboxState {
    enabled: bool,
    /// Sequence number of the next entry.
    next: u64,
    len: u64,
    dropped: u64,
}

fn seq_of(key: &[u8]) -> Option<u64> {
    let raw: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

impl Store {
    /// Starts keeping events for a log exporter; returns how many are waiting.
    pub fn enable_outbox(&mut self) -> Result<u64, StoreError> {
        let prefix = doc_key(Collection::Outbox, b"");
        let last = self.kv.last_with_prefix(&prefix)?;
        self.outbox.next = last.as_deref().and_then(seq_of).map_or(1, |s| s + 1);
        self.outbox.len = self.kv.scan_prefix(&prefix).count() as u64;
        self.outbox.enabled = true;
        Ok(self.outbox.len)
    }

    /// Whether an exporter wants events (with none, nothing is queued).
    pub fn outbox_enabled(&self) -> bool {
        self.outbox.enabled
    }

    /// Queues an event if an exporter wants events; durable at the next flush.
    pub fn push_outbox(&mut self, event: &[u8]) -> Result<(), StoreError> {
        if !self.outbox.enabled {
            return Ok(());
        }
        let seq = self.outbox.next;
        self.put_doc(Collection::Outbox, &seq.to_be_bytes(), event)?;
        self.outbox.next += 1;
        self.outbox.len += 1;
        if self.outbox.len > OUTBOX_MAX {
            let prefix = doc_key(Collection::Outbox, b"");
            let oldest = self.kv.scan_prefix(&prefix).next().transpose()?;
            if let Some(seq) = oldest.and_then(|(k, _)| seq_of(&k)) {
                self.remove_doc(Collection::Outbox, &seq.to_be_bytes())?;
                self.outbox.len -= 1;
                self.outbox.dropped += 1;
                if self.outbox.dropped.is_power_of_two() {
                    warn!(
                        dropped = self.outbox.dropped,
                        "export outbox full: the oldest events not yet exported were dropped"
                    );
                }
            }
        }
        Ok(())
    }

    /// Up to `limit` events after sequence number `after`, oldest first.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let prefix = doc_key(Collection::Outbox, b"");
        let start = doc_key(Collection::Outbox, &(after.saturating_add(1)).to_be_bytes());
        let mut out = Vec::new();
        for item in self.kv.scan_from(&start, &prefix).take(limit) {
            let (k, v) = item?;
            if let Some(seq) = seq_of(&k) {
                out.push((seq, v));
            }
        }
        Ok(out)
    }

    /// Forgets the events up to and including `upto`: they were exported.
    pub fn trim_outbox(&mut self, upto: u64) -> Result<(), StoreError> {
        let prefix = doc_key(Collection::Outbox, b"");
        let done: Vec<u64> = self
            .kv
            .scan_prefix(&prefix)
            .map_while(|r| r.ok().and_then(|(k, _)| seq_of(&k)))
            .take_while(|&s| s <= upto)
            .collect();
        for seq in done {
            self.remove_doc(Collection::Outbox, &seq.to_be_bytes())?;
            self.outbox.len = self.outbox.len.saturating_sub(1);
        }
        Ok(())
    }

    /// Events waiting, and events dropped because the outbox was full.
    pub fn outbox_figures(&self) -> (u64, u64) {
        (self.outbox.len, self.outbox.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreSettings;

    #[test]
    fn events_wait_in_order_survive_a_restart_and_go_once_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path(), StoreSettings::default()).unwrap();
            // Nothing is kept before an exporter asks.
            store.push_outbox(b"ignored").unwrap();
            assert_eq!(store.enable_outbox().unwrap(), 0);
            for i in 0..5 {
                store.push_outbox(format!("event {i}").as_bytes()).unwrap();
            }
            let first = store.outbox_after(0, 2).unwrap();
            assert_eq!(
                first,
                vec![(1, b"event 0".to_vec()), (2, b"event 1".to_vec())]
            );
            store.trim_outbox(2).unwrap();
            store.close().unwrap();
        }
        let mut store = Store::open(dir.path(), StoreSettings::default()).unwrap();
        assert_eq!(store.enable_outbox().unwrap(), 3);
        store.push_outbox(b"event 5").unwrap();
        let rest: Vec<(u64, String)> = store
            .outbox_after(2, 100)
            .unwrap()
            .into_iter()
            .map(|(s, v)| (s, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            rest,
            vec![
                (3, "event 2".to_string()),
                (4, "event 3".to_string()),
                (5, "event 4".to_string()),
                (6, "event 5".to_string())
            ]
        );
        assert_eq!(store.outbox_figures(), (4, 0));
    }
}
