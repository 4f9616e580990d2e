//! The document store beside the series: incidents, jobs and their runs,
//! exporters' cursors and the outbox, each a collection of documents under
//! its own key prefix in the same sled tree, durable at the same flushes as
//! the samples.

use super::kv::KvBatch;
use super::{Store, StoreError};

/// The kinds of documents the store keeps beside series, each under its
/// own key prefix (`D` and one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Incidents,
    Jobs,
    JobRuns,
    /// Anomaly detectors' models, by series key, as agents before
    /// `models.bin` kept them: read once, then removed (see models.rs).
    Models,
    /// Exporters' cursors, by exporter name.
    Cursors,
    /// Events waiting for the log exporter, by sequence number.
    Outbox,
}

/// A document's key (without its collection's prefix) and bytes.
pub type Doc = (Vec<u8>, Vec<u8>);

pub(super) fn doc_key(collection: Collection, key: &[u8]) -> Vec<u8> {
    let tag = match collection {
        Collection::Incidents => b'i',
        Collection::Jobs => b'j',
        Collection::JobRuns => b'r',
        Collection::Models => b'm',
        Collection::Cursors => b'c',
        Collection::Outbox => b'o',
    };
    let mut out = Vec::with_capacity(key.len() + 2);
    out.extend_from_slice(&[b'D', tag]);
    out.extend_from_slice(key);
    out
}

impl Store {
    /// Stores a document (an incident, a job run) under `key` in
    /// `collection`; durable at the next flush, like samples.
    pub fn put_doc(
        &mut self,
        collection: Collection,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.kv.insert(&doc_key(collection, key), value)?;
        self.index_dirty = true;
        Ok(())
    }

    /// One document, by its exact key.
    pub fn get_doc(
        &self,
        collection: Collection,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(&doc_key(collection, key))
    }

    /// Removes a document; durable at the next flush.
    pub fn remove_doc(&mut self, collection: Collection, key: &[u8]) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.remove(&doc_key(collection, key));
        self.kv.apply(batch)?;
        self.index_dirty = true;
        Ok(())
    }

    /// The documents of `collection` whose keys start with `prefix`, in key
    /// order, keys without the collection's prefix.
    pub fn docs(&self, collection: Collection, prefix: &[u8]) -> Result<Vec<Doc>, StoreError> {
        let full = doc_key(collection, prefix);
        self.kv
            .scan_prefix(&full)
            .map(|r| r.map(|(k, v)| (k[2..].to_vec(), v)))
            .collect()
    }
}
