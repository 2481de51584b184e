//! The idle reaper: stops (never removes) sandboxes nobody used for
//! `--sandbox-idle-secs`, and keeps at most `--sandbox-max-running` running
//! by stopping the least recently used first. The next `start` brings a
//! stopped sandbox back transparently, data intact.
//!
//! It works for both backends through the [`Provisioner`] trait and the
//! `last_used` column that every `start` updates. A backend with an
//! admission queue (the swarm) keeps its cap by making starts wait for a
//! place instead: there the reaper never stops a sandbox in use to make
//! room, only idle ones.

use std::sync::Arc;
use std::time::Duration;

use super::records::Records;
use super::{LearnerId, Provisioner, SandboxError, SandboxSettings, unix_now};
use crate::store::Store;

/// Runs the reaper in the background for the life of the server. It wakes
/// on a timer and after every start (so that the cap holds at once).
pub fn spawn(provisioner: Arc<dyn Provisioner>, store: Store, settings: SandboxSettings) {
    let records = Records::new(&store);
    // Check a few times per idle period, but not more than once a second.
    let tick = Duration::from_secs((settings.idle_secs / 4).clamp(1, 30));
    tokio::spawn(async move {
        loop {
            let woken = provisioner.progress().started.notified();
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = woken => {}
            }
            match reap_once(provisioner.as_ref(), &records, &settings).await {
                Ok(stopped) if !stopped.is_empty() => {
                    tracing::info!(?stopped, "stopped idle or least recently used sandboxes");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "idle reaper"),
            }
        }
    });
}

/// One pass: stops idle sandboxes, then the least recently used ones past
/// the cap. Returns the learners whose sandbox it stopped.
pub async fn reap_once(
    provisioner: &dyn Provisioner,
    records: &Records,
    settings: &SandboxSettings,
) -> Result<Vec<LearnerId>, SandboxError> {
    let backend = provisioner.backend_name();
    let running: Vec<_> = records
        .running()
        .await?
        .into_iter()
        .filter(|r| r.backend == backend)
        .collect();
    let now = unix_now();
    let idle_secs = i64::try_from(settings.idle_secs).unwrap_or(i64::MAX);
    let mut stopped = Vec::new();
    let mut kept = Vec::new();
    for r in running {
        if now.saturating_sub(r.last_used) >= idle_secs {
            stopped.push(r.learner_id);
        } else {
            kept.push(r.learner_id);
        }
    }
    // `running()` is ordered least recently used first.
    let excess = if provisioner.admission().enabled() {
        0
    } else {
        kept.len().saturating_sub(settings.max_running)
    };
    stopped.extend(kept.into_iter().take(excess));
    for &learner in &stopped {
        if let Err(err) = provisioner.stop(learner).await {
            tracing::warn!(learner, %err, "could not stop an idle sandbox");
        }
    }
    Ok(stopped)
}
