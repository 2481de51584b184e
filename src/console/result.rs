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
    /// The fields psql adds in verbose form (`\errverbose`): context,
    /// schema/table/column/type/constraint names and the server's source
    /// location. Not sent to the browser.
    #[serde(skip)]
    pub verbose: Option<Box<VerboseFields>>,
    /// 1-based character position in the statement, as the server gives it.
    pub position: Option<usize>,
    /// The same position counted from the start of the whole script (1-based).
    pub script_position: Option<usize>,
    /// The server's CONTEXT (where in a function or DO block it failed),
    /// which psql prints under an error.
    pub context: Option<String>,
    /// The failed internally-generated query (a PL/pgSQL function's SQL) and
    /// the 1-based position in it, psql's `QUERY:` line and its caret.
    pub internal_query: Option<String>,
    pub internal_position: Option<usize>,
}

/// The parts of a server error only `\errverbose` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerboseFields {
    pub context: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub data_type: Option<String>,
    pub constraint: Option<String>,
    /// `routine, file:line`, as psql's `LOCATION:` line.
    pub location: Option<String>,
}

impl VerboseFields {
    /// Copies them out of a server error.
    pub fn from_pg(pg: &sqlx::postgres::PgDatabaseError) -> Box<Self> {
        let location = match (pg.routine(), pg.file(), pg.line()) {
            (Some(r), Some(f), Some(l)) => Some(format!("{r}, {f}:{l}")),
            (None, Some(f), Some(l)) => Some(format!("{f}:{l}")),
            _ => None,
        };
        Box::new(Self {
            context: pg.r#where().map(str::to_string),
            schema: pg.schema().map(str::to_string),
            table: pg.table().map(str::to_string),
            column: pg.column().map(str::to_string),
            data_type: pg.data_type().map(str::to_string),
            constraint: pg.constraint().map(str::to_string),
            location,
        })
    }
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

/// psql's output format (`\pset format`), of those the console prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Aligned,
    Unaligned,
    Csv,
}

/// psql's print options (`\pset`) the console follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrintOptions {
    pub format: Format,
    /// `\t`: rows only, no header, title or footer.
    pub tuples_only: bool,
    /// 0, 1 (psql's default) or 2.
    pub border: u8,
    /// The `(N rows)` footer.
    pub footer: bool,
    /// The unaligned format's field separator.
    pub fieldsep: String,
}

impl Default for PrintOptions {
    fn default() -> Self {
        Self {
            format: Format::Aligned,
            tuples_only: false,
            border: 1,
            footer: true,
            fieldsep: "|".into(),
        }
    }
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
    /// The whole result, every row uncut, when rows or values were cut and
    /// it fit in the keep budget (moved to `console::kept`, not sent).
    #[serde(skip)]
    pub full: Option<super::kept::FullRows>,
    /// The whole result is kept: `GET /api/runs/{run}/statements/{i}/rows`
    /// pages through it ("show all").
    pub full_kept: bool,
    /// A plan view for EXPLAIN statements (see `console::plan_hook`).
    pub plan_html: Option<String>,
    /// The JSON plan behind `plan_html`, kept for plan compare (not sent).
    #[serde(skip)]
    pub plan_json: Option<String>,
    /// Plain text output of a meta-command (`\conninfo`, `\?`, `\x`).
    pub text: Option<String>,
    /// Text psql writes to standard error for this item without it being
    /// an error of the run: `\warn`, an `\if` expression that is not a
    /// boolean (taken as false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// psql's print options when the session changed them (`\t`, `\a`,
    /// `\pset format|border|footer|fieldsep`), and the result as psql
    /// prints it with them (the pane shows that text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub print: Option<PrintOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub printed: Option<String>,
    /// The statement's notices and error as psql prints them on standard
    /// error, when the session's `VERBOSITY` or `SHOW_CONTEXT` is not
    /// psql's default (the pane shows that text in their place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<String>,
    /// The statement returned a result table, which psql prints even with
    /// no column (`SELECT;` prints `--` and `(1 row)`) or no row; false for
    /// commands, which show only their tag.
    pub tuples: bool,
    /// The session's `\x` setting when this statement ran (a script may
    /// switch it between statements); the run's `expanded` is the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expanded: Option<bool>,
    /// The statement was only comments and `;`: the server answered
    /// EmptyQueryResponse; psql prints nothing for it.
    pub empty_query: bool,
    /// Asynchronous notifications received with this statement, worded as
    /// psql prints them after it.
    pub notifications: Vec<String>,
    /// Notifications received but not kept (past the cap).
    pub notifications_dropped: u64,
    /// The title psql prints over a meta-command's table
    /// (`Table "public.tasks"`, `List of relations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The lines psql prints under a meta-command's table, in order
    /// (`Indexes:`, `    "tasks_pkey" PRIMARY KEY, btree (id)`, `(2 rows)`):
    /// when `title` is set these replace the pane's own row count.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub footers: Vec<String>,
    /// Whether psql prints its `(N rows)` line under this meta-command's
    /// table (listings do, `\d NAME` does not); never in expanded form.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub count_footer: bool,
    /// psql prints this table unexpanded even under `\x` (`\d NAME` of
    /// anything but a sequence).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unexpanded: bool,
    /// Further tables of the same meta-command (`\d lab.*` describes each
    /// relation it matches), each with its own title and footers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<StatementResult>,
    /// The session's `\pset null` string when this statement ran, for
    /// showing its NULLs as psql would (unset: psql's default, empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_display: Option<String>,
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
    /// How many statements of the script were not run after the failure
    /// (or after `\q`).
    pub skipped: usize,
    /// The script ended at a `\q` (the `skipped` items after it not run).
    pub quit: bool,
    /// The session's `\x` setting, for the pane to render with.
    pub expanded: bool,
    /// The session's `\timing` setting.
    pub timing: bool,
    /// Whether the session's connection was lost (it reconnects next run).
    pub connection_lost: bool,
    /// The database the session is connected to after the run.
    pub database: String,
    /// Whether the session listens (`LISTEN` ran, no `UNLISTEN *` since):
    /// its pane then polls for notifications while idle.
    pub listening: bool,
    /// Set when the run could not start because the sandbox backend is
    /// unavailable (e.g. the Docker engine is stopped): the answer is then a
    /// 503 carrying this message as `error`.
    #[serde(skip)]
    pub sandbox_unavailable: Option<String>,
}
