//! The incident book: opens, updates, clears and resolves incidents, keeps
//! their history, and persists every change in the store.
//!
//! Whoever watches a condition (job health, anomaly detection, static
//! rules) calls [`Incidents::raise`] when it starts or worsens and
//! [`Incidents::clear`] when it is gone; the book resolves an incident once
//! its condition has been quiet for the configured period
//! ([`Incidents::tick`]). A raise at a higher severity escalates the
//! incident (and notifies); at a lower one the incident goes back down,
//! said in its history. Operators acknowledge, resolve, annotate and give
//! feedback through the API. One active incident per key: raising a key that
//! is active updates it, raising one that was resolved opens a new incident.

use std::collections::{BTreeMap, HashMap, HashSet};

use thiserror::Error;
use tracing::{info, warn};
use ward_shared::TimestampMs;
use ward_shared::incident::{
    Feedback, Incident, IncidentContext, IncidentEvent, IncidentSource, IncidentState, Note,
    Severity, Signal,
};

use crate::notify::{Event, Notifier};
use crate::store::SharedStore;
use crate::store::{Collection, StoreError};

/// Resolved incidents kept, in memory and on disk; the oldest go first.
const KEEP_RESOLVED: usize = 1000;
/// Longest note accepted, in bytes.
pub const MAX_NOTE: usize = 4096;
/// Who the agent is in histories.
pub const AGENT: &str = "ward";

#[derive(Debug, Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    NotFound(u64),
    #[error("incident {0} is resolved; it can take notes and feedback, not {1}")]
    Resolved(u64, &'static str),
    #[error("a note must have text, at most {MAX_NOTE} bytes")]
    BadNote,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A condition worth an incident.
#[derive(Debug, Clone)]
pub struct Raise {
    pub key: String,
    pub title: String,
    pub severity: Severity,
    pub source: IncidentSource,
    pub signals: Vec<Signal>,
    pub context: IncidentContext,
}

/// The conditions one watcher (a job, the static rules) has raised and not
/// cleared. Raising is edge-triggered per watcher: a condition that an
/// operator resolved by hand is not raised again until it has cleared.
#[derive(Debug, Default)]
pub struct Conditions(HashSet<String>);

impl Conditions {
    /// Raises (or updates) the incident for `r.key`.
    pub fn raise(
        &mut self,
        incidents: &mut Incidents,
        now: TimestampMs,
        r: Raise,
    ) -> Result<(), StoreError> {
        self.0.insert(r.key.clone());
        incidents.raise(r, now).map(|_| ())
    }

    /// Clears `key` if this watcher raised it.
    pub fn clear(
        &mut self,
        incidents: &mut Incidents,
        key: &str,
        why: &str,
        now: TimestampMs,
    ) -> Result<(), StoreError> {
        if self.0.remove(key) {
            incidents.clear(key, why, now)?;
        }
        Ok(())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    /// Takes back a condition raised before a restart.
    pub fn adopt(&mut self, key: String) {
        self.0.insert(key);
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

#[derive(Debug)]
pub struct Incidents {
    store: SharedStore,
    all: BTreeMap<u64, Incident>,
    /// Active incidents by key.
    active: HashMap<String, u64>,
    next_id: u64,
    resolve_after_ms: i64,
    notifier: Option<Notifier>,
    /// Per incident, how many history events went to the export outbox.
    queued: HashMap<u64, usize>,
}

/// `[incidents]`: how incidents live.
#[derive(Debug, Clone)]
pub struct IncidentsSettings {
    /// How long a condition must stay gone before its incident resolves itself.
    pub resolve_after: std::time::Duration,
}

/// The book, shared by the API and whoever raises incidents.
pub type SharedIncidents = crate::sync::Shared<Incidents>;

impl Incidents {
    /// Loads the incidents kept in `store`.
    pub fn open(store: SharedStore, resolve_after_ms: i64) -> Result<Self, StoreError> {
        let mut all = BTreeMap::new();
        let mut active = HashMap::new();
        let docs = store.lock().docs(Collection::Incidents, b"")?;
        for (key, value) in docs {
            match serde_json::from_slice::<Incident>(&value) {
                Ok(i) => {
                    if i.is_active() {
                        active.insert(i.key.clone(), i.id);
                    }
                    all.insert(i.id, i);
                }
                // One bad record must not cost the others.
                Err(e) => warn!(key = ?key, error = %e, "unreadable incident record skipped"),
            }
        }
        let next_id = all.keys().next_back().map_or(1, |id| id + 1);
        let queued = all.values().map(|i| (i.id, i.history.len())).collect();
        Ok(Self {
            store,
            all,
            active,
            next_id,
            resolve_after_ms,
            notifier: None,
            queued,
        })
    }

    /// Tells `notifier` of every incident opened, escalated, acknowledged or resolved.
    pub fn set_notifier(&mut self, notifier: Notifier) {
        self.notifier = Some(notifier);
    }

    fn notify(&self, event: Event, id: u64) {
        if let (Some(n), Some(i)) = (&self.notifier, self.all.get(&id)) {
            n.notify(event, i);
        }
    }

    /// Persists the incident, and queues each change since the last save
    /// for export.
    fn save(&mut self, id: u64) -> Result<(), StoreError> {
        let Some(incident) = self.all.get(&id) else {
            return Ok(());
        };
        let json = serde_json::to_vec(incident).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut store = self.store.lock();
        store.put_doc(Collection::Incidents, &id.to_be_bytes(), &json)?;
        let queued = self.queued.entry(id).or_default();
        for change in incident.history.iter().skip(*queued) {
            crate::store::Outgoing::Incident {
                change: change.clone(),
                incident: Box::new(incident.clone()),
            }
            .queue(&mut store)?;
        }
        *queued = incident.history.len();
        Ok(())
    }

    /// Opens an incident for `r.key`, or updates the active one.
    pub fn raise(&mut self, r: Raise, now: TimestampMs) -> Result<u64, StoreError> {
        let mut signals = r.signals;
        signals.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        if let Some(&id) = self.active.get(&r.key)
            && let Some(i) = self.all.get_mut(&id)
        {
            if i.cleared.take().is_some() {
                i.history
                    .push(event(now, AGENT, "returned: the condition is back"));
            }
            let escalated = r.severity > i.severity;
            if escalated {
                i.peak = now;
                i.history.push(event(
                    now,
                    AGENT,
                    &format!("severity raised to {}", r.severity.word()),
                ));
                i.severity = r.severity;
            } else if r.severity < i.severity {
                // The condition eased (a filesystem filling more slowly):
                // said in the history, not paged.
                i.history.push(event(
                    now,
                    AGENT,
                    &format!("severity lowered to {}", r.severity.word()),
                ));
                i.severity = r.severity;
            }
            if i.title != r.title {
                let update = event(now, AGENT, &format!("updated: {}", r.title));
                // A title that follows the numbers (a fill rate, the series
                // in an episode) changes at nearly every evaluation: the
                // latest update takes the place of the one just before it,
                // and goes out again with its new text, rather than the
                // history (and every save and export of it) growing by an
                // event a minute for as long as the incident lasts.
                match i.history.last_mut() {
                    Some(last) if last.by == AGENT && last.what.starts_with("updated: ") => {
                        *last = update;
                        let n = i.history.len() - 1;
                        self.queued.entry(id).and_modify(|q| *q = (*q).min(n));
                    }
                    _ => i.history.push(update),
                }
                i.title = r.title;
            }
            i.signals = signals;
            i.context = r.context;
            i.updated = now;
            self.save(id)?;
            if escalated {
                self.notify(Event::Escalated, id);
            }
            return Ok(id);
        }
        let id = self.next_id;
        self.next_id += 1;
        info!(id, key = %r.key, severity = r.severity.word(), title = %r.title, "incident opened");
        self.all.insert(
            id,
            Incident {
                id,
                key: r.key.clone(),
                history: vec![event(now, AGENT, &format!("opened: {}", r.title))],
                title: r.title,
                severity: r.severity,
                state: IncidentState::Open,
                source: r.source,
                opened: now,
                updated: now,
                peak: now,
                cleared: None,
                resolved: None,
                signals,
                context: r.context,
                notes: Vec::new(),
                feedback: None,
            },
        );
        self.active.insert(r.key, id);
        self.save(id)?;
        self.notify(Event::Opened, id);
        self.forget_old()?;
        Ok(id)
    }

    /// The condition behind `key` is gone: the incident resolves after the
    /// quiet period unless it comes back.
    pub fn clear(&mut self, key: &str, why: &str, now: TimestampMs) -> Result<(), StoreError> {
        let Some(&id) = self.active.get(key) else {
            return Ok(());
        };
        if let Some(i) = self.all.get_mut(&id)
            && i.cleared.is_none()
        {
            i.cleared = Some(now);
            i.updated = now;
            i.history
                .push(event(now, AGENT, &format!("cleared: {why}")));
            self.save(id)?;
        }
        Ok(())
    }

    /// Resolves what has been quiet for the quiet period.
    pub fn tick(&mut self, now: TimestampMs) -> Result<(), StoreError> {
        let due: Vec<u64> = self
            .active
            .values()
            .copied()
            .filter(|id| {
                self.all
                    .get(id)
                    .and_then(|i| i.cleared)
                    .is_some_and(|c| now - c >= self.resolve_after_ms)
            })
            .collect();
        for id in due {
            let quiet = self.resolve_after_ms / 1000;
            self.finish(id, now, AGENT, &format!("resolved: quiet for {quiet} s"))?;
        }
        Ok(())
    }

    fn finish(
        &mut self,
        id: u64,
        now: TimestampMs,
        by: &str,
        what: &str,
    ) -> Result<(), StoreError> {
        if let Some(i) = self.all.get_mut(&id) {
            i.state = IncidentState::Resolved;
            i.resolved = Some(now);
            i.updated = now;
            i.history.push(event(now, by, what));
            info!(id, key = %i.key, by, "incident resolved");
            self.active.remove(&i.key);
        }
        self.save(id)?;
        self.notify(Event::Resolved, id);
        Ok(())
    }

    fn active_mut(
        &mut self,
        id: u64,
        action: &'static str,
    ) -> Result<&mut Incident, IncidentError> {
        let i = self.all.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        if !i.is_active() {
            return Err(IncidentError::Resolved(id, action));
        }
        Ok(i)
    }

    pub fn acknowledge(
        &mut self,
        id: u64,
        by: &str,
        now: TimestampMs,
    ) -> Result<Incident, IncidentError> {
        let i = self.active_mut(id, "acknowledgement")?;
        if i.state == IncidentState::Open {
            i.state = IncidentState::Acknowledged;
            i.updated = now;
            i.history.push(event(now, by, "acknowledged"));
            self.save(id)?;
            self.notify(Event::Acknowledged, id);
        }
        self.get(id).ok_or(IncidentError::NotFound(id))
    }

    pub fn resolve(
        &mut self,
        id: u64,
        by: &str,
        now: TimestampMs,
    ) -> Result<Incident, IncidentError> {
        self.active_mut(id, "resolution")?;
        self.finish(id, now, by, "resolved")?;
        self.get(id).ok_or(IncidentError::NotFound(id))
    }

    pub fn note(
        &mut self,
        id: u64,
        by: &str,
        text: &str,
        now: TimestampMs,
    ) -> Result<Incident, IncidentError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_NOTE {
            return Err(IncidentError::BadNote);
        }
        let i = self.all.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        i.notes.push(Note {
            at: now,
            by: by.to_string(),
            text: text.to_string(),
        });
        i.updated = now;
        i.history.push(event(now, by, "note added"));
        self.save(id)?;
        self.get(id).ok_or(IncidentError::NotFound(id))
    }

    /// Records an operator's verdict; a later one replaces it (the history keeps both).
    pub fn feedback(
        &mut self,
        id: u64,
        by: &str,
        feedback: Feedback,
        now: TimestampMs,
    ) -> Result<Incident, IncidentError> {
        let i = self.all.get_mut(&id).ok_or(IncidentError::NotFound(id))?;
        let word = match feedback {
            Feedback::Confirmed => "confirmed",
            Feedback::FalsePositive => "false positive",
            Feedback::Expected => "expected",
        };
        i.feedback = Some(feedback);
        i.updated = now;
        i.history.push(event(now, by, &format!("feedback: {word}")));
        self.save(id)?;
        self.get(id).ok_or(IncidentError::NotFound(id))
    }

    pub fn get(&self, id: u64) -> Option<Incident> {
        self.all.get(&id).cloned()
    }

    /// Active incidents first (worst, then newest), then resolved ones, newest first.
    pub fn list(&self, include_resolved: bool) -> Vec<Incident> {
        let mut out: Vec<Incident> = self
            .all
            .values()
            .filter(|i| include_resolved || i.is_active())
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.is_active()
                .cmp(&a.is_active())
                .then(b.severity.cmp(&a.severity))
                .then(b.opened.cmp(&a.opened))
        });
        out
    }

    /// How many incidents are active.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// The key's active incident, if any.
    pub fn active_id(&self, key: &str) -> Option<u64> {
        self.active.get(key).copied()
    }

    /// Drops the oldest resolved incidents past [`KEEP_RESOLVED`].
    fn forget_old(&mut self) -> Result<(), StoreError> {
        let resolved: Vec<u64> = self
            .all
            .values()
            .filter(|i| !i.is_active())
            .map(|i| i.id)
            .collect();
        for id in resolved
            .iter()
            .take(resolved.len().saturating_sub(KEEP_RESOLVED))
        {
            self.all.remove(id);
            self.queued.remove(id);
            self.store
                .lock()
                .remove_doc(Collection::Incidents, &id.to_be_bytes())?;
        }
        Ok(())
    }
}

fn event(at: TimestampMs, by: &str, what: &str) -> IncidentEvent {
    IncidentEvent {
        at,
        by: by.to_string(),
        what: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreSettings};

    fn raise(key: &str, severity: Severity) -> Raise {
        Raise {
            key: key.into(),
            title: format!("{key} is {}", severity.word()),
            severity,
            source: IncidentSource::Rule,
            signals: Vec::new(),
            context: IncidentContext::default(),
        }
    }

    #[test]
    fn a_condition_that_comes_back_before_the_quiet_period_stays_one_incident() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        let mut book = Incidents::open(store.clone(), 60_000).unwrap();
        let id = book
            .raise(raise("disk:/", Severity::Warning), 1_000)
            .unwrap();
        book.clear("disk:/", "below the limit", 2_000).unwrap();
        // Back within the minute: same incident, worse, and the history says so.
        assert_eq!(
            book.raise(raise("disk:/", Severity::Critical), 30_000)
                .unwrap(),
            id
        );
        book.tick(200_000).unwrap();
        let i = book.get(id).unwrap();
        assert_eq!(
            (i.state, i.severity, i.peak),
            (IncidentState::Open, Severity::Critical, 30_000)
        );
        let what: Vec<&str> = i.history.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "opened: disk:/ is warning",
                "cleared: below the limit",
                "returned: the condition is back",
                "severity raised to critical",
                "updated: disk:/ is critical",
            ]
        );
        // Quiet for the full period: resolved, and a new occurrence is a new incident.
        book.clear("disk:/", "below the limit", 300_000).unwrap();
        book.tick(359_999).unwrap();
        assert!(book.get(id).unwrap().is_active());
        book.tick(360_000).unwrap();
        assert_eq!(book.get(id).unwrap().state, IncidentState::Resolved);
        let next = book
            .raise(raise("disk:/", Severity::Warning), 400_000)
            .unwrap();
        assert_eq!(next, id + 1);

        // Everything above is in the store: a new book over it sees the same.
        drop(book);
        let again = Incidents::open(store, 60_000).unwrap();
        assert_eq!(again.list(true).len(), 2);
        assert_eq!(again.active_id("disk:/"), Some(next));
        assert_eq!(again.get(id).unwrap().history.len(), 7);
    }

    #[test]
    fn a_title_that_follows_the_numbers_keeps_one_update_and_exports_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(Store::open(dir.path(), StoreSettings::default()).unwrap());
        store.lock().enable_outbox().unwrap();
        let mut book = Incidents::open(store.clone(), 60_000).unwrap();
        let full_in = |hours: u32| Raise {
            title: format!("/ full in about {hours} h"),
            ..raise("disk:/", Severity::Warning)
        };
        // Three days of a rule re-evaluated every minute, its estimate
        // changing each time.
        let id = book.raise(full_in(72), 0).unwrap();
        for minute in 1..=3 * 24 * 60 {
            book.raise(full_in(72 - minute / 60), i64::from(minute) * 60_000)
                .unwrap();
        }
        book.clear("disk:/", "space freed", 1 << 40).unwrap();
        book.raise(full_in(5), (1 << 40) + 1).unwrap();
        let i = book.get(id).unwrap();
        let what: Vec<&str> = i.history.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "opened: / full in about 72 h",
                "updated: / full in about 0 h",
                "cleared: space freed",
                "returned: the condition is back",
                "updated: / full in about 5 h",
            ]
        );
        assert_eq!(i.history[1].at, 3 * 24 * 60 * 60_000);
        // Every change still went out, each with the incident as it was.
        let sent = store.lock().outbox_after(0, usize::MAX).unwrap();
        let changes: Vec<String> = sent
            .iter()
            .map(|(_, json)| match serde_json::from_slice(json).unwrap() {
                crate::store::Outgoing::Incident { change, incident } => {
                    assert!(incident.history.len() <= 5);
                    change.what
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let titles = changes
            .iter()
            .filter(|c| c.starts_with("updated: "))
            .count();
        assert_eq!(changes.len(), 1 + titles + 2);
        assert_eq!(titles, 72 + 1, "one update for each new estimate");
    }
}
