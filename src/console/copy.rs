//! `COPY ... TO STDOUT` in the console, as psql prints it: the data the
//! server sends, then the `COPY n` tag.
//!
//! sqlx's `copy_out_raw` reads the data, but when the server refuses the
//! statement before it starts copying (a missing table, a bad option, an
//! aborted transaction) it leaves the server's ReadyForQuery unread, and
//! every later answer on the connection would be one behind. So the runner
//! first makes sure the COPY will start:
//! - in a failed transaction, or when the probe below fails, the statement
//!   is sent as a plain query: the server refuses it with its own error
//!   (message and position as psql shows them), and sqlx reads that answer
//!   whole;
//! - the probe is the same COPY that can copy nothing: the table form
//!   itself (it only reads), the query form as
//!   `COPY (SELECT * FROM (query) q WHERE false) ...` (nothing evaluated), in
//!   a savepoint inside a transaction. sqlx stops at its CopyOutResponse with
//!   a protocol error and drains the rest before the next statement.
//!
//! Binary COPY is refused (the browser shows text), and a data-modifying
//! query inside COPY too (it cannot be probed without running it).
//!
//! `\copy` ([`parse_slash_copy`]) builds the statement psql builds: `TO
//! STDOUT`/`pstdout` runs it as above, `FROM 'file'` sends a lab file of the
//! course ([`copy_in`]; the session finds the file as `\i` does); files to
//! write, programs and standard input are refused.

use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::{Row, ValueRef};

use super::result::StatementResult;
use super::run::{Conn, Limits};
use super::tag;

/// What the console does with a `COPY` statement.
#[derive(Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// Not a `COPY ... TO STDOUT`: run as any statement.
    Other,
    /// `COPY table [(columns)] TO STDOUT ...`.
    Table,
    /// `COPY (query) TO STDOUT ...`, with the query's text.
    Query(String),
    /// Refused, with the reason.
    Refused(String),
}

/// Sorts a statement (as sent) for the runner.
pub fn classify(sql: &str) -> CopyKind {
    let w = tag::words(sql);
    if w.first().map(String::as_str) != Some("COPY") {
        return CopyKind::Other;
    }
    if w.iter().any(|x| x == "STDIN") {
        return CopyKind::Refused("COPY ... FROM STDIN needs a psql client and is not available in the browser console: use INSERT ... VALUES, \\copy TABLE FROM 'LAB FILE', or COPY from a file on the sandbox".into());
    }
    if !w.iter().any(|x| x == "STDOUT") {
        return CopyKind::Other;
    }
    if w.iter().any(|x| x == "BINARY") || option_words(sql).iter().any(|x| x == "BINARY") {
        return CopyKind::Refused(
            "COPY ... TO STDOUT in binary format writes bytes the browser console cannot show: use the text or csv format".into(),
        );
    }
    match query_part(sql) {
        Some(q) => {
            let first = tag::words(&q).into_iter().next().unwrap_or_default();
            if matches!(first.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE") {
                CopyKind::Refused(format!(
                    "COPY ({first} ... RETURNING) TO STDOUT is not available in the browser console: run the {first} itself to see what it returns"
                ))
            } else {
                CopyKind::Query(q)
            }
        }
        None => CopyKind::Table,
    }
}

/// The text between the parentheses after `COPY`, when the statement is
/// the query form (quotes, dollar quotes and comments respected).
fn query_part(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let start = lower.find("copy")? + 4;
    let rest = sql[start..].trim_start();
    let open = sql.len() - rest.len();
    if !rest.starts_with('(') {
        return None;
    }
    let b = sql.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(sql[open + 1..i].to_string());
                }
            }
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The words of the COPY's options (after `STDOUT`, inside parentheses
/// too), upper-cased; quoted strings left out.
fn option_words(sql: &str) -> Vec<String> {
    let upper = sql.to_ascii_uppercase();
    let Some(at) = upper.rfind("STDOUT") else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for ch in upper[at + 6..].chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch.is_ascii_alphanumeric() || ch == '_' => {
                word.push(ch);
                continue;
            }
            None => {}
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Whether the COPY's options ask for a header line (one more data
/// message than rows).
fn has_header(sql: &str) -> bool {
    let w = option_words(sql);
    w.iter().enumerate().any(|(i, x)| {
        x == "HEADER"
            && !w
                .get(i + 1)
                .is_some_and(|n| matches!(n.as_str(), "FALSE" | "OFF" | "0"))
    })
}

/// How the probe went.
enum Probe {
    /// The COPY starts: read it with `copy_out_raw`.
    Starts,
    /// It does not: send the statement as a plain query for its error.
    Fails,
}

fn is_copy_start(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Protocol(m) if m.contains("CopyOut"))
}

/// Runs `sql` over the simple query protocol; its rows as text.
async fn exec(c: &mut Conn, sql: &str) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let mut rows = Vec::new();
    let mut stream = sqlx::raw_sql(sql).fetch_many(&mut c.conn);
    while let Some(item) = stream.try_next().await? {
        if let sqlx::Either::Right(row) = item {
            let mut values = Vec::new();
            for i in 0..row.len() {
                let v = row.try_get_raw(i)?;
                values.push(if v.is_null() {
                    None
                } else {
                    v.as_str().ok().map(str::to_string)
                });
            }
            rows.push(values);
        }
    }
    Ok(rows)
}

/// Probes in a savepoint when the session is in a transaction (a failing
/// probe must not abort it). In one, `now()` is the transaction's start,
/// earlier than this statement's (over the simple query protocol, where
/// an implicit transaction starts with the statement).
async fn probe(c: &mut Conn, probe_sql: &str) -> Result<Probe, sqlx::Error> {
    let rows = exec(c, "select now() <> statement_timestamp()").await?;
    let in_tx = rows.first().and_then(|r| r.first()).cloned().flatten() == Some("t".into());
    if in_tx {
        exec(c, "SAVEPOINT pglab_copy_probe").await?;
    }
    let probe = match exec(c, probe_sql).await {
        Err(e) if is_copy_start(&e) => Probe::Starts,
        Err(sqlx::Error::Database(_)) => Probe::Fails,
        Err(e) => return Err(e),
        // The server answered without copying: not a COPY TO STDOUT after all.
        Ok(_) => Probe::Fails,
    };
    if in_tx {
        let end = match probe {
            Probe::Starts => "RELEASE SAVEPOINT pglab_copy_probe",
            Probe::Fails => {
                "ROLLBACK TO SAVEPOINT pglab_copy_probe; RELEASE SAVEPOINT pglab_copy_probe"
            }
        };
        exec(c, end).await?;
    }
    Ok(probe)
}

/// What [`copy_out`] gives the runner: the data and row count, or the
/// statement to send as a plain query (for the server's own error).
pub enum CopyOut {
    Copied {
        data: String,
        rows: u64,
        truncated: bool,
    },
    SendPlain,
}

/// Runs a `COPY ... TO STDOUT` of kind `kind` (see the module comment).
/// Boxed as `run::run_statement` for the same reason.
pub fn copy_out<'a>(
    c: &'a mut Conn,
    sql: &'a str,
    kind: &'a CopyKind,
    limits: &'a Limits,
    in_failed_tx: bool,
) -> BoxFuture<'a, Result<CopyOut, sqlx::Error>> {
    Box::pin(copy_out_inner(c, sql, kind, limits, in_failed_tx))
}

async fn copy_out_inner(
    c: &mut Conn,
    sql: &str,
    kind: &CopyKind,
    limits: &Limits,
    in_failed_tx: bool,
) -> Result<CopyOut, sqlx::Error> {
    if in_failed_tx {
        return Ok(CopyOut::SendPlain);
    }
    let probe_sql = match kind {
        CopyKind::Query(q) => {
            let lower = sql.to_ascii_lowercase();
            let Some(start) = lower.find(&q.to_ascii_lowercase()) else {
                return Ok(CopyOut::SendPlain);
            };
            format!(
                "{}SELECT * FROM ({}\n) pglab_copy_probe WHERE false{}",
                &sql[..start],
                q,
                &sql[start + q.len()..]
            )
        }
        _ => sql.to_string(),
    };
    if let Probe::Fails = probe(c, &probe_sql).await? {
        return Ok(CopyOut::SendPlain);
    }
    let raw = c.raw().await?;
    let header = has_header(sql);
    let mut stream = raw.copy_out_raw(sql).await?;
    let (mut data, mut messages, mut truncated) = (Vec::new(), 0u64, false);
    while let Some(chunk) = stream.try_next().await? {
        messages += 1;
        if data.len() + chunk.len() <= limits.byte_budget.min(limits.value_cap * limits.row_cap) {
            data.extend_from_slice(&chunk);
        } else {
            truncated = true;
        }
    }
    let rows = messages.saturating_sub(u64::from(header && messages > 0));
    Ok(CopyOut::Copied {
        data: String::from_utf8_lossy(&data).into_owned(),
        rows,
        truncated,
    })
}

/// Fills a result with the copied data, as psql prints it (the data, then
/// the tag).
pub fn fill(result: &mut StatementResult, data: String, rows: u64, truncated: bool) {
    result.text = Some(data);
    result.values_truncated = truncated;
    result.total_rows = rows;
    result.command_tag = Some(format!("COPY {rows}"));
}

/// Where a `\copy` reads or writes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A file (for the console: a lab file of the course, read only).
    File(String),
    /// `stdin`/`stdout`, `pstdin`/`pstdout`.
    Std,
    /// `program 'command'`.
    Program,
}

/// A parsed `\copy`: the statement psql sends and where the data goes.
#[derive(Debug, PartialEq, Eq)]
pub struct SlashCopy {
    /// `COPY <what> FROM STDIN <options>` or `COPY <what> TO STDOUT <options>`,
    /// built as psql builds it.
    pub query: String,
    pub from: bool,
    pub target: Target,
}

/// psql's `strtokx` over `\copy`'s arguments: tokens between white space,
/// each of `delims` a token of its own, a quoted part (a quote of `quotes`
/// to the same quote, doubled quotes inside) kept in its token.
struct Tokens<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self, delims: &str, quotes: &str) -> Option<&'a str> {
        let b = self.s.as_bytes();
        while self.at < b.len() && b[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        if self.at >= b.len() {
            return None;
        }
        let start = self.at;
        if delims.contains(b[start] as char) {
            self.at += 1;
            return Some(&self.s[start..self.at]);
        }
        let mut i = start;
        while i < b.len() && !b[i].is_ascii_whitespace() && !delims.contains(b[i] as char) {
            if quotes.contains(b[i] as char) {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            i += 1;
        }
        let end = i.min(b.len());
        // White space ending a token is used up with it.
        self.at = if end < b.len() && b[end].is_ascii_whitespace() {
            end + 1
        } else {
            end
        };
        Some(&self.s[start..end])
    }

    /// The rest of the line, as is.
    fn rest(&self) -> Option<&'a str> {
        (self.at < self.s.len()).then(|| &self.s[self.at..])
    }
}

/// psql's `strip_quotes` for a file name: the quotes off, `''` one quote.
fn strip_quotes(token: &str) -> String {
    let mut out = String::new();
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                out.push('\'');
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses `\copy`'s arguments (the rest of the line, taken whole and not
/// interpolated) as psql's `parse_slash_copy` does, and builds the
/// statement psql sends from its tokens (`COPY  ( select 1 ) TO STDOUT `);
/// the errors are psql's.
pub fn parse_slash_copy(line: &str) -> Result<SlashCopy, String> {
    let args = line
        .trim_start()
        .strip_prefix("\\copy")
        .unwrap_or(line)
        .trim_end_matches(['\n', '\r']);
    if args.trim().is_empty() {
        return Err("\\copy: arguments required".into());
    }
    let parse_error = |t: Option<&str>| match t {
        Some(t) => format!("\\copy: parse error at \"{t}\""),
        None => "\\copy: parse error at end of line".to_string(),
    };
    let mut t = Tokens { s: args, at: 0 };
    let mut before = String::new();
    let mut token = t.next(".,()", "\"").ok_or_else(|| parse_error(None))?;
    if token == "(" {
        let mut parens = 1;
        while parens > 0 {
            before.push(' ');
            before.push_str(token);
            token = t.next("()", "\"'").ok_or_else(|| parse_error(None))?;
            match token {
                "(" => parens += 1,
                ")" => parens -= 1,
                _ => {}
            }
        }
    }
    before.push(' ');
    before.push_str(token);
    token = t.next(".,()", "\"").ok_or_else(|| parse_error(None))?;
    if token == "." {
        before.push_str(token);
        token = t.next(".,()", "\"").ok_or_else(|| parse_error(None))?;
        before.push_str(token);
        token = t.next(".,()", "\"").ok_or_else(|| parse_error(None))?;
    }
    if token == "(" {
        loop {
            before.push(' ');
            before.push_str(token);
            token = t.next("()", "\"").ok_or_else(|| parse_error(None))?;
            if token == ")" {
                break;
            }
        }
        before.push(' ');
        before.push_str(token);
        token = t.next(".,()", "\"").ok_or_else(|| parse_error(None))?;
    }
    let from = if token.eq_ignore_ascii_case("from") {
        true
    } else if token.eq_ignore_ascii_case("to") {
        false
    } else {
        return Err(parse_error(Some(token)));
    };
    let file = t.next(";", "'").ok_or_else(|| parse_error(None))?;
    let target = if file.eq_ignore_ascii_case("program") {
        match t.next(";", "'") {
            Some(c) if c.len() >= 2 && c.starts_with('\'') && c.ends_with('\'') => Target::Program,
            other => return Err(parse_error(other)),
        }
    } else if ["stdin", "stdout", "pstdin", "pstdout"]
        .iter()
        .any(|w| file.eq_ignore_ascii_case(w))
    {
        Target::Std
    } else {
        Target::File(strip_quotes(file))
    };
    let query = format!(
        "COPY {before}{}{}",
        if from { " FROM STDIN " } else { " TO STDOUT " },
        t.rest().unwrap_or("")
    );
    Ok(SlashCopy {
        query,
        from,
        target,
    })
}

/// `\copy ... FROM` a lab file: sends `query` (`COPY ... FROM STDIN ...`)
/// and the file's text; the rows copied. Boxed as [`copy_out`].
pub fn copy_in<'a>(
    c: &'a mut Conn,
    query: &'a str,
    data: &'a str,
) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
    Box::pin(copy_in_inner(c, query, data))
}

async fn copy_in_inner(c: &mut Conn, query: &str, data: &str) -> Result<u64, sqlx::Error> {
    let raw = c.raw().await?;
    let mut copy = raw.copy_in_raw(query).await?;
    if let Err(e) = copy.send(data.as_bytes()).await {
        let _ = copy.abort("pglab: the lab file could not be sent").await;
        return Err(e);
    }
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_copy_statements() {
        assert_eq!(classify("select 1;"), CopyKind::Other);
        assert_eq!(classify("copy t to '/tmp/x';"), CopyKind::Other);
        assert_eq!(classify("copy t to stdout;"), CopyKind::Table);
        assert_eq!(
            classify("COPY (select ')' as x) TO STDOUT csv;"),
            CopyKind::Query("select ')' as x".into())
        );
        assert!(matches!(
            classify("copy t from stdin;"),
            CopyKind::Refused(_)
        ));
        assert!(matches!(
            classify("copy t to stdout (format binary);"),
            CopyKind::Refused(_)
        ));
        assert!(matches!(
            classify("copy (delete from t returning *) to stdout;"),
            CopyKind::Refused(_)
        ));
    }

    #[test]
    fn parses_slash_copy_as_psql() {
        let c = parse_slash_copy("\\copy pets from 'data/pets.csv' csv header").unwrap();
        assert_eq!(c.query, "COPY  pets FROM STDIN csv header");
        assert!(c.from);
        assert_eq!(c.target, Target::File("data/pets.csv".into()));
        let c = parse_slash_copy("\\copy (select 1 as \"to\") TO stdout").unwrap();
        assert_eq!(c.query, "COPY  ( select 1 as \"to\" ) TO STDOUT ");
        assert_eq!(c.target, Target::Std);
        let c = parse_slash_copy("\\copy public.t (a, b) to pstdout with (format csv)").unwrap();
        assert_eq!(
            c.query,
            "COPY  public.t ( a, b ) TO STDOUT with (format csv)"
        );
        assert_eq!(
            parse_slash_copy("\\copy").unwrap_err(),
            "\\copy: arguments required"
        );
        assert_eq!(
            parse_slash_copy("\\copy t").unwrap_err(),
            "\\copy: parse error at end of line"
        );
        assert_eq!(
            parse_slash_copy("\\copy t too stdout").unwrap_err(),
            "\\copy: parse error at \"too\""
        );
        assert_eq!(
            parse_slash_copy("\\copy t from program 'ls'")
                .unwrap()
                .target,
            Target::Program
        );
    }

    #[test]
    fn counts_the_header_line() {
        assert!(has_header("copy t to stdout (format csv, header)"));
        assert!(has_header("copy t to stdout csv header"));
        assert!(!has_header("copy t to stdout (header false)"));
        assert!(!has_header("copy t to stdout"));
    }
}
