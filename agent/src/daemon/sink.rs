//! The collectors' sink: where the writer thread puts each tick's samples.
//! The store first, then detection, so a sample is durable before it is
//! scored; detection is fed without blocking (see `detect::live::Feed`).

use ward_shared::{Sample, SeriesDesc, SeriesId};

use crate::collect::runner::SampleSink;
use crate::detect::live::{Feed, Msg};
use crate::store::{SharedStore, StoreError};

/// The store, then detection when it runs.
#[derive(Debug)]
pub(super) struct DetectingSink {
    pub store: SharedStore,
    pub feed: Option<Feed>,
}

impl SampleSink for DetectingSink {
    fn register(&mut self, desc: SeriesDesc) -> Result<SeriesId, StoreError> {
        let id = self.store.lock().register(desc.clone())?;
        if let Some(feed) = &self.feed {
            feed.send(Msg::Describe(id, desc));
        }
        Ok(id)
    }

    fn append(&mut self, samples: &[Sample]) -> Result<(), StoreError> {
        self.store.lock().append(samples)?;
        if let Some(feed) = &self.feed {
            feed.send(Msg::Samples(samples.to_vec()));
        }
        Ok(())
    }
}
