//! The SQL console: learners' SQL run in their own sandbox with psql's
//! semantics, in named sessions (T1, T2...) that keep their connection.
//!
//! The pipeline of a run:
//! 1. [`split`] cuts the script into statements and meta-commands, as psql does
//!    ([`cursor`] finds the one under the editor's cursor for Shift+Enter);
//! 2. [`session`] finds (or opens) the session's dedicated connection and runs
//!    the items one at a time in a background task, stopping at the first
//!    error (`ON_ERROR_STOP`) and tracking the transaction state;
//! 3. [`run`] sends each statement through the simple query protocol and
//!    builds its [`result::StatementResult`] (columns, capped rows, [`tag`],
//!    [`notices`] with all their fields, which [`relay`] reads off the wire
//!    between sqlx and the sandbox, errors); [`meta`] answers `\d` and
//!    friends;
//!    what it cut is kept whole for a while in [`kept`] ("show all");
//! 4. [`plan_hook`] is where EXPLAIN output becomes a plan view;
//! 5. [`history`] keeps what each learner ran, searchable; [`schema`] reads
//!    the learner's own schema for the editor's completion;
//! 6. [`records`] writes a run's history, evidence and plans through the
//!    store's writer and tells the answer when they are committed.

pub mod branch;
pub mod copy;
pub mod cursor;
pub mod history;
pub mod kept;
pub mod meta;
pub mod notices;
pub mod plan_hook;
pub mod records;
pub mod relay;
pub mod result;
pub mod run;
pub mod schema;
pub mod session;
pub mod split;
pub mod tag;
pub mod vars;
pub mod watch;

use clap::Args;

pub use session::{ConsoleError, Consoles};

/// Settings of the console; each flag can come from the environment.
#[derive(Clone, Debug, Args)]
pub struct ConsoleConfig {
    /// Default per-statement timeout of learners' SQL, in seconds.
    #[arg(
        long = "console-statement-timeout",
        env = "PGLAB_CONSOLE_STATEMENT_TIMEOUT",
        default_value_t = 30
    )]
    pub statement_timeout_s: u64,
    /// Highest timeout a learner may ask for on one run, in seconds.
    #[arg(
        long = "console-max-timeout",
        env = "PGLAB_CONSOLE_MAX_TIMEOUT",
        default_value_t = 300
    )]
    pub max_timeout_s: u64,
    /// Seconds a session is kept after the page stops keeping it alive.
    #[arg(
        long = "console-session-idle",
        env = "PGLAB_CONSOLE_SESSION_IDLE",
        default_value_t = 600
    )]
    pub session_idle_s: u64,
    /// Rows of one statement sent to the browser (the rest are counted).
    #[arg(
        long = "console-row-cap",
        env = "PGLAB_CONSOLE_ROW_CAP",
        default_value_t = 1000
    )]
    pub row_cap: usize,
    /// Bytes of one value sent to the browser (the rest is cut with a marker).
    #[arg(
        long = "console-value-cap",
        env = "PGLAB_CONSOLE_VALUE_CAP",
        default_value_t = 10_000
    )]
    pub value_cap: usize,
    /// Bytes of cut results kept whole per learner for "show all" (the
    /// oldest go first; 0 keeps none).
    #[arg(
        long = "console-keep-bytes",
        env = "PGLAB_CONSOLE_KEEP_BYTES",
        default_value_t = 64 << 20
    )]
    pub keep_bytes: usize,
    /// Bytes of cut results kept whole for the whole server.
    #[arg(
        long = "console-keep-total-bytes",
        env = "PGLAB_CONSOLE_KEEP_TOTAL_BYTES",
        default_value_t = 512 << 20
    )]
    pub keep_total_bytes: usize,
    /// Largest script accepted, in bytes.
    #[arg(long = "console-max-script", env = "PGLAB_CONSOLE_MAX_SCRIPT", default_value_t = 1 << 20)]
    pub max_script_bytes: usize,
    /// Sessions one learner may have open at once.
    #[arg(
        long = "console-max-sessions",
        env = "PGLAB_CONSOLE_MAX_SESSIONS",
        default_value_t = 6
    )]
    pub max_sessions: usize,
    /// Milliseconds `POST /api/sql` waits for a run before answering "running".
    #[arg(
        long = "console-wait-ms",
        env = "PGLAB_CONSOLE_WAIT_MS",
        default_value_t = 1500
    )]
    pub wait_ms: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            statement_timeout_s: 30,
            max_timeout_s: 300,
            session_idle_s: 600,
            row_cap: 1000,
            value_cap: 10_000,
            keep_bytes: 64 << 20,
            keep_total_bytes: 512 << 20,
            max_script_bytes: 1 << 20,
            max_sessions: 6,
            wait_ms: 1500,
        }
    }
}
