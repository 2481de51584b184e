//! Execs in a learner's container (on the machine's engine, or on the
//! swarm node's own engine that runs the task: [`ExecTarget`]): the sandbox terminal (a TTY exec of
//! `bash`) and non-interactive tool runs (pg_dump, pg_restore...).
//!
//! Both run as the image's unprivileged `postgres` user (never root: the
//! container keeps a few capabilities for its entrypoint), with the
//! environment that makes the course's commands work as written:
//! `PGHOST=/var/run/postgresql PGUSER=labuser PGDATABASE=labdb` and the
//! sandbox's own password (the socket uses scram). `HOME` is
//! `/var/lib/postgresql/lab`, where Alembic projects and dumps live; it stays
//! across container restarts (not across a reset, which re-creates it).
//!
//! Before the shell starts, the course's lab files are copied into the
//! container (read-only, under `/srv/pglab/course`) and the shell mirrors
//! them in HOME at their lesson paths, with pglab's `docker` command on PATH
//! (`sandbox::labfiles`): `docker compose exec postgres psql ...` works as
//! the section prints it, from the section's folder.
//!
//! The engine does not end an exec when its client goes away, so the shell
//! writes its pid to a file and [`DockerTerminal::close`] sends it SIGHUP
//! (bash passes that on to its jobs), then SIGKILL.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{ResizeExecOptionsBuilder, UploadToContainerOptionsBuilder};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::DockerProvisioner;
use super::engine::Engine;
use super::spec::SOCKET_DIR;
use crate::sandbox::labfiles::{CONTAINER_ROOT, LabFiles};
use crate::sandbox::terminal::{TerminalControl, ToolSink};
use crate::sandbox::{
    LAB_DB, LAB_USER, LearnerId, Provisioner, SandboxError, Terminal, TerminalSize, ToolOutput,
    ToolRun,
};

/// The unprivileged user of the image (also the official `postgres` image's).
const USER: &str = "postgres";
/// The learner's home in the container.
const HOME: &str = "/var/lib/postgresql/lab";
/// Deadline of exec set-up calls.
const QUICK: Duration = Duration::from_secs(15);

/// The shell's start: note its pid, make HOME, mirror the lab files there
/// (`mirror`, shell commands run in HOME), give Debian's python3-alembic
/// (which ships no `alembic` command) one, then become bash.
fn shell_script(pidfile: &str, mirror: &str) -> String {
    format!(
        "echo $$ > {pidfile}; mkdir -p \"$HOME/.local/bin\"; cd \"$HOME\" || exit 1; {mirror}\
         if ! command -v alembic >/dev/null 2>&1; then \
           printf '#!/bin/sh\\nexec python3 -m alembic \"$@\"\\n' > \"$HOME/.local/bin/alembic\"; \
           chmod 755 \"$HOME/.local/bin/alembic\"; fi; \
         exec bash"
    )
}

fn env(password: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        format!("PGHOST={SOCKET_DIR}"),
        format!("PGUSER={LAB_USER}"),
        format!("PGDATABASE={LAB_DB}"),
        format!("PGPASSWORD={password}"),
        format!("HOME={HOME}"),
        // pglab's own `docker` last: an image's own (ours has one) wins.
        format!(
            "PATH={HOME}/.local/bin:/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin:{CONTAINER_ROOT}/bin"
        ),
        "LANG=C.UTF-8".to_string(),
        "EDITOR=nano".to_string(),
    ];
    if tty {
        env.push("TERM=xterm-256color".to_string());
    }
    env
}

fn failed(what: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Failed(format!("could not {what} in the sandbox container: {err}"))
}

async fn quick<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, SandboxError> {
    tokio::time::timeout(QUICK, fut)
        .await
        .map_err(|_| failed(what, format!("no answer within {QUICK:?}")))?
        .map_err(|e| failed(what, e))
}

impl DockerProvisioner {
    /// The running container and password of the learner's sandbox.
    async fn running_container(
        &self,
        learner: LearnerId,
    ) -> Result<(String, String), SandboxError> {
        self.start(learner).await?;
        let record = self
            .records
            .get(learner)
            .await?
            .ok_or_else(|| SandboxError::Failed("the sandbox has no record".into()))?;
        Ok((record.container, record.password))
    }

    pub(super) async fn exec_terminal(
        &self,
        learner: LearnerId,
        size: TerminalSize,
    ) -> Result<Terminal, SandboxError> {
        let (container, password) = self.running_container(learner).await?;
        // What pglab's `docker` says of this sandbox (docker compose ps).
        let image = match self.compose.applied(learner).await {
            Ok(Some(plan)) => plan.image_written,
            _ => self.spec.image.clone(),
        };
        let target = ExecTarget {
            engine: &self.engine,
            container: &container,
            password: &password,
        };
        open_terminal(&target, &self.content_dir, &image, size).await
    }

    pub(super) async fn exec_tool(
        &self,
        learner: LearnerId,
        run: ToolRun,
    ) -> Result<ToolOutput, SandboxError> {
        let (container, password) = self.running_container(learner).await?;
        let target = ExecTarget {
            engine: &self.engine,
            container: &container,
            password: &password,
        };
        run_tool(&target, run).await
    }
}

/// A running sandbox container to exec in: the engine that runs it (the
/// machine's, or a swarm node's own), its id and the sandbox's password.
pub(crate) struct ExecTarget<'a> {
    pub engine: &'a Engine,
    pub container: &'a str,
    pub password: &'a str,
}

/// Opens the sandbox terminal in `target`: bash as `postgres`, the lab files
/// of `content_dir` copied in and mirrored in HOME; `image` is what pglab's
/// `docker` in the container says of the sandbox.
pub(crate) async fn open_terminal(
    target: &ExecTarget<'_>,
    content_dir: &Path,
    image: &str,
    size: TerminalSize,
) -> Result<Terminal, SandboxError> {
    let container = target.container.to_string();
    let docker = target.engine.docker.clone();
    let pidfile = format!("/tmp/pglab-term-{:016x}.pid", rand::random::<u64>());
    let mirror = match copy_lab_files(&docker, &container, content_dir).await {
        Some(files) => files.mirror_script(&format!("{CONTAINER_ROOT}/course")),
        None => String::new(),
    };
    let mut env = env(target.password, true);
    env.extend([
        "PGLAB_BACKEND=docker".to_string(),
        "PGLAB_SERVICE=postgres".to_string(),
        format!("PGLAB_CONTAINER={container}"),
        format!("PGLAB_IMAGE={image}"),
    ]);
    let options = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(true),
        env: Some(env),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            shell_script(&pidfile, &mirror),
        ]),
        user: Some(USER.to_string()),
        working_dir: Some("/var/lib/postgresql".to_string()),
        ..Default::default()
    };
    let exec = quick("open a terminal", docker.create_exec(&container, options)).await?;
    // Raw bytes both ways (see hijack.rs for why not bollard's start_exec).
    let version = docker.client_version();
    let api = format!("{}.{}", version.major_version, version.minor_version);
    let (output, input) = super::hijack::start_tty(target.engine, &api, &exec.id, QUICK).await?;
    let control = DockerTerminal {
        docker,
        container,
        exec: exec.id,
        pidfile,
    };
    // API 1.41 takes no size at create: set it once the TTY exists.
    control.resize(size).await?;
    Ok(Terminal {
        output,
        input,
        control: Box::new(control),
        banner: "bash in your sandbox container, as the postgres OS user \
                 (psql, pg_dump, pg_restore, createdb, alembic, nano; PGUSER=labuser PGDATABASE=labdb); \
                 the lab files are here, read-only (cd practice/curriculum/...), and \
                 `docker compose exec postgres ...` runs in this container"
            .into(),
    })
}

/// Copies the course's lab files and pglab's `docker` into the container
/// (the engine's archive upload, as `docker cp` does): the files, or `None`
/// when the copy failed (the terminal opens anyway).
async fn copy_lab_files(docker: &Docker, container: &str, content_dir: &Path) -> Option<LabFiles> {
    let dir = content_dir.to_path_buf();
    let built = tokio::task::spawn_blocking(move || {
        let files = LabFiles::collect(&dir);
        files.container_tar().map(|tar| (files, tar))
    })
    .await;
    let (files, tar) = match built {
        Ok(Ok(built)) => built,
        Ok(Err(e)) => {
            tracing::warn!("cannot pack the lab files: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!("cannot pack the lab files: {e}");
            return None;
        }
    };
    let options = UploadToContainerOptionsBuilder::new().path("/").build();
    let upload =
        docker.upload_to_container(container, Some(options), bollard::body_full(tar.into()));
    match quick("copy the lab files", upload).await {
        Ok(()) => Some(files),
        Err(e) => {
            tracing::warn!(%container, "{e}");
            None
        }
    }
}

/// Runs one allowed PostgreSQL tool in `target`, as `postgres` with the
/// sandbox's PG* settings, its output through the run's sink.
pub(crate) async fn run_tool(
    target: &ExecTarget<'_>,
    run: ToolRun,
) -> Result<ToolOutput, SandboxError> {
    let docker = &target.engine.docker;
    let container = target.container;
    let mut cmd = vec![run.tool.program().to_string()];
    cmd.extend(run.args.iter().cloned());
    let options = CreateExecOptions {
        attach_stdin: Some(run.stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        env: Some(env(target.password, false)),
        cmd: Some(cmd),
        user: Some(USER.to_string()),
        working_dir: Some("/var/lib/postgresql".to_string()),
        ..Default::default()
    };
    let what = run.tool.program();
    let exec = quick(what, docker.create_exec(container, options)).await?;
    let StartExecResults::Attached { mut output, input } =
        quick(what, docker.start_exec(&exec.id, None)).await?
    else {
        return Err(failed(what, "the engine detached it"));
    };
    let mut sink = ToolSink::new(&run).await?;
    let stdin = run.stdin.clone();
    let feed = async move {
        let mut input = input;
        if let Some(path) = stdin {
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| failed(what, format!("cannot open {}: {e}", path.display())))?;
            tokio::io::copy(&mut file, &mut input)
                .await
                .map_err(|e| failed(what, e))?;
        }
        // End of file for the tool (a half-close of the attach stream).
        let _ = input.shutdown().await;
        Ok::<(), SandboxError>(())
    };
    let drain = async {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| failed(what, e))? {
                bollard::container::LogOutput::StdOut { message } => sink.stdout(&message).await?,
                bollard::container::LogOutput::StdErr { message } => sink.stderr(&message),
                _ => {}
            }
        }
        Ok::<(), SandboxError>(())
    };
    let both = async { tokio::try_join!(feed, drain) };
    tokio::time::timeout(run.deadline, both)
        .await
        .map_err(|_| failed(what, format!("it did not finish within {:?}", run.deadline)))??;
    // The output ends a moment before the engine records the exit code.
    let mut exit_code = None;
    for _ in 0..100 {
        let inspect = quick(what, docker.inspect_exec(&exec.id)).await?;
        if inspect.running != Some(true) && inspect.exit_code.is_some() {
            exit_code = inspect.exit_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.finish(exit_code.unwrap_or(-1)).await
}

/// Resizes and ends one terminal exec.
struct DockerTerminal {
    docker: Docker,
    container: String,
    exec: String,
    pidfile: String,
}

#[async_trait]
impl TerminalControl for DockerTerminal {
    async fn resize(&self, size: TerminalSize) -> Result<(), SandboxError> {
        let options = ResizeExecOptionsBuilder::new()
            .w(i32::from(size.cols))
            .h(i32::from(size.rows))
            .build();
        quick(
            "resize the terminal",
            self.docker.resize_exec(&self.exec, options),
        )
        .await
    }

    async fn close(&self) {
        let pidfile = &self.pidfile;
        let script = format!(
            "p=$(cat {pidfile} 2>/dev/null) || exit 0; rm -f {pidfile}; \
             kill -HUP \"$p\" 2>/dev/null || exit 0; sleep 2; kill -KILL \"$p\" 2>/dev/null; exit 0"
        );
        let options = CreateExecOptions {
            cmd: Some(vec!["sh".to_string(), "-c".to_string(), script]),
            user: Some(USER.to_string()),
            ..Default::default()
        };
        let started = async {
            let exec = self.docker.create_exec(&self.container, options).await?;
            let detached = StartExecOptions {
                detach: true,
                ..Default::default()
            };
            self.docker.start_exec(&exec.id, Some(detached)).await
        };
        if let Err(err) = quick("close the terminal", started).await {
            tracing::warn!(container = %self.container, "closing a terminal: {err}");
        }
    }
}
