//! Periodic garbage collection: at start-up and then every interval, delete
//! expired entries and chunks of abandoned uploads (see [`Store::collect_garbage`]).
//! Expired entries are never served even before this runs; collection only
//! gives their space back.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::Store;

/// Collects garbage now and then every `interval`, until the task is aborted.
pub(crate) async fn run_periodically(store: Store, clock: Arc<dyn Clock>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick completes at once: collection also runs at start-up.
        ticker.tick().await;
        if let Err(e) = store.collect_garbage(clock.now()).await {
            tracing::warn!(error = %e, "garbage collection failed; will retry at the next interval");
        }
    }
}
