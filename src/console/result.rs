//! What a run answers: one [`StatementResult`] per statement or meta-command,
//! serialized as documented in `docs/api.md`.

use serde::Serialize;

use super::notices::Notice;

/// A result column: its name and type as psql's `\gdesc` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A server error, with what psql prints about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SqlError {
    /// `ERROR`, `FATAL`...
    pub severity: String,
    /// The SQLSTATE, e.g. `42P01`; empty for a failure that is not the
    /// server's (connection lost).
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement, as the server gives it.
    pub position: Option<usize>,
    /// The same position counted from the start of the whole script (1-based).
    pub script_position: Option<usize>,
}

/// The transaction state of a session, as the pane's badge shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    #[default]
    Idle,
    InTransaction,
    /// An error happened in the transaction: everything until ROLLBACK fails
    /// with 25P02.
    Failed,
}

/// The result of one statement or meta-command.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatementResult {
    /// The statement as sent (or the meta-command line).
    pub sql: String,
    /// `statement` or `meta`.
    pub kind: &'static str,
    /// Character offset of the statement in the script, and its 1-based line.
    pub offset: usize,
    pub line: usize,
    pub columns: Vec<Column>,
    /// Values as text; `None` is SQL NULL (distinct from the empty string).
    pub rows: Vec<Vec<Option<String>>>,
    /// The tag psql prints (`INSERT 0 5`), `None` for a failed statement.
    pub command_tag: Option<String>,
    pub notices: Vec<Notice>,
    pub error: Option<SqlError>,
    pub elapsed_ms: f64,
    /// Whether `rows` holds fewer rows than the statement returned.
    pub truncated: bool,
    /// How many rows the statement returned in all.
    pub total_rows: u64,
    /// Whether some value was cut at the per-value size cap.
    pub values_truncated: bool,
    /// A plan view for EXPLAIN statements (see `console::plan_hook`).
    pub plan_html: Option<String>,
    /// The JSON plan behind `plan_html`, kept for plan compare (not sent).
    #[serde(skip)]
    pub plan_json: Option<String>,
    /// Plain text output of a meta-command (`\conninfo`, `\?`, `\x`).
    pub text: Option<String>,
    /// The statement was only comments and `;`: the server answered
    /// EmptyQueryResponse; psql prints nothing for it.
    pub empty_query: bool,
    /// Asynchronous notifications received with this statement, worded as
    /// psql prints them after it.
    pub notifications: Vec<String>,
    /// Notifications received but not kept (past the cap).
    pub notifications_dropped: u64,
}

impl StatementResult {
    /// A result carrying only an error that did not come from the server.
    pub fn client_error(sql: &str, message: impl Into<String>) -> Self {
        Self {
            sql: sql.to_string(),
            kind: "statement",
            error: Some(SqlError {
                severity: "ERROR".into(),
                message: message.into(),
                ..SqlError::default()
            }),
            ..Self::default()
        }
    }
}

/// The answer to a whole run (a script).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunResult {
    pub statements: Vec<StatementResult>,
    /// The session's transaction state after the run.
    pub transaction: TxState,
    /// Index in `statements` of the statement that stopped the script.
    pub failed_statement: Option<usize>,
    /// How many statements of the script were not run after the failure.
    pub skipped: usize,
    /// The session's `\x` setting, for the pane to render with.
    pub expanded: bool,
    /// The session's `\timing` setting.
    pub timing: bool,
    /// Whether the session's connection was lost (it reconnects next run).
    pub connection_lost: bool,
    /// The database the session is connected to after the run.
    pub database: String,
    /// Set when the run could not start because the sandbox backend is
    /// unavailable (e.g. the Docker engine is stopped): the answer is then a
    /// 503 carrying this message as `error`.
    #[serde(skip)]
    pub sandbox_unavailable: Option<String>,
}
