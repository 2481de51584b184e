//! Settings of `pglab serve`: every flag can also come from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::ops::logging::LogFormat;
use crate::sandbox::{SandboxConfig, SandboxDirs};
use crate::settings::{Secret, SecretFileError};

/// Settings of the server, shared by `serve` and by commands that open the store.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PGLAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Where pglab keeps its store and the local sandboxes.
    #[arg(long, env = "PGLAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The curriculum folder: section markdown files and their lab files.
    #[arg(long, env = "PGLAB_CONTENT_DIR", default_value = "./content")]
    pub content_dir: PathBuf,

    /// Sandbox settings (backend, engine, image, limits, pool, swarm).
    #[command(flatten)]
    pub sandbox: SandboxConfig,

    /// Sign-in settings (sessions, HTTPS, proxies, rate limits).
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,

    /// SQL console settings (timeouts, caps, session idle time).
    #[command(flatten)]
    pub console: crate::console::ConsoleConfig,

    /// Section 14 labs settings (traffic and leak time limits).
    #[command(flatten)]
    pub labs: crate::labs::LabsConfig,
    /// Sandbox terminal settings (idle time, output rate, count).
    #[command(flatten)]
    pub terminal: crate::terminal::TerminalConfig,

    /// Learners' database dumps (size and count caps).
    #[command(flatten)]
    pub dumps: crate::dumps::DumpsConfig,
    /// Who may frame pglab's pages (CSP `frame-ancestors`): `'none'`, or the
    /// origins of an LMS that embeds it, separated by spaces.
    #[arg(long, env = "PGLAB_FRAME_ANCESTORS", default_value = "'none'",
          value_parser = crate::web::headers::parse_frame_ancestors)]
    pub frame_ancestors: String,

    // --- operations (src/ops/) ---
    /// Log output on stderr: text, or json (one object per line).
    #[arg(long, env = "PGLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Bearer secret that lets a scraper read GET /metrics (unset: only
    /// instructors may).
    #[arg(long, env = "PGLAB_METRICS_SECRET", hide_env_values = true)]
    pub metrics_secret: Option<Secret>,

    /// A file holding the metrics secret (a Docker or Kubernetes secret,
    /// e.g. /run/secrets/pglab_metrics_secret), read at start-up; instead of
    /// --metrics-secret.
    #[arg(
        long,
        env = "PGLAB_METRICS_SECRET_FILE",
        conflicts_with = "metrics_secret"
    )]
    pub metrics_secret_file: Option<PathBuf>,

    /// On SIGTERM/SIGINT, how long requests still in flight (a sandbox start
    /// waiting its turn, a long-polled run) may finish before pglab exits
    /// anyway; what they were doing is safe to cut (see docs/architecture.md).
    #[arg(long, env = "PGLAB_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,
}

impl ServeConfig {
    /// The SQLite file of the app's store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("pglab.db")
    }

    /// The folders the sandboxes work in: `--data-dir` and `--content-dir`.
    pub fn sandbox_dirs(&self) -> SandboxDirs {
        SandboxDirs {
            data_dir: self.data_dir.clone(),
            content_dir: self.content_dir.clone(),
        }
    }

    /// The public URL, if one is set (an empty value, as compose files pass
    /// for unset settings, counts as none).
    pub fn public_url(&self) -> Option<&str> {
        self.auth.public_url.as_deref().filter(|u| !u.is_empty())
    }

    /// Reads the secrets given as files (`--metrics-secret-file`,
    /// `--oidc-client-secret-file`) into their settings.
    pub fn read_secret_files(&mut self) -> Result<(), SecretFileError> {
        if let Some(path) = &self.metrics_secret_file {
            self.metrics_secret = Some(Secret::from_file(path)?);
        }
        self.auth.oidc.read_secret_file()
    }

    /// The metrics secret, if a non-empty one is set.
    pub fn metrics_secret(&self) -> Option<&Secret> {
        self.metrics_secret.as_ref().filter(|s| !s.is_empty())
    }
}
