//! Where the detectors' models are kept across restarts: the models file
//! in the data directory, and what an older agent kept in the store's
//! documents, read once and moved.

use std::collections::HashMap;

use tracing::warn;

use crate::store::{Collection, ModelFile, SharedStore};

/// Where the detectors' models are kept, and what was read back.
pub(super) struct Kept {
    pub(super) file: ModelFile,
    pub(super) store: SharedStore,
    /// Models read at start whose series has not been seen since: written
    /// back with the others, so that a series gone for a while keeps them.
    pub(super) unclaimed: HashMap<String, Vec<u8>>,
    /// Keys of models an older agent kept in the store's documents, removed
    /// once the file holds them.
    pub(super) legacy: Vec<String>,
}

impl Kept {
    /// Reads what is kept: the models file, or else (an agent that kept
    /// them in the store before) the store's documents.
    pub(super) fn load(store: SharedStore) -> Self {
        let (file, docs) = {
            let st = store.lock();
            let docs = st
                .docs(Collection::Models, b"")
                .inspect_err(|e| warn!(error = %e, "could not read models kept in the store"))
                .unwrap_or_default();
            (st.model_file(), docs)
        };
        let docs: Vec<(String, Vec<u8>)> = docs
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect();
        let legacy = docs.iter().map(|(k, _)| k.clone()).collect();
        let unclaimed = match file.read() {
            Ok(Some(entries)) => entries
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect(),
            Ok(None) => docs.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "kept models unreadable: relearning");
                HashMap::new()
            }
        };
        Self {
            file,
            store,
            unclaimed,
            legacy,
        }
    }
}
