//! Settings of the sandboxes: the backend to run ([`SandboxKind`]), how to
//! reach a Docker engine, the sandbox image and its limits, the warm pool,
//! the idle reaper's limits, the compose image allow-list and the swarm's own
//! settings ([`SandboxConfig`], flattened into `ServeConfig`, so every flag
//! also reads the environment), and the folders the caller lends a backend
//! ([`SandboxDirs`]).
//!
//! The sandbox backends read only these, never `ServeConfig` itself: so
//! `config` imports `sandbox` and not the other way round.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::swarm::SwarmConfig;

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

/// Sandbox settings of `pglab serve`.
#[derive(Clone, Debug, Args)]
pub struct SandboxConfig {
    /// Sandbox backend: auto, docker, local or swarm.
    #[arg(
        id = "sandbox",
        long = "sandbox",
        value_name = "SANDBOX",
        env = "PGLAB_SANDBOX",
        value_enum,
        default_value_t = SandboxKind::Auto
    )]
    pub kind: SandboxKind,

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
    pub swarm: SwarmConfig,
}

/// The folders a backend works in, which are the server's and not sandbox
/// settings (`--data-dir`, `--content-dir`): the caller passes them.
#[derive(Clone, Debug)]
pub struct SandboxDirs {
    /// The server's data dir: the local backend's clusters go in `local/`,
    /// the Docker backend's socket dirs in `sockets/`.
    pub data_dir: PathBuf,
    /// The course's folder, whose lab files each terminal gets.
    pub content_dir: PathBuf,
}

/// Settings every backend shares (the idle reaper's), read from
/// [`SandboxConfig`].
#[derive(Clone, Debug)]
pub struct SandboxSettings {
    pub idle_secs: u64,
    pub max_running: usize,
}

impl SandboxSettings {
    pub fn from_config(config: &SandboxConfig) -> Self {
        Self {
            idle_secs: config.sandbox_idle_secs,
            max_running: config.sandbox_max_running,
        }
    }
}
