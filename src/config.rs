//! Settings of `pglab serve`: every flag can also come from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::ops::logging::LogFormat;
use crate::settings::{Secret, SecretFileError};

/// Which sandbox backend runs learners' PostgreSQL servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxKind {
    /// Docker when an engine answers, else local processes.
    Auto,
    /// One container per learner through the Docker API.
    Docker,
    /// One PostgreSQL cluster per learner as a child process.
    Local,
    /// One swarm service per learner, spread over a Docker Swarm's nodes
    /// (`--docker-host` names a manager).
    Swarm,
}

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

    /// Sandbox backend: auto, docker, local or swarm.
    #[arg(long, env = "PGLAB_SANDBOX", value_enum, default_value_t = SandboxKind::Auto)]
    pub sandbox: SandboxKind,

    /// Docker engine address (unix:///var/run/docker.sock by default).
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Folder with ca.pem, cert.pem and key.pem, as for `docker --tlsverify`:
    /// tcp:// and https:// engine addresses (this one and the swarm nodes'
    /// pglab.engine labels) are then reached over TLS with that client
    /// certificate.
    #[arg(long, env = "PGLAB_ENGINE_TLS")]
    pub engine_tls: Option<PathBuf>,

    /// Image of learners' sandboxes.
    #[arg(long, env = "PGLAB_SANDBOX_IMAGE", default_value = "pglab/sandbox:15")]
    pub sandbox_image: String,

    /// Sign-in settings (sessions, HTTPS, proxies, rate limits).
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,

    /// Folder of the PostgreSQL binaries for the local backend (default:
    /// `pg_config --bindir`, PATH, then /usr/lib/postgresql/<newest>/bin).
    #[arg(long, env = "PGLAB_PG_BINDIR")]
    pub pg_bindir: Option<PathBuf>,

    /// Memory limit of each sandbox container, in MiB.
    #[arg(long, env = "PGLAB_SANDBOX_MEMORY_MIB", default_value_t = 256)]
    pub sandbox_memory_mib: u64,

    /// CPU limit of each sandbox container, in CPUs (0.5 = half a core).
    #[arg(long, env = "PGLAB_SANDBOX_CPUS", default_value_t = 0.5)]
    pub sandbox_cpus: f64,

    /// Process limit of each sandbox container.
    #[arg(long, env = "PGLAB_SANDBOX_PIDS", default_value_t = 256)]
    pub sandbox_pids: i64,

    /// Size of /dev/shm in each sandbox container, in MiB.
    #[arg(long, env = "PGLAB_SANDBOX_SHM_MIB", default_value_t = 64)]
    pub sandbox_shm_mib: u64,

    /// Pre-initialised sandboxes kept ready for new learners (Docker: in
    /// all; swarm: on every node with room).
    #[arg(long, env = "PGLAB_SANDBOX_POOL", default_value_t = 2)]
    pub sandbox_pool: usize,

    /// Seconds without use after which a sandbox is stopped (not removed).
    #[arg(long, env = "PGLAB_SANDBOX_IDLE_SECS", default_value_t = 1800)]
    pub sandbox_idle_secs: u64,

    /// Most sandboxes running at once; past it the least recently used stops.
    #[arg(long, env = "PGLAB_SANDBOX_MAX_RUNNING", default_value_t = 50)]
    pub sandbox_max_running: usize,

    /// Images a learner's compose file may name, comma-separated: `NAME`
    /// (run as written) or `NAME=IMAGE` (run IMAGE when the file says NAME).
    /// Empty: the sandbox image, and `postgres:15` as a name for it.
    #[arg(long, env = "PGLAB_COMPOSE_IMAGES", value_delimiter = ',')]
    pub compose_images: Vec<String>,

    /// Docker Swarm backend settings (node capacity, overlay network).
    #[command(flatten)]
    pub swarm: crate::sandbox::swarm::SwarmConfig,

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
