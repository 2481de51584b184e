//! The hands-on labs of section 14 that need pglab to act on a learner's
//! sandbox from the server side, beyond running the learner's own SQL:
//!
//! - [`traffic`] (14.D.1): "production traffic", a bounded background task
//!   per learner that runs the lab's slow dashboard query in a loop and keeps
//!   its latency points for a live chart;
//! - [`connections`] (14.D.3): a connection leak, idle-in-transaction
//!   connections that pglab opens as `taskflow_app` and holds until PostgreSQL
//!   refuses more, released on demand, on a timeout, or when the sandbox
//!   stops, restarts or resets;
//! - [`monitor`] (part E step 9): one snapshot of the sandbox's statistics
//!   views for the monitoring panel;
//! - [`ephemeral`] (14.D.4): the "no volume" demonstration, a second
//!   throw-away server per learner (the provisioner runs it) with a short
//!   idle time of its own.
//!
//! Everything here acts on one learner's own sandbox, named by the caller
//! (the web layer passes the signed-in learner), and is bounded in count and
//! time; [`Labs::release_learner`] ends whatever a learner's labs hold.

pub mod connections;
pub mod ephemeral;
pub mod monitor;
pub mod traffic;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::sandbox::{LearnerId, Provisioner};

/// Settings of the labs (`pglab serve` flags).
#[derive(Clone, Debug, Args)]
pub struct LabsConfig {
    /// Seconds the 14.D.1 production traffic runs before it stops by itself.
    #[arg(long, env = "PGLAB_LAB_TRAFFIC_SECS", default_value_t = 600)]
    pub lab_traffic_secs: u64,
    /// Seconds the 14.D.3 leaked connections are held before pglab releases
    /// them by itself.
    #[arg(long, env = "PGLAB_LAB_LEAK_SECS", default_value_t = 600)]
    pub lab_leak_secs: u64,
    /// Seconds without use after which a learner's 14.D.4 ephemeral server
    /// is removed.
    #[arg(long, env = "PGLAB_LAB_EPHEMERAL_IDLE_SECS", default_value_t = 900)]
    pub lab_ephemeral_idle_secs: u64,
}

impl Default for LabsConfig {
    fn default() -> Self {
        Self {
            lab_traffic_secs: 600,
            lab_leak_secs: 600,
            lab_ephemeral_idle_secs: 900,
        }
    }
}

/// The labs' per-learner state (`AppState.labs`).
pub struct Labs {
    /// The sandbox backend the labs act on.
    pub sandbox: Arc<dyn Provisioner>,
    /// Running production traffic, at most one per learner.
    pub traffic: traffic::Traffic,
    /// Connections held by the 14.D.3 leak, per learner.
    pub leaks: connections::Leaks,
    /// Last use of each learner's ephemeral server, for its idle sweep.
    pub ephemeral: ephemeral::EphemeralUse,
}

impl Labs {
    /// The labs over `sandbox`; spawns the ephemeral idle sweeper.
    pub fn new(sandbox: Arc<dyn Provisioner>, config: &LabsConfig) -> Arc<Self> {
        let labs = Arc::new(Self {
            sandbox,
            traffic: traffic::Traffic::new(Duration::from_secs(config.lab_traffic_secs)),
            leaks: connections::Leaks::new(Duration::from_secs(config.lab_leak_secs)),
            ephemeral: ephemeral::EphemeralUse::new(Duration::from_secs(
                config.lab_ephemeral_idle_secs,
            )),
        });
        ephemeral::spawn_sweeper(Arc::downgrade(&labs));
        labs
    }

    /// Ends what the learner's labs hold in their sandbox (traffic and leaked
    /// connections): before the sandbox stops, restarts or resets, so that
    /// nothing of pglab's keeps using a server that goes away.
    pub async fn release_learner(&self, learner: LearnerId) {
        self.traffic
            .stop(learner, "the sandbox was stopped or restarted");
        self.leaks.release(learner).await;
    }
}
