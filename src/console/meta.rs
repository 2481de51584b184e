//! psql's meta-commands in the console, answering as psql 15 does: the `\d`
//! family (`\d`, `\d NAME`, `\dt \di \dv \dm \ds \df \dT \dn \dx \dp \du \l`,
//! with `S`, `+` and patterns), `\sf` and `\sv`, `\x`, `\timing`,
//! `\conninfo`, `\encoding`, `\pset null`, `\errverbose`, `\echo`, `\?`,
//! and the argument check of `\c DBNAME` (the session runs the reconnect).
//! Anything else is refused with psql's `invalid command` and the list of
//! what the console has.
//!
//! Catalog queries run on the session's own connection, so they see what the
//! learner's session sees (uncommitted tables, search_path) and fail with
//! 25P02 in a failed transaction, as psql's do. Each answer carries psql's
//! title, columns, rows and footers ([`StatementResult::title`],
//! `footers`, `more`); [`text::psql_text`] prints it exactly as psql does.
//!
//! Parts: [`patterns`] (name patterns), [`lists`] (listings), [`describe`]
//! (`\d NAME`), [`source`] (`\sf`, `\sv`), [`text`] (psql's aligned format),
//! [`widths`] (the display width psql gives each character).

pub mod describe;
pub mod lists;
pub mod patterns;
pub mod source;
pub mod text;
pub mod widths;

use futures::TryStreamExt;
use sqlx::{Row, ValueRef};

use super::result::{Column, SqlError, StatementResult};
use super::run::{Conn, Limits, map_error};

/// Per-session psql settings that meta-commands change and read.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub expanded: bool,
    /// `\x auto`: psql expands only output wider than the terminal; the
    /// browser pane has no fixed width, so results show unexpanded.
    pub expanded_auto: bool,
    pub timing: bool,
    /// `\pset null`: how NULL shows in results (psql's default: empty).
    pub null_display: String,
    /// The last server error of the session and the statement that got it,
    /// for `\errverbose`.
    pub last_error: Option<(String, SqlError)>,
    /// psql variables (`\set`), interpolated in later statements and
    /// meta-command arguments.
    pub vars: super::vars::Vars,
    /// `\t`, `\a` and `\pset`'s print options.
    pub print: super::result::PrintOptions,
}

impl Settings {
    /// Called for every result of a run, statements and meta-commands alike:
    /// remembers the last server error and stamps the NULL display on
    /// statement results.
    pub fn note(&mut self, r: &mut StatementResult) {
        if r.kind == "statement" && !self.null_display.is_empty() {
            r.null_display = Some(self.null_display.clone());
        }
        if r.kind == "statement" {
            r.expanded = Some(self.expanded);
            if self.print != super::result::PrintOptions::default() {
                r.print = Some(self.print.clone());
            }
        }
        if let Some(e) = &r.error
            && !e.sqlstate.is_empty()
        {
            self.last_error = Some((r.sql.clone(), e.clone()));
        }
    }
}

/// What `\?` prints, and what an unknown meta-command lists.
pub const HELP: &str = "\
Meta-commands supported in the pglab console:
  \\d[S+]                 list tables, views and sequences
  \\d[S+]  NAME           describe table, view, sequence, index, materialized view or composite type
  \\dt[S+] [PATTERN]      list tables (\\di indexes, \\dv views, \\dm materialized views, \\ds sequences; combine: \\dti)
  \\df[S+] [PATTERN]      list functions
  \\dT[S+] [PATTERN]      list data types
  \\dD[S+] [PATTERN]      list domains
  \\dconfig[+] [PATTERN]  list configuration parameters (without a pattern: those changed)
  \\dn[S+] [PATTERN]      list schemas
  \\dx[+]  [PATTERN]      list extensions
  \\dp     [PATTERN]      list table, view and sequence access privileges (also \\z)
  \\du[S+] [PATTERN]      list roles (also \\dg)
  \\l[+]   [PATTERN]      list databases
  \\sf[+]  FUNCNAME       show a function's definition
  \\sv[+]  VIEWNAME       show a view's definition
  \\x [on|off|auto]       toggle expanded output
  \\timing [on|off]       toggle timing of commands
  \\pset null [STRING]    set the string printed in place of a NULL value
  \\pset format|border|tuples_only|footer|fieldsep [VALUE]   print options (aligned, unaligned, csv; border 0-2)
  \\t [on|off], \\a, \\f [SEP]   rows only; aligned/unaligned; field separator
  \\encoding              show the client encoding
  \\errverbose            show the most recent error in maximal verbosity
  \\echo [-n] [STRING]    write a string (:NAME, :'NAME', :\"NAME\" interpolate variables; also \\qecho)
  \\warn [-n] [STRING]    write a string to standard error
  \\if EXPR, \\elif EXPR, \\else, \\endif   run a block only when EXPR is true (on, yes, 1...)
  \\q                     end the script here
  \\set [NAME [VALUE]]    set a variable, or list them all
  \\unset NAME            unset a variable
  \\g                     run the query (or the previous one again)
  \\gx                    the same, its result in expanded form
  \\gdesc                 describe the query's result columns, without running it
  \\gset [PREFIX]         run the query, storing its one row's columns in variables
  \\gexec                 run the query, then run each value of its result as a statement
  \\i FILE, \\ir FILE      run a lab file of the lesson (e.g. \\i scripts/schema.sql)
  \\watch [SECONDS]       run the query again every SECONDS (2) until cancelled (Escape)
  \\copy T from 'FILE' ... copy a lab file into a table (\\copy T|(QUERY) to stdout shows the data)
  \\conninfo              display information about the current connection
  \\c[onnect] [DBNAME]    connect to another database of your own server
  \\?                     this help
Patterns accept * and ? wildcards and an optional schema: \\dt public.task*";

/// Whether `line` is `\c` / `\connect`, which the session runs itself.
pub fn is_connect(line: &str) -> bool {
    matches!(parse(line.trim()).name.as_str(), "c" | "connect")
}

/// The database `\c [dbname [user [host [port]]]]` asks for (`None`: stay),
/// or why it is refused: the console reaches only the learner's own server,
/// as the learner's own user. `-` keeps a part as it is. As psql reads it,
/// a double-quoted name keeps its case and an unquoted one is not
/// lower-cased either.
pub fn connect_target(line: &str, user: &str) -> Result<Option<String>, String> {
    let cmd = parse(line.trim());
    let args: Vec<String> = cmd
        .args
        .iter()
        .map(|a| {
            if a.len() >= 2 && a.starts_with('"') && a.ends_with('"') {
                a[1..a.len() - 1].replace("\"\"", "\"")
            } else {
                a.clone()
            }
        })
        .collect();
    if args.iter().any(|a| a.contains('=') || a.contains("://")) {
        return Err("\\c with a connection string is not available in the console: use \\c DBNAME (your own server only)".into());
    }
    if let Some(u) = args.get(1)
        && u != "-"
        && u != user
    {
        return Err(format!(
            "\\c cannot change the user in the console: you are connected as \"{user}\"; use \\c DBNAME"
        ));
    }
    if args.get(2).is_some_and(|h| h != "-") || args.get(3).is_some_and(|p| p != "-") {
        return Err("\\c cannot change the host or port in the console: it reaches only your own sandbox; use \\c DBNAME".into());
    }
    if args.len() > 4 {
        return Err("\\c: too many arguments (use \\c DBNAME)".into());
    }
    if args.first().is_some_and(String::is_empty) {
        return Err("\\c: the database name is empty".into());
    }
    Ok(args.into_iter().next().filter(|d| d != "-"))
}

/// Whether `line` is `\i FILE` / `\ir FILE`, which the session runs.
pub fn is_include(line: &str) -> bool {
    matches!(
        parse(line.trim()).name.as_str(),
        "i" | "include" | "ir" | "include_relative"
    )
}

/// Whether `line` is `\watch [SECONDS]`, which the session runs with the
/// query before it.
pub fn is_watch(line: &str) -> bool {
    parse(line.trim()).name == "watch"
}

/// Whether `line` is `\copy ...`, which the session runs (it reads lab
/// files).
pub fn is_copy(line: &str) -> bool {
    parse(line.trim()).name == "copy"
}

/// Whether `line` is `\gset [PREFIX]` or `\gexec`, which the session runs
/// with the query before it.
/// `\g` or `\gx`: send the query buffer (or the previous query).
pub fn is_g(line: &str) -> bool {
    matches!(parse(line.trim()).name.as_str(), "g" | "gx")
}

/// Whether the meta-command `line`, right after a query without its `;`,
/// is what sends that query (`\gset`, `\gexec`, `\watch`, `\gx`, `\g`
/// with arguments; a plain `\g` is taken by the splitter itself).
pub fn ends_query(line: &str) -> bool {
    let cmd = parse(line.trim());
    match cmd.name.as_str() {
        "gset" | "gexec" | "watch" | "gx" | "gdesc" => true,
        "g" => !cmd.args.is_empty(),
        _ => false,
    }
}

pub fn is_gset_or_gexec(line: &str) -> bool {
    matches!(parse(line.trim()).name.as_str(), "gset" | "gexec")
}

/// Runs `sql` (for `\gset`, `\gexec`): column names and every row as
/// text, uncapped; or the failed statement's result and whether the
/// connection was lost.
pub async fn fetch_named(
    c: &mut Conn,
    sql: &str,
) -> Result<(Vec<String>, Rows), (StatementResult, bool)> {
    use sqlx::Column as _;
    let mut names = Vec::new();
    let mut out = Vec::new();
    let mut stream = sqlx::raw_sql(sql).fetch(&mut c.conn);
    loop {
        match stream.try_next().await {
            Ok(Some(row)) => {
                if names.is_empty() {
                    names = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                out.push(
                    (0..row.len())
                        .map(|i| {
                            let raw = row.try_get_raw(i).ok()?;
                            if raw.is_null() {
                                return None;
                            }
                            Some(
                                String::from_utf8_lossy(raw.as_bytes().unwrap_or_default())
                                    .into_owned(),
                            )
                        })
                        .collect(),
                );
            }
            Ok(None) => return Ok((names, out)),
            Err(e) => {
                let (error, lost) = map_error(e);
                return Err((
                    StatementResult {
                        sql: sql.to_string(),
                        kind: "statement",
                        error: Some(error),
                        ..StatementResult::default()
                    },
                    lost,
                ));
            }
        }
    }
}

/// Values as text, by row; `None` is NULL.
pub type Rows = Vec<Vec<Option<String>>>;

/// A meta-command's answer under construction.
pub struct MetaOut {
    pub result: StatementResult,
}

impl MetaOut {
    fn text(text: String) -> Self {
        Self {
            result: StatementResult {
                text: Some(text),
                ..StatementResult::default()
            },
        }
    }

    /// A psql listing: title, text columns, and psql's `(N rows)` footer.
    fn listing(title: &str, headers: &[&str], rows: Rows) -> Self {
        Self {
            result: StatementResult {
                title: Some(title.to_string()),
                columns: headers
                    .iter()
                    .map(|h| Column {
                        name: (*h).to_string(),
                        type_name: "text".into(),
                    })
                    .collect(),
                total_rows: rows.len() as u64,
                rows,
                count_footer: true,
                ..StatementResult::default()
            },
        }
    }
}

/// A meta-command's own complaint (psql prints these without `ERROR:`).
fn meta_error(message: String) -> MetaOut {
    MetaOut {
        result: StatementResult::client_error("", message),
    }
}

/// Runs one catalog query on the session's connection, values as text.
async fn fetch(c: &mut Conn, sql: &str) -> Result<Rows, MetaOut> {
    let mut out = Vec::new();
    let mut stream = sqlx::raw_sql(sql).fetch(&mut c.conn);
    loop {
        match stream.try_next().await {
            Ok(Some(row)) => out.push(
                (0..row.len())
                    .map(|i| {
                        let raw = row.try_get_raw(i).ok()?;
                        if raw.is_null() {
                            return None;
                        }
                        Some(
                            String::from_utf8_lossy(raw.as_bytes().unwrap_or_default())
                                .into_owned(),
                        )
                    })
                    .collect(),
            ),
            Ok(None) => return Ok(out),
            Err(e) => {
                let (error, _) = map_error(e);
                return Err(MetaOut {
                    result: StatementResult {
                        error: Some(error),
                        ..StatementResult::default()
                    },
                });
            }
        }
    }
}

/// A parsed meta-command line: the name, its `+`/`S` modifiers, and its
/// arguments as psql splits them (single quotes removed with their escapes,
/// double quotes kept for name patterns).
pub struct Cmd {
    pub name: String,
    pub plus: bool,
    pub system: bool,
    pub args: Vec<String>,
    /// Everything after the command name, for `\sf` and `\sv`.
    pub rest: String,
    /// The current database, to check `db.schema.name` patterns.
    pub db: Option<String>,
}

impl Cmd {
    /// Argument `i`, as psql's scanner read it.
    pub fn arg_text(&self, i: usize) -> Option<&str> {
        self.arg(i)
    }

    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

/// Splits a meta-command line like psql's argument scanner does.
pub fn parse(line: &str) -> Cmd {
    parse_with(line, &super::vars::Vars::new())
}

/// [`parse`], with `:name`, `:'name'`, `:"name"` and `:{?name}` outside
/// quotes replaced by the variables' values, as psql does in arguments.
pub fn parse_with(line: &str, vars: &super::vars::Vars) -> Cmd {
    let body = line.strip_prefix('\\').unwrap_or(line);
    let end = body
        .find(|c: char| c.is_whitespace() || c == '\\')
        .unwrap_or(body.len());
    let name = body[..end].to_string();
    let rest = body[end..].trim().to_string();
    Cmd {
        plus: name.contains('+'),
        system: name.len() > 1 && name[1..].contains('S'),
        args: split_args(&rest, vars),
        name,
        rest,
        db: None,
    }
}

fn split_args(s: &str, vars: &super::vars::Vars) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let next = |i: usize| s[i..].chars().next();
    loop {
        while next(i).is_some_and(char::is_whitespace) {
            i += next(i).map_or(0, char::len_utf8);
        }
        if i >= s.len() {
            break;
        }
        let mut arg = String::new();
        let mut in_double = false;
        while let Some(ch) = next(i) {
            if ch.is_whitespace() && !in_double {
                break;
            }
            if ch == ':'
                && !in_double
                && let Some((text, len)) = super::vars::reference(s, i, vars)
            {
                arg.push_str(&text);
                i += len;
                continue;
            }
            i += ch.len_utf8();
            match ch {
                '"' => {
                    in_double = !in_double;
                    arg.push('"');
                }
                '\'' if !in_double => {
                    // A quoted string: '' is a quote, backslash escapes.
                    while let Some(q) = next(i) {
                        i += q.len_utf8();
                        match q {
                            '\'' if next(i) == Some('\'') => {
                                i += 1;
                                arg.push('\'');
                            }
                            '\'' => break,
                            '\\' => {
                                let Some(e) = next(i) else { break };
                                i += e.len_utf8();
                                arg.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    'r' => '\r',
                                    'b' => '\u{8}',
                                    'f' => '\u{c}',
                                    other => other,
                                });
                            }
                            other => arg.push(other),
                        }
                    }
                }
                other => arg.push(other),
            }
        }
        out.push(arg);
    }
    out
}

/// Runs one meta-command line (backslash included).
pub fn run_meta<'a>(
    c: &'a mut Conn,
    line: &'a str,
    settings: &'a mut Settings,
    limits: &'a Limits,
) -> futures::future::BoxFuture<'a, StatementResult> {
    Box::pin(run_meta_inner(c, line, settings, limits))
}

async fn run_meta_inner(
    c: &mut Conn,
    line: &str,
    settings: &mut Settings,
    _limits: &Limits,
) -> StatementResult {
    let mut cmd = parse_with(line.trim(), &settings.vars);
    let mut result = dispatch(c, &mut cmd, settings).await.result;
    result.sql = line.to_string();
    result.kind = "meta";
    for m in &mut result.more {
        m.kind = "meta";
    }
    match result.error.as_mut() {
        // A position would point into our catalog query, not the line.
        Some(e) => e.position = None,
        None => result.command_tag = None,
    }
    result
}

/// The `\d` family's base names, after `S` and `+` are taken off.
fn d_letters(name: &str) -> Option<String> {
    let letters: String = name.chars().filter(|c| *c != '+' && *c != 'S').collect();
    letters.strip_prefix('d').map(str::to_string)
}

async fn dispatch(c: &mut Conn, cmd: &mut Cmd, settings: &mut Settings) -> MetaOut {
    if cmd.args.first().is_some_and(|a| a.split('.').count() == 3)
        && let Ok(rows) = fetch(c, "select pg_catalog.current_database()").await
    {
        cmd.db = rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten());
    }
    let base = cmd.name.trim_end_matches('+');
    match base {
        "?" => return MetaOut::text(HELP.to_string()),
        "x" => return MetaOut::text(expanded(settings, cmd.arg(0))),
        "timing" => {
            settings.timing = toggle(settings.timing, cmd.arg(0));
            return MetaOut::text(format!("Timing is {}.", on_off(settings.timing)));
        }
        "conninfo" => return conninfo(c).await,
        "encoding" => return encoding(cmd.arg(0)),
        "errverbose" => {
            return match &settings.last_error {
                None => MetaOut::text("There is no previous error.".into()),
                Some((sql, e)) => MetaOut::text(text::verbose_error(sql, e)),
            };
        }
        "warn" => {
            // psql writes it on standard error, a line of its own.
            let (_, args) = match cmd.args.first().map(String::as_str) {
                Some("-n") => (false, &cmd.args[1..]),
                _ => (true, &cmd.args[..]),
            };
            let mut out = MetaOut {
                result: StatementResult::default(),
            };
            out.result.stderr = Some(args.join(" "));
            return out;
        }
        "echo" | "qecho" => {
            let (newline, args) = match cmd.args.first().map(String::as_str) {
                Some("-n") => (false, &cmd.args[1..]),
                _ => (true, &cmd.args[..]),
            };
            // psql_text leaves the newline out for `\echo -n`.
            let _ = newline;
            return MetaOut::text(args.join(" "));
        }
        "pset" => return pset(settings, cmd),
        "t" => return print_option(settings, "tuples_only", cmd.arg(0)),
        "a" => {
            use super::result::Format;
            settings.print.format = if settings.print.format == Format::Aligned {
                Format::Unaligned
            } else {
                Format::Aligned
            };
            return print_option(settings, "format", None);
        }
        "f" => return print_option(settings, "fieldsep", cmd.arg(0)),
        "set" => return set(c, settings, cmd).await,
        "unset" => {
            return match cmd.arg(0) {
                None => meta_error("\\unset: missing required argument".into()),
                // psql checks no name here: an invalid one is never set.
                Some(name) => match super::vars::assign(&mut settings.vars, name, None) {
                    Ok(()) => MetaOut {
                        result: StatementResult::default(),
                    },
                    Err(message) => meta_error(message),
                },
            };
        }
        "sf" => return source::function(c, &cmd.rest, cmd.plus).await,
        "sv" => return source::view(c, &cmd.rest, cmd.plus).await,
        "l" | "list" => return lists::databases(c, cmd).await,
        "z" => return lists::privileges(c, cmd).await,
        _ => {}
    }
    if let Some(letters) = d_letters(&cmd.name) {
        match letters.as_str() {
            "" => {
                return match cmd.arg(0).map(str::to_string) {
                    Some(p) => describe::describe(c, cmd, &p).await,
                    None => lists::relations(c, cmd, "").await,
                };
            }
            "f" => return lists::functions(c, cmd).await,
            "T" => return lists::types(c, cmd).await,
            "D" => return lists::domains(c, cmd).await,
            "config" => return lists::settings(c, cmd).await,
            "n" => return lists::schemas(c, cmd).await,
            "x" => return lists::extensions(c, cmd).await,
            "p" => return lists::privileges(c, cmd).await,
            "u" | "g" => return lists::roles(c, cmd).await,
            l if !l.is_empty() && l.chars().all(|ch| "tivmsE".contains(ch)) => {
                return lists::relations(c, cmd, l).await;
            }
            _ => {}
        }
    }
    if let Some(why) = not_in_the_console(&cmd.name) {
        return meta_error(format!(
            "\\{}: {why}\nTry \\? for what the pglab console runs. {}",
            cmd.name, HELP
        ));
    }
    meta_error(format!(
        "invalid command \\{}\nTry \\? for help. {}",
        cmd.name, HELP
    ))
}

/// Why a command psql 15 has is not one the console runs (`None` for a
/// name psql does not know either: psql's "invalid command").
fn not_in_the_console(name: &str) -> Option<&'static str> {
    let base = name.trim_end_matches(['+', 'S']);
    Some(match base {
        "o" | "out" | "w" | "write" | "s" => {
            "the console writes no files on the server; copy results from the page (CSV, Markdown)"
        }
        "e" | "edit" | "ef" | "ev" => "edit in the console's editor instead",
        "prompt" | "password" | "passwd" => "the console cannot ask for input mid-script",
        "!" | "cd" | "setenv" | "getenv" => "the console runs no shell commands on the server",
        "H" | "html" | "T" | "C" => {
            "the console prints aligned, unaligned and csv output only (\\pset format)"
        }
        "crosstabview" | "bind" | "lo_import" | "lo_export" | "lo_list" | "lo_unlink" | "db"
        | "dc" | "dC" | "dd" | "ddp" | "dF" | "dFd" | "dFp" | "dFt" | "dl" | "dL" | "do" | "dO"
        | "drds" | "dRp" | "dRs" | "dy" | "des" | "det" | "deu" | "dew" | "dA" | "dAc" | "dAf"
        | "dAo" | "dAp" | "dX" | "copyright" | "help" | "h" | "r" | "reset" | "p" | "print" => {
            "this psql command is not available in the pglab console yet"
        }
        _ => return None,
    })
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn toggle(current: bool, arg: Option<&str>) -> bool {
    match arg.map(str::to_ascii_lowercase).as_deref() {
        Some("on" | "true" | "1" | "yes") => true,
        Some("off" | "false" | "0" | "no") => false,
        _ => !current,
    }
}

/// `\x [on|off|auto]` (and `\pset expanded`).
fn expanded(settings: &mut Settings, arg: Option<&str>) -> String {
    if arg.is_some_and(|a| a.eq_ignore_ascii_case("auto")) {
        settings.expanded = false;
        settings.expanded_auto = true;
        return "Expanded display is used automatically.".into();
    }
    let current = settings.expanded && !settings.expanded_auto;
    settings.expanded = if settings.expanded_auto && arg.is_none() {
        false
    } else {
        toggle(current, arg)
    };
    settings.expanded_auto = false;
    format!("Expanded display is {}.", on_off(settings.expanded))
}

/// psql's own variables as the console has them (`\set` lists them with
/// the learner's, whose `\set` of one of these replaces it); the console
/// stops at the first error unless `ON_ERROR_STOP` is unset.
const BUILTIN_VARS: &[(&str, &str)] = &[
    ("AUTOCOMMIT", "on"),
    ("COMP_KEYWORD_CASE", "preserve-upper"),
    ("ECHO", "none"),
    ("ECHO_HIDDEN", "off"),
    ("ENCODING", "UTF8"),
    ("FETCH_COUNT", "0"),
    ("HIDE_TABLEAM", "off"),
    ("HIDE_TOAST_COMPRESSION", "off"),
    ("HISTCONTROL", "none"),
    ("HISTSIZE", "500"),
    ("IGNOREEOF", "0"),
    ("ON_ERROR_ROLLBACK", "off"),
    ("ON_ERROR_STOP", "on"),
    ("PROMPT1", "%/%R%x%# "),
    ("PROMPT2", "%/%R%x%# "),
    ("PROMPT3", ">> "),
    ("QUIET", "off"),
    ("SHOW_ALL_RESULTS", "on"),
    ("SHOW_CONTEXT", "errors"),
    ("SINGLELINE", "off"),
    ("SINGLESTEP", "off"),
    ("VERBOSITY", "default"),
];

/// `\set` (list), `\set NAME [VALUE...]` (the values joined without
/// spaces, as psql does).
async fn set(c: &mut Conn, settings: &mut Settings, cmd: &Cmd) -> MetaOut {
    let Some(name) = cmd.arg(0) else {
        let mut all: std::collections::BTreeMap<String, String> = BUILTIN_VARS
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        if let Ok(rows) = fetch(c, "select current_database(), current_user").await
            && let Some(row) = rows.into_iter().next()
        {
            for (k, v) in ["DBNAME", "USER"].into_iter().zip(row) {
                all.insert(k.into(), v.unwrap_or_default());
            }
        }
        all.extend(settings.vars.clone());
        let lines: Vec<String> = all.iter().map(|(k, v)| format!("{k} = '{v}'")).collect();
        return MetaOut::text(lines.join("\n"));
    };
    if !super::vars::valid_name(name) {
        return meta_error(format!("invalid variable name: \"{name}\""));
    }
    let value: String = cmd.args[1..].concat();
    match super::vars::assign(&mut settings.vars, name, Some(&value)) {
        Ok(()) => MetaOut {
            result: StatementResult::default(),
        },
        Err(message) => meta_error(message),
    }
}

fn pset(settings: &mut Settings, cmd: &Cmd) -> MetaOut {
    let Some(name) = cmd.arg(0) else {
        return meta_error("\\pset: the pglab console supports \\pset format|border|tuples_only|footer|fieldsep|null|expanded [VALUE]".into());
    };
    print_option(settings, name, cmd.arg(1))
}

/// One print option, as psql's `do_pset` sets it and says so (a boolean
/// given a value is set silently, as psql does).
fn print_option(settings: &mut Settings, name: &str, value: Option<&str>) -> MetaOut {
    use super::result::Format;
    let print = &mut settings.print;
    let bool_option = |current: &mut bool, label: &str| -> MetaOut {
        match value {
            Some(v) => match super::vars::parse_bool(v) {
                Some(b) => {
                    *current = b;
                    MetaOut {
                        result: StatementResult::default(),
                    }
                }
                None => meta_error(format!(
                    "unrecognized value \"{v}\" for \"{name}\": Boolean expected"
                )),
            },
            None => {
                *current = !*current;
                MetaOut::text(format!("{label} is {}.", on_off(*current)))
            }
        }
    };
    match name {
        "null" => {
            if let Some(v) = value {
                settings.null_display = v.to_string();
            }
            MetaOut::text(format!("Null display is \"{}\".", settings.null_display))
        }
        "expanded" | "x" => MetaOut::text(expanded(settings, value)),
        "tuples_only" | "t" => bool_option(&mut print.tuples_only, "Tuples only"),
        "footer" => bool_option(&mut print.footer, "Default footer"),
        "border" => {
            if let Some(v) = value {
                // psql's atoi: digits at the start, else 0.
                let digits: String = v
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                print.border = digits.parse::<u32>().unwrap_or(0).min(2) as u8;
            }
            MetaOut::text(format!("Border style is {}.", print.border))
        }
        "fieldsep" => {
            if let Some(v) = value {
                print.fieldsep = v.to_string();
            }
            MetaOut::text(format!("Field separator is \"{}\".", print.fieldsep))
        }
        "format" => {
            if let Some(v) = value {
                const ALL: [&str; 9] = [
                    "aligned",
                    "asciidoc",
                    "csv",
                    "html",
                    "latex",
                    "latex-longtable",
                    "troff-ms",
                    "unaligned",
                    "wrapped",
                ];
                let lower = v.to_ascii_lowercase();
                let found: Vec<&str> = ALL
                    .iter()
                    .copied()
                    .filter(|f| !lower.is_empty() && f.starts_with(&lower))
                    .collect();
                let chosen = match found.as_slice() {
                    [one] => *one,
                    _ if ALL.contains(&lower.as_str()) => ALL
                        .iter()
                        .copied()
                        .find(|f| *f == lower)
                        .unwrap_or("aligned"),
                    [a, b, ..] => {
                        return meta_error(format!(
                            "\\pset: ambiguous abbreviation \"{v}\" matches both \"{a}\" and \"{b}\""
                        ));
                    }
                    [] => {
                        return meta_error(
                            "\\pset: allowed formats are aligned, asciidoc, csv, html, latex, latex-longtable, troff-ms, unaligned, wrapped".into());
                    }
                };
                print.format = match chosen {
                    "aligned" => Format::Aligned,
                    "unaligned" => Format::Unaligned,
                    "csv" => Format::Csv,
                    other => {
                        return meta_error(format!(
                            "\\pset format {other}: the pglab console prints aligned, unaligned and csv output"
                        ));
                    }
                };
            }
            let shown = match print.format {
                Format::Aligned => "aligned",
                Format::Unaligned => "unaligned",
                Format::Csv => "csv",
            };
            MetaOut::text(format!("Output format is {shown}."))
        }
        other => meta_error(format!(
            "\\pset: the pglab console supports format, border, tuples_only, footer, fieldsep, null and expanded, not \"{other}\""
        )),
    }
}
/// `\encoding`: the console's connection always speaks UTF8.
fn encoding(arg: Option<&str>) -> MetaOut {
    match arg {
        None => MetaOut::text("UTF8".into()),
        Some(a)
            if matches!(
                a.to_ascii_uppercase().as_str(),
                "UTF8" | "UTF-8" | "UNICODE"
            ) =>
        {
            MetaOut {
                result: StatementResult::default(),
            }
        }
        Some(a) => meta_error(format!(
            "\\encoding: the pglab console always talks UTF8 with the server (the browser shows UTF-8); it cannot switch to \"{a}\""
        )),
    }
}

async fn conninfo(c: &mut Conn) -> MetaOut {
    let rows = match fetch(
        c,
        "select current_database(), current_user, coalesce('on host \"' || host(inet_server_addr()) || '\"', 'via socket'), \
         coalesce(inet_server_port(), current_setting('port')::int)::text, current_setting('server_version')",
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    let row = rows.into_iter().next().unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    MetaOut::text(format!(
        "You are connected to database \"{}\" as user \"{}\" {} at port \"{}\" (PostgreSQL {}), backend pid {}.",
        get(0),
        get(1),
        get(2),
        get(3),
        get(4),
        c.pid
    ))
}

/// `\gdesc`: the columns the query would return, named and typed, as psql
/// prints them, without running it (Parse and Describe only). A column
/// read straight from a table keeps its type modifier (`numeric(10,2)`);
/// sqlx does not hand on the modifier of a computed one.
pub async fn gdesc(c: &mut Conn, sql: &str) -> StatementResult {
    use sqlx::{Column as _, Executor as _, Statement as _};
    let described = (&mut c.conn).prepare(sql).await.map(|stmt| {
        stmt.columns()
            .iter()
            .map(|col| {
                let oid = col.type_info().oid().map(|o| o.0).unwrap_or(0);
                let rel = col.relation_id().map(|o| o.0).unwrap_or(0);
                let att = col.relation_attribute_no().unwrap_or(0);
                (col.name().to_string(), oid, rel, att)
            })
            .collect::<Vec<_>>()
    });
    let columns = match described {
        Ok(columns) => columns,
        Err(err) => {
            let (error, _) = map_error(err);
            return StatementResult {
                sql: sql.to_string(),
                kind: "meta",
                error: Some(error),
                ..StatementResult::default()
            };
        }
    };
    if columns.is_empty() {
        return StatementResult {
            sql: sql.to_string(),
            kind: "meta",
            text: Some("The command has no result, or the result has no columns.".into()),
            ..StatementResult::default()
        };
    }
    let values: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, oid, rel, att))| {
            format!(
                "({i}, {}, {oid}::pg_catalog.oid, {rel}::pg_catalog.oid, {att}::pg_catalog.int2)",
                super::vars::quote_literal(name)
            )
        })
        .collect();
    let query = format!(
        "SELECT v.name, pg_catalog.format_type(v.tp, a.atttypmod) \
         FROM (VALUES {}) v(i, name, tp, rel, att) \
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = v.rel AND a.attnum = v.att AND a.atttypid = v.tp \
         ORDER BY v.i",
        values.join(", ")
    );
    match fetch(c, &query).await {
        Ok(rows) => StatementResult {
            sql: sql.to_string(),
            kind: "meta",
            columns: ["Column", "Type"]
                .iter()
                .map(|h| Column {
                    name: (*h).to_string(),
                    type_name: "name".into(),
                })
                .collect(),
            total_rows: rows.len() as u64,
            rows,
            count_footer: true,
            ..StatementResult::default()
        },
        Err(e) => {
            let mut r = e.result;
            r.sql = sql.to_string();
            r.kind = "meta";
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_psql() {
        let c = parse("\\dtS+ public.task*");
        assert_eq!((c.name.as_str(), c.plus, c.system), ("dtS+", true, true));
        assert_eq!(c.args, ["public.task*"]);
        let c = parse("\\echo a  'b c' \"d e\" 'it''s\\n'");
        assert_eq!(c.args, ["a", "b c", "\"d e\"", "it's\n"]);
        assert_eq!(d_letters("dS+").as_deref(), Some(""));
        assert_eq!(d_letters("dti").as_deref(), Some("ti"));
        assert_eq!(d_letters("echo"), None);
    }

    #[test]
    fn arguments_interpolate_variables_outside_quotes() {
        let vars: super::super::vars::Vars = [("a", "1 2"), ("d", r"b\s")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = parse_with(
            "\\echo :a x:a :'a' :\"a\" ':a' \":a\" :nope :{?a} :'d'",
            &vars,
        );
        assert_eq!(
            c.args,
            [
                "1 2",
                "x1 2",
                "'1 2'",
                "\"1 2\"",
                ":a",
                "\":a\"",
                ":nope",
                "TRUE",
                r" E'b\\s'"
            ]
        );
        assert!(is_include("\\i scripts/a.sql"));
        assert!(is_include("\\ir a.sql"));
        assert!(!is_include("\\if"));
        // psql's own commands the console lacks say so; others are psql's
        // "invalid command".
        assert!(not_in_the_console("o").unwrap().contains("writes no files"));
        assert!(not_in_the_console("dy").is_some());
        assert!(not_in_the_console("prompt").is_some());
        assert_eq!(not_in_the_console("frobnicate"), None);
        assert!(is_gset_or_gexec("\\gset p_"));
        assert!(is_gset_or_gexec("\\gexec"));
        assert!(!is_gset_or_gexec("\\g"));
    }

    #[test]
    fn connect_arguments_like_psql() {
        assert!(is_connect("\\c labdb"));
        assert!(is_connect("\\connect"));
        assert!(!is_connect("\\conninfo"));
        assert_eq!(connect_target("\\c", "lab"), Ok(None));
        assert_eq!(
            connect_target("\\c labdb_restore", "lab")
                .unwrap()
                .as_deref(),
            Some("labdb_restore")
        );
        assert_eq!(
            connect_target("\\c \"My Db\"", "lab").unwrap().as_deref(),
            Some("My Db")
        );
        assert_eq!(
            connect_target("\\c Mixed", "lab").unwrap().as_deref(),
            Some("Mixed")
        );
        assert_eq!(
            connect_target("\\c db lab", "lab").unwrap().as_deref(),
            Some("db")
        );
        assert_eq!(connect_target("\\c - -", "lab"), Ok(None));
        assert!(
            connect_target("\\c db postgres", "lab")
                .unwrap_err()
                .contains("cannot change the user")
        );
        assert!(
            connect_target("\\c db - otherhost", "lab")
                .unwrap_err()
                .contains("host")
        );
        assert!(
            connect_target("\\c db - - 5433", "lab")
                .unwrap_err()
                .contains("port")
        );
        assert!(
            connect_target("\\c host=x dbname=y", "lab")
                .unwrap_err()
                .contains("connection string")
        );
        assert!(
            connect_target("\\c postgresql://x/y", "lab")
                .unwrap_err()
                .contains("connection string")
        );
    }

    #[test]
    fn toggles_like_psql() {
        assert!(toggle(false, None));
        assert!(!toggle(true, None));
        assert!(toggle(true, Some("on")));
        assert!(!toggle(true, Some("OFF")));
        let mut s = Settings::default();
        assert_eq!(
            expanded(&mut s, Some("auto")),
            "Expanded display is used automatically."
        );
        assert_eq!(expanded(&mut s, None), "Expanded display is off.");
        assert_eq!(expanded(&mut s, None), "Expanded display is on.");
    }
}
