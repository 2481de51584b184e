//! What a backend hands out for the sandbox terminal and for the tools that
//! run beside the server (pg_dump, pg_restore, createdb...): the types of
//! [`Provisioner::open_terminal`](super::Provisioner::open_terminal) and
//! [`Provisioner::run_tool`](super::Provisioner::run_tool), shared by both
//! backends so that the web layer never knows which one runs.
//!
//! - Docker: a TTY exec of `bash` as the unprivileged `postgres` user in the
//!   learner's own container (`docker/exec.rs`).
//! - Local: `bash` on a PTY in a folder of the learner's own, as the
//!   cluster's OS user, with this machine's psql and pg_dump on the cluster's
//!   socket (`local/terminal.rs`).
//!
//! Both have the lab files at their lesson paths, read-only, and pglab's
//! `docker` command for `docker compose exec postgres ...` ([`super::labfiles`]).

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::SandboxError;

/// Smallest and largest terminal sides accepted (xterm.js sends its fitted
/// size; anything outside is clamped, never refused).
const MIN_SIDE: u16 = 2;
const MAX_COLS: u16 = 500;
const MAX_ROWS: u16 = 200;

/// Columns and rows of a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

impl TerminalSize {
    /// A size clamped to sane bounds (a browser may send 0 or 100000).
    pub fn clamped(cols: u32, rows: u32) -> Self {
        let side = |v: u32, max: u16| v.clamp(u32::from(MIN_SIDE), u32::from(max)) as u16;
        Self {
            cols: side(cols, MAX_COLS),
            rows: side(rows, MAX_ROWS),
        }
    }
}

impl Default for TerminalSize {
    fn default() -> Self {
        Self { cols: 80, rows: 24 }
    }
}

/// The terminal's output: chunks of raw bytes until the program ends.
pub type OutputStream = Pin<Box<dyn Stream<Item = std::io::Result<Vec<u8>>> + Send>>;

/// Resizes and ends a running terminal.
#[async_trait]
pub trait TerminalControl: Send + Sync {
    /// Tells the program its window changed size.
    async fn resize(&self, size: TerminalSize) -> Result<(), SandboxError>;
    /// Ends the program (and what it started). Idempotent.
    async fn close(&self);
}

/// A program running on a terminal in the learner's sandbox.
pub struct Terminal {
    /// What the terminal sends (program output, echo).
    pub output: OutputStream,
    /// What the learner types.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub control: Box<dyn TerminalControl>,
    /// One line printed before the program's own output: what runs, and
    /// why when it is only psql.
    pub banner: String,
}

/// The tools pglab itself runs against a sandbox (an allow-list: nothing
/// from the request becomes a program name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    PgDump,
    PgRestore,
    Createdb,
    Dropdb,
    Psql,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Self::PgDump => "pg_dump",
            Self::PgRestore => "pg_restore",
            Self::Createdb => "createdb",
            Self::Dropdb => "dropdb",
            Self::Psql => "psql",
        }
    }
}

/// One non-interactive tool run: stdin from a file, stdout into a file.
#[derive(Clone, Debug)]
pub struct ToolRun {
    pub tool: Tool,
    pub args: Vec<String>,
    /// A file streamed to the tool's stdin (then end of file).
    pub stdin: Option<PathBuf>,
    /// Where stdout goes; it is discarded when `None`.
    pub stdout: Option<PathBuf>,
    /// Most stdout bytes written; past it the run fails.
    pub max_stdout: u64,
    /// The run fails after this long.
    pub deadline: Duration,
}

impl ToolRun {
    /// A run of `tool` with `args`, no stdin, stdout discarded, 2 min.
    pub fn new(tool: Tool, args: &[&str]) -> Self {
        Self {
            tool,
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
            stdout: None,
            max_stdout: 0,
            deadline: Duration::from_secs(120),
        }
    }
}

/// How a tool run ended.
#[derive(Clone, Debug)]
pub struct ToolOutput {
    pub exit_code: i64,
    /// The end of stderr (at most [`STDERR_KEEP`] bytes).
    pub stderr: String,
    pub stdout_bytes: u64,
}

impl ToolOutput {
    /// `Ok` when the tool exited 0, else its stderr as the error.
    pub fn ok(self, what: &str) -> Result<Self, SandboxError> {
        if self.exit_code == 0 {
            Ok(self)
        } else {
            Err(SandboxError::Failed(format!(
                "{what} failed (exit {}): {}",
                self.exit_code,
                self.stderr.trim()
            )))
        }
    }
}

/// Stderr kept from a tool run.
pub const STDERR_KEEP: usize = 16 * 1024;

/// Collects stdout into a file (with the size cap) and the end of stderr.
pub struct ToolSink {
    file: Option<tokio::fs::File>,
    max: u64,
    pub written: u64,
    stderr: Vec<u8>,
}

impl ToolSink {
    pub async fn new(run: &ToolRun) -> Result<Self, SandboxError> {
        let file = match &run.stdout {
            Some(path) => Some(tokio::fs::File::create(path).await.map_err(|e| {
                SandboxError::Failed(format!("cannot create {}: {e}", path.display()))
            })?),
            None => None,
        };
        Ok(Self {
            file,
            max: run.max_stdout,
            written: 0,
            stderr: Vec::new(),
        })
    }

    pub async fn stdout(&mut self, bytes: &[u8]) -> Result<(), SandboxError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        self.written += bytes.len() as u64;
        if self.written > self.max {
            return Err(SandboxError::Failed(format!(
                "the output is larger than the limit of {} bytes",
                self.max
            )));
        }
        file.write_all(bytes)
            .await
            .map_err(|e| SandboxError::Failed(format!("cannot write the output: {e}")))
    }

    pub fn stderr(&mut self, bytes: &[u8]) {
        self.stderr.extend_from_slice(bytes);
        if self.stderr.len() > 2 * STDERR_KEEP {
            let cut = self.stderr.len() - STDERR_KEEP;
            self.stderr.drain(..cut);
        }
    }

    pub async fn finish(mut self, exit_code: i64) -> Result<ToolOutput, SandboxError> {
        if let Some(file) = self.file.as_mut() {
            file.flush()
                .await
                .map_err(|e| SandboxError::Failed(format!("cannot write the output: {e}")))?;
            file.sync_all()
                .await
                .map_err(|e| SandboxError::Failed(format!("cannot write the output: {e}")))?;
        }
        let keep = self.stderr.len().saturating_sub(STDERR_KEEP);
        Ok(ToolOutput {
            exit_code,
            stderr: String::from_utf8_lossy(&self.stderr[keep..]).into_owned(),
            stdout_bytes: self.written,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::TerminalSize;

    #[test]
    fn sizes_are_clamped() {
        assert_eq!(
            TerminalSize::clamped(0, 100_000),
            TerminalSize { cols: 2, rows: 200 }
        );
        assert_eq!(
            TerminalSize::clamped(120, 40),
            TerminalSize {
                cols: 120,
                rows: 40
            }
        );
    }
}
