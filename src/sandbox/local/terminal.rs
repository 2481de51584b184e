//! The local backend's terminal and tool runs. There is no container to
//! hold a shell, so the terminal is a bash on a PTY in a folder of the
//! learner's own (`<data-dir>/local/<learner>/home`) with the course's lab
//! files mirrored there, read-only, at their lesson paths, and pglab's
//! `docker` command first on PATH (`sandbox::labfiles`): `docker compose
//! exec postgres psql ...` as the lesson prints it runs this machine's psql
//! (and pg_dump...) from the bindir the backend found, on the cluster's
//! socket. Tools are the same binaries, run by pglab.
//!
//! Both run as the cluster's OS user (`postgres` when pglab is root), never
//! as pglab's own when it differs: the shell then gives no more than psql's
//! `\!` or the `COPY ... FROM PROGRAM` a superuser of the cluster already has
//! (this backend is for trusted users, see the module above).
//!
//! The PTY comes from `pty-process` (the crate forbids `unsafe`, and opening a
//! PTY and making it the child's controlling terminal needs libc calls).

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::LocalProvisioner;
use crate::sandbox::labfiles::{DOCKER_SHIM, LabFiles};
use crate::sandbox::terminal::{TerminalControl, ToolSink};
use crate::sandbox::{
    LAB_DB, LAB_USER, LearnerId, Provisioner, SandboxError, Terminal, TerminalSize, ToolOutput,
    ToolRun,
};

fn failed(what: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Failed(format!("could not {what}: {err}"))
}

impl LocalProvisioner {
    /// The environment of psql and the tools: the cluster's socket,
    /// labuser on labdb, the sandbox's password.
    async fn tool_env(&self, learner: LearnerId) -> Result<Vec<(String, String)>, SandboxError> {
        self.start(learner).await?;
        let record = self
            .records
            .get(learner)
            .await?
            .ok_or_else(|| SandboxError::Failed("the sandbox has no record".into()))?;
        let cluster = self.cluster(learner);
        Ok(vec![
            ("PGHOST".into(), cluster.dir.display().to_string()),
            ("PGUSER".into(), LAB_USER.into()),
            ("PGDATABASE".into(), LAB_DB.into()),
            ("PGPASSWORD".into(), record.password),
            ("LC_ALL".into(), "C.UTF-8".into()),
        ])
    }

    /// Writes pglab's `docker` (`<root>/terminal/bin`), the read-only copy
    /// of the lab files and the learner's home with its mirror of them;
    /// returns the home and the folder of the `docker` command. A failure to
    /// copy the lab files is logged: the terminal opens without them.
    async fn prepare_home(
        &self,
        learner: LearnerId,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), SandboxError> {
        let terminal = self.root.join("terminal");
        let bin = terminal.join("bin");
        let home = self.cluster(learner).dir.join("home");
        let content = self.content_dir.clone();
        let owner = self.run_as.map(|u| (u.uid, u.gid));
        let (h, b) = (home.clone(), bin.clone());
        let prepared = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&b)?;
            let shim = b.join("docker");
            if std::fs::read_to_string(&shim).ok().as_deref() != Some(DOCKER_SHIM) {
                let temp = b.join(format!(".docker-{:08x}", rand::random::<u32>()));
                std::fs::write(&temp, DOCKER_SHIM)?;
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
                std::fs::rename(&temp, &shim)?;
            }
            std::fs::create_dir_all(&h)?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&h, Some(uid), Some(gid))?;
            }
            let files = LabFiles::collect(&content);
            let copied = files
                .install_copy(&terminal.join("labfiles"))
                .and_then(|copy| files.install_mirror(&copy, &h, owner));
            if let Err(e) = copied {
                tracing::warn!("cannot put the lab files in the terminal's home: {e}");
            }
            Ok(())
        })
        .await
        .map_err(|e| failed("prepare the terminal", e))?;
        prepared.map_err(|e| failed("prepare the terminal's home", e))?;
        Ok((home, bin))
    }

    pub(super) async fn shell_terminal(
        &self,
        learner: LearnerId,
        size: TerminalSize,
    ) -> Result<Terminal, SandboxError> {
        let env = self.tool_env(learner).await?;
        let (home, bin) = self.prepare_home(learner).await?;
        let path = format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            bin.display(),
            self.bins.bindir.display()
        );
        let (pty, pts) = pty_process::open().map_err(|e| failed("open a PTY", e))?;
        pty.resize(pty_process::Size::new(size.rows, size.cols))
            .map_err(|e| failed("size the PTY", e))?;
        let mut cmd = pty_process::Command::new("bash")
            .args(["--noprofile", "--norc"])
            .env_clear()
            .envs(env)
            .env("TERM", "xterm-256color")
            .env("HOME", &home)
            .env("PATH", path)
            .env("PS1", r"\u@pglab-local:\w\$ ")
            .env("PGLAB_BACKEND", "local")
            .env("PGLAB_SERVICE", "postgres")
            .env("PGLAB_CONTAINER", format!("pglab-local-{learner}"))
            .env("PGLAB_IMAGE", format!("postgres:{}", self.bins.version))
            .env("PGLAB_SERVER_LOG", self.cluster(learner).log())
            .current_dir(&home)
            .kill_on_drop(true);
        if let Some(u) = self.run_as {
            cmd = cmd.uid(u.uid).gid(u.gid);
        }
        let child = cmd.spawn(pts).map_err(|e| failed("start bash", e))?;
        let (reader, writer) = pty.into_split();
        let (resize_tx, mut resize_rx) = tokio::sync::mpsc::channel::<TerminalSize>(4);
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        // The child and the PTY's write half live in one task, which owns
        // resizes and the end; input goes through a pipe into it.
        let (input, mut input_rx) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut child = child;
            let mut writer = writer;
            let mut close_rx = close_rx;
            let mut buf = vec![0u8; 8192];
            loop {
                tokio::select! {
                    n = input_rx.read(&mut buf) => match n {
                        Ok(0) | Err(_) => break,
                        Ok(n) => if writer.write_all(&buf[..n]).await.is_err() { break },
                    },
                    Some(size) = resize_rx.recv() => {
                        let _ = writer.resize(pty_process::Size::new(size.rows, size.cols));
                    }
                    _ = child.wait() => break,
                    _ = &mut close_rx => break,
                }
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
        });
        let stream = futures::stream::unfold(reader, |mut r| async move {
            let mut buf = vec![0u8; 16 * 1024];
            match r.read(&mut buf).await {
                // EIO is how a PTY says the other side closed.
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), r))
                }
            }
        });
        Ok(Terminal {
            output: Box::pin(stream),
            input: Box::pin(input),
            control: Box::new(LocalTerminal {
                resize: resize_tx,
                close: std::sync::Mutex::new(Some(close_tx)),
            }),
            banner: "bash on this machine in a folder of your own, as the cluster's OS user \
                     (the local backend has no container): psql and pg_dump reach your \
                     sandbox (PGUSER=labuser PGDATABASE=labdb); the lab files are here, \
                     read-only (cd practice/curriculum/...), and `docker compose exec \
                     postgres ...` runs this machine's psql and pg_dump"
                .into(),
        })
    }

    pub(super) async fn local_tool(
        &self,
        learner: LearnerId,
        run: ToolRun,
    ) -> Result<ToolOutput, SandboxError> {
        let env = self.tool_env(learner).await?;
        let what = run.tool.program();
        let mut cmd = tokio::process::Command::new(self.bins.tool(what));
        cmd.args(&run.args)
            .env_clear()
            .envs(env)
            .current_dir("/")
            .stdin(if run.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(u) = self.run_as {
            cmd.uid(u.uid).gid(u.gid);
        }
        let mut child = cmd.spawn().map_err(|e| failed(what, e))?;
        let mut sink = ToolSink::new(&run).await?;
        let stdin = child.stdin.take();
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| failed(what, "no stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| failed(what, "no stderr"))?;
        let path = run.stdin.clone();
        let feed = async move {
            if let (Some(mut pipe), Some(path)) = (stdin, path) {
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| failed(what, format!("open {}: {e}", path.display())))?;
                // A tool that stops reading early (an error) closes the pipe.
                let _ = tokio::io::copy(&mut file, &mut pipe).await;
            }
            Ok::<(), SandboxError>(())
        };
        let drain = async {
            let mut out = vec![0u8; 64 * 1024];
            let mut err = vec![0u8; 8 * 1024];
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                tokio::select! {
                    n = stdout.read(&mut out), if out_open => match n {
                        Ok(0) | Err(_) => out_open = false,
                        Ok(n) => sink.stdout(&out[..n]).await?,
                    },
                    n = stderr.read(&mut err), if err_open => match n {
                        Ok(0) | Err(_) => err_open = false,
                        Ok(n) => sink.stderr(&err[..n]),
                    },
                }
            }
            Ok::<(), SandboxError>(())
        };
        let all = async {
            tokio::try_join!(feed, drain)?;
            child.wait().await.map_err(|e| failed(what, e))
        };
        let status = tokio::time::timeout(run.deadline, all)
            .await
            .map_err(|_| failed(what, format!("it did not finish within {:?}", run.deadline)))??;
        sink.finish(i64::from(status.code().unwrap_or(-1))).await
    }
}

/// Resizes and ends one local psql.
struct LocalTerminal {
    resize: tokio::sync::mpsc::Sender<TerminalSize>,
    close: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[async_trait]
impl TerminalControl for LocalTerminal {
    async fn resize(&self, size: TerminalSize) -> Result<(), SandboxError> {
        let _ = self.resize.send(size).await;
        Ok(())
    }

    async fn close(&self) {
        let sender = self.close.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = sender {
            let _ = tx.send(());
        }
    }
}
