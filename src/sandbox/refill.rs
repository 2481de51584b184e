//! The loop that keeps a warm pool full, shared by the Docker and swarm
//! backends: fill, then wait for a wake-up or `idle`; after a failure, back
//! off (2 s doubling to 60 s) whatever wakes it meanwhile. It holds the
//! provisioner only weakly, so dropping the provisioner ends it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::SandboxError;

/// A backend whose pool [`keep_full`] refills.
pub trait Refill: Send + Sync + 'static {
    /// Makes what the pool lacks (or some of it; woken again for more).
    fn fill(&self) -> impl Future<Output = Result<(), SandboxError>> + Send;
    /// Notified when a spare was taken or a place freed.
    fn wake(&self) -> Arc<Notify>;
}

/// Refills `p`'s pool for as long as `p` lives elsewhere.
pub async fn keep_full<P: Refill>(p: Arc<P>, what: &'static str, idle: Duration) {
    let weak = Arc::downgrade(&p);
    drop(p);
    let mut backoff = Duration::ZERO;
    loop {
        let Some(p) = weak.upgrade() else { return };
        let failed = p.fill().await.err();
        let wake = p.wake();
        // Do not keep the provisioner alive while waiting.
        drop(p);
        if let Some(err) = failed {
            // The engine is down or failing: an outage is one line now and
            // then in the log, not one per learner's start.
            backoff = (backoff * 2).clamp(Duration::from_secs(2), Duration::from_secs(60));
            tracing::warn!(%err, retry_in_s = backoff.as_secs(), "{what}: could not refill");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::ZERO;
        tokio::select! {
            _ = tokio::time::sleep(idle) => {}
            _ = wake.notified() => {}
        }
    }
}
