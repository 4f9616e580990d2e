//! The shutdown order, written down once:
//! 1. the API and the exporter: the API holds the store for queries; what
//!    the exporter had not sent goes after the restart, from its cursor;
//! 2. the collectors: each finishes its tick and the writer drains what
//!    they sent (no new samples after this);
//! 3. detection: its thread ends once the last feed is gone; it holds the
//!    store and the incidents, so it goes before they are closed;
//! 4. the timers (flush, maintain, health, status);
//! 5. the status, written as "stopped";
//! 6. the books let go of the store, which is flushed and sealed, and the
//!    data directory released.

use tracing::{error, info};

use super::{DaemonError, Running};

impl Running {
    /// Stops every part in the order above.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        info!("shutting down");
        let Running {
            store,
            incidents,
            jobs,
            collectors,
            detection,
            timers,
            timers_stop,
            failed: _,
            export,
            export_stop,
            api,
            api_stop,
            status,
        } = self;
        api_stop.cancel();
        export_stop.cancel();
        for task in api {
            let _ = task.await;
        }
        if let Some(task) = export {
            let _ = task.await;
        }
        if let Err(e) = tokio::task::spawn_blocking(move || collectors.shutdown()).await {
            error!(error = %e, "collectors did not stop cleanly");
        }
        if let Some((feed, thread)) = detection {
            drop(feed);
            if tokio::task::spawn_blocking(move || thread.join())
                .await
                .is_err()
            {
                error!("the detection thread did not stop cleanly");
            }
        }
        timers_stop.cancel();
        timers.wait().await;
        status.write("stopped");
        // The status and the books hold the store too: let go of them
        // before sealing.
        drop(status);
        drop(jobs);
        drop(incidents);
        match store.into_inner() {
            Some(store) => store.close()?,
            None => error!("store still shared at shutdown; not sealed (the log replays it)"),
        }
        info!("agent stopped");
        Ok(())
    }
}
