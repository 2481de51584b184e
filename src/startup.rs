//! Builds the application from its settings, binds the listener and serves
//! until SIGINT or SIGTERM.
//!
//! Start-up checks every setting before anything listens, so that a bad one
//! ends with a [`StartupError`] that says what is wrong and what to do.
//! Shutdown is graceful and never touches learners' sandboxes: they are kept
//! and re-attached on the next start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::course::Course;
use crate::ops::lock::{DataDirLock, LockError};
use crate::sandbox;
use crate::store::Store;
use crate::web;

/// A setting that makes the server unusable, worded for the person starting it.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}: fix the file or the setting that names it (PGLAB_*_SECRET_FILE)")]
    SecretFile(crate::settings::SecretFileError),
    #[error(
        "content dir {0} does not exist or is not a folder: pass --content-dir (or PGLAB_CONTENT_DIR) pointing at the course folder"
    )]
    ContentDirMissing(PathBuf),
    #[error(
        "data dir {path} is not writable ({source}): pass --data-dir (or PGLAB_DATA_DIR) pointing at a writable folder"
    )]
    DataDirUnwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr}: {source}; is another server using it? pass --bind (or PGLAB_BIND) with a free address, or port 0 for any"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "data dir {path} is in use by another pglab server{}: stop it, or pass --data-dir (or PGLAB_DATA_DIR) pointing at another folder",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    DataDirInUse { path: PathBuf, pid: Option<u32> },
    #[error("cannot open the store {path}: {source}")]
    Store {
        path: PathBuf,
        source: anyhow::Error,
    },
    #[error("{0}")]
    Sandbox(String),
    #[error("OpenID Connect: {0}")]
    Oidc(String),
}

/// A built application: settings checked, store migrated, listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Held while the server lives: no second server, no restore under us.
    _lock: DataDirLock,
}

impl Application {
    /// Checks the settings, opens the store and binds the listener.
    pub async fn build(mut config: ServeConfig) -> Result<Self, StartupError> {
        config
            .read_secret_files()
            .map_err(StartupError::SecretFile)?;
        if !config.content_dir.is_dir() {
            return Err(StartupError::ContentDirMissing(config.content_dir.clone()));
        }
        let oidc = crate::auth::oidc::Oidc::from_config(&config.auth.oidc)
            .map_err(StartupError::Oidc)?
            .map(Arc::new);
        ensure_writable_dir(&config.data_dir)?;
        let lock = DataDirLock::acquire(&config.data_dir).map_err(|err| match err {
            LockError::InUse { pid, .. } => StartupError::DataDirInUse {
                path: config.data_dir.clone(),
                pid,
            },
            LockError::Io { source, .. } => StartupError::DataDirUnwritable {
                path: config.data_dir.clone(),
                source,
            },
        })?;
        let store_path = config.store_path();
        let store = Store::open(&store_path)
            .await
            .map_err(|source| StartupError::Store {
                path: store_path.clone(),
                source,
            })?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let course = Course::load(&config.content_dir);
        let sandbox = sandbox::select(&config.sandbox, &config.sandbox_dirs(), &store)
            .await
            .map_err(|e| StartupError::Sandbox(format!("{e:#}")))?;
        // Learners who waited for a place before a restart get it back.
        if let Err(err) = crate::sandbox::line_keep::resume(&sandbox, &store).await {
            tracing::warn!(error = %err, "the admission line kept in the store could not be read");
        }
        let console = crate::console::Consoles::new(sandbox.clone(), config.console.clone());
        console.set_lab_files(
            crate::sandbox::labfiles::LabFiles::collect(&config.content_dir).texts(),
        );
        console.spawn_sweeper();
        let labs = crate::labs::Labs::new(sandbox.clone(), &config.labs);
        let progress = crate::progress::ProgressHub::default();
        let records = crate::console::records::Records::new(store.clone(), progress.clone());
        let state = AppState {
            config: Arc::new(config),
            store,
            course: Arc::new(course),
            sandbox,
            sandbox_logs: Default::default(),
            progress,
            console,
            records,
            labs,
            oidc,
        };
        Ok(Self {
            listener,
            state,
            _lock: lock,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state, for callers that need it before serving.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let router = web::router(self.state.clone());
        let shutdown = shutdown_signal();
        // Tests and scripts read this line to find the port when binding port 0.
        say(format_args!("pglab listening on http://{addr}"));
        if let Some(url) = self.state.config.public_url() {
            say(format_args!("pglab public URL: {url}/"));
        }
        if !self.state.config.auth.local_passwords() {
            // No password to set: the setup link would make an account nobody can use.
            tracing::info!(
                "local passwords are off: instructors come from the OpenID provider's instructor claim (or `pglab user`)"
            );
        } else if let Some(link) = crate::auth::setup::announce(
            self.state.store.pool(),
            self.state.config.public_url(),
            addr,
        )
        .await
        {
            say(format_args!(
                "pglab has no instructor yet: create the first one at {link}"
            ));
        }
        tracing::info!(%addr, backend = self.state.sandbox.backend_name(), "pglab is ready");
        // The signal starts the drain: no new connections, and in-flight
        // requests get the grace period to finish, not longer (a start queued
        // behind others could otherwise hold the stop for a minute).
        let (stopping, _) = tokio::sync::watch::channel(false);
        let signalled = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let (drain, cut) = (
            signalled(stopping.subscribe()),
            signalled(stopping.subscribe()),
        );
        tokio::spawn(async move {
            shutdown.await;
            let _ = stopping.send(true);
        });
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        let serve = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(drain);
        tokio::select! {
            served = std::future::IntoFuture::into_future(serve) => served?,
            () = async { cut.await; tokio::time::sleep(grace).await } => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still in flight after the shutdown grace period; stopping anyway"
                );
            }
        }
        crate::sandbox::line_keep::flush(self.state.sandbox.as_ref(), &self.state.store).await;
        tracing::info!("pglab stopped; learners' sandboxes are kept");
        Ok(())
    }
}

/// Creates the folder if needed and proves it is writable with a probe file.
fn ensure_writable_dir(dir: &Path) -> Result<(), StartupError> {
    let fail = |source| StartupError::DataDirUnwritable {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".pglab-write-probe");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Registers the SIGINT/SIGTERM handlers now (before the "listening" line,
/// so that a signal sent right after it is never the default, fatal one) and
/// returns a future that ends at the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let int = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => {},
                _ = term => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// Prints a line for the person (or script) that started the server. A closed
/// or full stdout must never bring the server down, so errors are ignored
/// (`println!` would panic on a closed pipe).
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
