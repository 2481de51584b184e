//! The state every request handler shares.

use std::sync::Arc;

use crate::config::ServeConfig;
use crate::console::Consoles;
use crate::console::records::Records;
use crate::course::Course;
use crate::labs::Labs;
use crate::progress::ProgressHub;
use crate::sandbox::Provisioner;
use crate::sandbox::log::LogHub;
use crate::store::Store;

/// Shared application state; cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct AppState {
    /// The settings the server was started with.
    pub config: Arc<ServeConfig>,
    /// The app's own SQLite store.
    pub store: Store,
    /// The course sections found in the content dir.
    pub course: Arc<Course>,
    /// The backend that runs learners' PostgreSQL servers; the web layer never
    /// knows which one it is.
    pub sandbox: Arc<dyn Provisioner>,
    /// Learners' server logs: the last lines of each, and live feeds.
    pub sandbox_logs: Arc<LogHub>,
    /// Announces progress changes to the instructors' live views.
    pub progress: ProgressHub,
    /// Learners' SQL console sessions and runs (each session holds a
    /// dedicated connection to the learner's sandbox).
    pub console: Arc<Consoles>,
    /// What console runs leave in the store (history, evidence, plans),
    /// written through the store's writer, and the receipts answers wait on.
    pub records: Arc<Records>,
    /// The section 14 labs that act on a learner's sandbox from the server:
    /// production traffic (one background task per learner), the
    /// connections a leak holds (per learner, released on a timeout and
    /// before the sandbox stops, restarts or resets), the monitor, and the
    /// throw-away server of the volume demo.
    pub labs: Arc<Labs>,
    /// Sign-in through an OpenID provider, when `--oidc-issuer` is set.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
}
