//! The command tag psql prints after a statement (`INSERT 0 5`, `CREATE
//! TABLE`), derived from the statement's leading keywords and the row count,
//! because sqlx exposes only `rows_affected()` and not the server's tag.
//! What only the server knows is asked of it: `EXECUTE name` is tagged as
//! the prepared statement (`pg_prepared_statements`), and a `CREATE TABLE IF
//! NOT EXISTS ... AS` that skipped (its NOTICE says so) is `CREATE TABLE AS`.
//! The tags are checked against psql's own output in tests/console_psql.rs.
//!
//! [`words`] also serves the transaction tracking of the runner: it lists a
//! statement's top-level keywords with strings and comments skipped.

/// A statement's words outside strings, comments and parentheses, upper-cased.
/// Parenthesised parts are skipped so that `WITH x AS (SELECT ...) INSERT`
/// reads as `WITH X AS INSERT`.
pub fn words(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut d = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    d += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    d -= 1;
                    i += 2;
                    if d == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'\'' || c == b'"' {
            let backslash = c == b'\'' && i > 0 && (b[i - 1] == b'e' || b[i - 1] == b'E');
            i += 1;
            while i < b.len() {
                if backslash && b[i] == b'\\' {
                    i += 2;
                } else if b[i] == c {
                    i += 1;
                    if b.get(i) != Some(&c) {
                        break;
                    }
                    i += 1;
                } else {
                    i += 1;
                }
            }
        } else if c == b'$' && (i == 0 || !is_ident(b[i - 1])) {
            let tag_end = b[i + 1..]
                .iter()
                .position(|&x| !is_ident(x) || x == b'$')
                .map(|p| i + 1 + p);
            match tag_end {
                Some(e) if b[e] == b'$' && !b[i + 1].is_ascii_digit() => {
                    let delim = &sql[i..=e];
                    i = sql[e + 1..]
                        .find(delim)
                        .map_or(b.len(), |p| e + 1 + p + delim.len());
                }
                _ => i += 1,
            }
        } else if c == b'(' {
            depth += 1;
            i += 1;
        } else if c == b')' {
            depth = depth.saturating_sub(1);
            i += 1;
        } else if is_ident(c) && !c.is_ascii_digit() {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            if depth == 0 {
                out.push(sql[start..i].to_ascii_uppercase());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// What the runner knows after a statement, to word its tag.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// `rows_affected()`, or the number of rows returned.
    pub rows: u64,
    /// Whether a `COMMIT` / `END` / `PREPARE TRANSACTION` ended a failed
    /// transaction, which the server reports as `ROLLBACK`.
    pub ended_failed_transaction: bool,
    /// An `IF NOT EXISTS` found the object and skipped (the server's NOTICE
    /// "... already exists, skipping").
    pub skipped_existing: bool,
}

/// The prepared statement's name in `EXECUTE name [(args)]`, as the server
/// folds it (unquoted names lower-cased).
pub fn executed_name(sql: &str) -> Option<String> {
    let body = sql.trim_start();
    let rest = strip_word(body, "execute")?;
    let rest = rest.trim_start();
    if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        return Some(q[..end].to_string());
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
        .collect();
    (!name.is_empty()).then(|| name.to_lowercase())
}

/// `rest` after a leading case-insensitive keyword `word` and a non-word character.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let rest = &s[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.bytes().next().is_none_or(|b| !is_ident(b)))
        .then_some(rest)
}

/// The statement of `PREPARE name [(types)] AS statement`: the text after the
/// first `AS` outside parentheses (the whole text if there is none).
pub fn prepared_body(sql: &str) -> &str {
    let b = sql.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            c if depth == 0 && (c == b'a' || c == b'A') && (i == 0 || !is_ident(b[i - 1])) => {
                if let Some(rest) = strip_word(&sql[i..], "as") {
                    return rest.trim_start();
                }
            }
            _ => {}
        }
        i += 1;
    }
    sql
}

/// The command tag psql prints for `sql` (a single statement).
pub fn command_tag(sql: &str, outcome: Outcome) -> String {
    let w = words(sql);
    let n = outcome.rows;
    let at = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    let first = at(0);
    let rolled_back = outcome.ended_failed_transaction;
    if starts_with_paren(sql) {
        // `(select 1) union (select 2)`
        return format!("SELECT {n}");
    }
    match first {
        // `SELECT ... INTO new_table` is tagged `SELECT n` as well.
        "SELECT" | "VALUES" | "TABLE" => format!("SELECT {n}"),
        "WITH" => {
            // The main statement follows the CTEs (each `name AS (...)`).
            let main = w
                .iter()
                .skip(1)
                .find(|x| {
                    matches!(
                        x.as_str(),
                        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "VALUES" | "TABLE"
                    )
                })
                .map(String::as_str)
                .unwrap_or("SELECT");
            dml_tag(main, n)
        }
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE" => dml_tag(first, n),
        "BEGIN" => "BEGIN".into(),
        "START" => "START TRANSACTION".into(),
        "COMMIT" | "END" if at(1) == "PREPARED" => "COMMIT PREPARED".into(),
        "COMMIT" | "END" => if rolled_back { "ROLLBACK" } else { "COMMIT" }.into(),
        "ROLLBACK" if at(1) == "PREPARED" => "ROLLBACK PREPARED".into(),
        "ROLLBACK" | "ABORT" => "ROLLBACK".into(),
        "PREPARE" if at(1) == "TRANSACTION" => if rolled_back {
            "ROLLBACK"
        } else {
            "PREPARE TRANSACTION"
        }
        .into(),
        "PREPARE" => "PREPARE".into(),
        "SAVEPOINT" => "SAVEPOINT".into(),
        "RELEASE" => "RELEASE".into(),
        "SET" if at(1) == "CONSTRAINTS" => "SET CONSTRAINTS".into(),
        // `GRANT role TO user` has no ON: the server tags it GRANT ROLE.
        "GRANT" | "REVOKE" if !w.iter().any(|x| x == "ON") => format!("{first} ROLE"),
        "SET" | "RESET" | "SHOW" | "EXPLAIN" | "VACUUM" | "CLUSTER" | "REINDEX" | "CHECKPOINT"
        | "LISTEN" | "UNLISTEN" | "NOTIFY" | "LOAD" | "GRANT" | "REVOKE" | "COMMENT" | "DO"
        | "CALL" => first.into(),
        "ANALYZE" | "ANALYSE" => "ANALYZE".into(),
        "LOCK" => "LOCK TABLE".into(),
        "TRUNCATE" => "TRUNCATE TABLE".into(),
        "DECLARE" => "DECLARE CURSOR".into(),
        "CLOSE" if at(1) == "ALL" => "CLOSE CURSOR ALL".into(),
        "CLOSE" => "CLOSE CURSOR".into(),
        "DEALLOCATE" if at(1) == "ALL" || (at(1) == "PREPARE" && at(2) == "ALL") => {
            "DEALLOCATE ALL".into()
        }
        "DEALLOCATE" => "DEALLOCATE".into(),
        "DISCARD" => format!("DISCARD {}", at(1)),
        "REFRESH" => "REFRESH MATERIALIZED VIEW".into(),
        "SECURITY" => "SECURITY LABEL".into(),
        "IMPORT" => "IMPORT FOREIGN SCHEMA".into(),
        "REASSIGN" => "REASSIGN OWNED".into(),
        "CREATE" => create_tag(&w, n, outcome.skipped_existing),
        "DROP" | "ALTER" => format!("{first} {}", object_kind(&w[1..])),
        // EXECUTE of a prepared statement: the tag is that statement's, which
        // only the server knows; rows tell the common case.
        _ if n > 0 => format!("SELECT {n}"),
        _ => first.into(),
    }
}

fn dml_tag(kind: &str, n: u64) -> String {
    match kind {
        "INSERT" => format!("INSERT 0 {n}"),
        "VALUES" | "TABLE" => format!("SELECT {n}"),
        other => format!("{other} {n}"),
    }
}

/// Whether the first token (after comments) is `(`.
fn starts_with_paren(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |p| &r[p..]).trim_start();
        } else if rest.starts_with("/*") {
            let Some(p) = rest.find("*/") else {
                return false;
            };
            rest = rest[p + 2..].trim_start();
        } else {
            return rest.starts_with('(');
        }
    }
}

fn create_tag(w: &[String], n: u64, skipped: bool) -> String {
    let kind = object_kind(&w[1..]);
    let no_data = w
        .windows(3)
        .any(|x| x[0] == "WITH" && x[1] == "NO" && x[2] == "DATA");
    let has_as = w.iter().skip(2).any(|x| x == "AS");
    match kind.as_str() {
        "TABLE" if has_as => {
            if no_data || skipped {
                "CREATE TABLE AS".into()
            } else {
                format!("SELECT {n}")
            }
        }
        "MATERIALIZED VIEW" if !no_data && !skipped => format!("SELECT {n}"),
        _ => format!("CREATE {kind}"),
    }
}

/// The object kind after CREATE / DROP / ALTER, skipping modifiers, with
/// psql's synonyms (USER and GROUP are roles).
fn object_kind(w: &[String]) -> String {
    let skip = [
        "OR",
        "REPLACE",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "GLOBAL",
        "LOCAL",
        "UNIQUE",
        "RECURSIVE",
        "TRUSTED",
        "PROCEDURAL",
        "DEFAULT",
    ];
    let rest: Vec<&str> = w
        .iter()
        .map(String::as_str)
        .skip_while(|x| skip.contains(x))
        .collect();
    let at = |i: usize| rest.get(i).copied().unwrap_or("");
    match at(0) {
        "USER" if at(1) == "MAPPING" => "USER MAPPING".into(),
        "USER" | "GROUP" | "ROLE" => "ROLE".into(),
        "CONSTRAINT" if at(1) == "TRIGGER" => "TRIGGER".into(),
        "MATERIALIZED" => "MATERIALIZED VIEW".into(),
        "FOREIGN" if at(1) == "DATA" => "FOREIGN DATA WRAPPER".into(),
        "FOREIGN" => "FOREIGN TABLE".into(),
        "EVENT" => "EVENT TRIGGER".into(),
        "ACCESS" => "ACCESS METHOD".into(),
        "TEXT" => format!("TEXT SEARCH {}", at(2)),
        "OPERATOR" if matches!(at(1), "CLASS" | "FAMILY") => format!("OPERATOR {}", at(1)),
        "DEFAULT" | "PRIVILEGES" => "DEFAULT PRIVILEGES".into(),
        "OWNED" => "OWNED".into(),
        "" => String::new(),
        other => other.into(),
    }
    .trim()
    .to_string()
}

/// How a statement moves the session's transaction state when it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxEffect {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT`, `PREPARE TRANSACTION`.
    End,
    /// `COMMIT AND CHAIN`, `ROLLBACK AND CHAIN`: ends one transaction and
    /// opens the next.
    Chain,
    /// `ROLLBACK TO [SAVEPOINT]`: leaves a failed transaction usable again.
    RollbackToSavepoint,
    /// Anything else.
    None,
}

/// The transaction effect of `sql`.
pub fn tx_effect(sql: &str) -> TxEffect {
    let w = words(sql);
    let at = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    match (at(0), at(1)) {
        ("BEGIN", _) | ("START", "TRANSACTION") => TxEffect::Begin,
        ("COMMIT" | "ROLLBACK", "PREPARED") => TxEffect::None,
        ("ROLLBACK", "TO") | ("ROLLBACK", "WORK" | "TRANSACTION") if at(2) == "TO" => {
            TxEffect::RollbackToSavepoint
        }
        ("ROLLBACK", "TO") => TxEffect::RollbackToSavepoint,
        ("COMMIT" | "END" | "ROLLBACK" | "ABORT", _) if chains(&w) => TxEffect::Chain,
        ("COMMIT" | "END" | "ROLLBACK" | "ABORT", _) => TxEffect::End,
        ("PREPARE", "TRANSACTION") => TxEffect::End,
        _ => TxEffect::None,
    }
}

/// `... AND CHAIN` (not `AND NO CHAIN`).
fn chains(w: &[String]) -> bool {
    w.windows(2).any(|x| x[0] == "AND" && x[1] == "CHAIN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_as_psql_prints_them() {
        let cases: &[(&str, u64, &str)] = &[
            ("insert into t values (1),(2),(3),(4),(5)", 5, "INSERT 0 5"),
            ("INSERT INTO t SELECT 1", 1, "INSERT 0 1"),
            ("update t set a = 1 where a > 2", 3, "UPDATE 3"),
            ("delete from t where false", 0, "DELETE 0"),
            ("select * from generate_series(1, 20)", 20, "SELECT 20"),
            ("values (1), (2)", 2, "SELECT 2"),
            ("table t", 7, "SELECT 7"),
            (
                "with x as (select 1) insert into t select * from x",
                1,
                "INSERT 0 1",
            ),
            (
                "with x as (delete from t returning *) select * from x",
                4,
                "SELECT 4",
            ),
            (
                "with recursive r(n) as (select 1 union all select n+1 from r where n < 3) update t set a = 1",
                2,
                "UPDATE 2",
            ),
            (
                "create table t (id int primary key, v text)",
                0,
                "CREATE TABLE",
            ),
            ("create temp table t (id int)", 0, "CREATE TABLE"),
            (
                "create unlogged table if not exists t (id int)",
                0,
                "CREATE TABLE",
            ),
            ("create table t2 as select * from t", 12, "SELECT 12"),
            (
                "create table t2 as select * from t with no data",
                0,
                "CREATE TABLE AS",
            ),
            ("select * into t3 from t", 4, "SELECT 4"),
            ("create materialized view mv as select 1", 1, "SELECT 1"),
            (
                "create materialized view mv as select 1 with no data",
                0,
                "CREATE MATERIALIZED VIEW",
            ),
            (
                "create unique index concurrently i on t (a)",
                0,
                "CREATE INDEX",
            ),
            (
                "create index on t using btree (a) where (a > 0)",
                0,
                "CREATE INDEX",
            ),
            (
                "create or replace function f() returns int language sql as $$ select 1 $$",
                0,
                "CREATE FUNCTION",
            ),
            (
                "create or replace procedure p() language sql as $$ select 1 $$",
                0,
                "CREATE PROCEDURE",
            ),
            ("create view v as select 1", 0, "CREATE VIEW"),
            ("create or replace view v as select 1", 0, "CREATE VIEW"),
            ("create user bob", 0, "CREATE ROLE"),
            ("create role r", 0, "CREATE ROLE"),
            ("create schema s", 0, "CREATE SCHEMA"),
            (
                "create extension if not exists pg_trgm",
                0,
                "CREATE EXTENSION",
            ),
            ("create sequence s", 0, "CREATE SEQUENCE"),
            ("create type mood as enum ('a')", 0, "CREATE TYPE"),
            (
                "create constraint trigger tr after insert on t for each row execute function f()",
                0,
                "CREATE TRIGGER",
            ),
            (
                "create trigger tr before insert on t for each row execute function f()",
                0,
                "CREATE TRIGGER",
            ),
            ("drop table if exists missing", 0, "DROP TABLE"),
            ("drop index concurrently i", 0, "DROP INDEX"),
            ("drop materialized view mv", 0, "DROP MATERIALIZED VIEW"),
            ("drop user bob", 0, "DROP ROLE"),
            ("alter table t add column c int", 0, "ALTER TABLE"),
            ("alter user bob with password 'x'", 0, "ALTER ROLE"),
            (
                "alter default privileges grant select on tables to r",
                0,
                "ALTER DEFAULT PRIVILEGES",
            ),
            ("begin", 0, "BEGIN"),
            ("begin isolation level serializable", 0, "BEGIN"),
            ("start transaction", 0, "START TRANSACTION"),
            ("commit", 0, "COMMIT"),
            ("end", 0, "COMMIT"),
            ("rollback", 0, "ROLLBACK"),
            ("abort", 0, "ROLLBACK"),
            ("rollback to savepoint a", 0, "ROLLBACK"),
            ("savepoint a", 0, "SAVEPOINT"),
            ("release savepoint a", 0, "RELEASE"),
            ("set statement_timeout = '1s'", 0, "SET"),
            ("set transaction isolation level repeatable read", 0, "SET"),
            ("set constraints all deferred", 0, "SET CONSTRAINTS"),
            ("reset all", 0, "RESET"),
            ("show work_mem", 1, "SHOW"),
            ("explain analyze select 1", 3, "EXPLAIN"),
            ("analyze t", 0, "ANALYZE"),
            ("vacuum (analyze) t", 0, "VACUUM"),
            ("truncate t", 0, "TRUNCATE TABLE"),
            ("lock table t in access exclusive mode", 0, "LOCK TABLE"),
            ("grant select on t to public", 0, "GRANT"),
            ("comment on table t is 'x'", 0, "COMMENT"),
            ("do $$ begin raise notice 'x'; end $$", 0, "DO"),
            ("call p()", 0, "CALL"),
            ("prepare q as select 1", 0, "PREPARE"),
            ("deallocate all", 0, "DEALLOCATE ALL"),
            ("declare c cursor for select 1", 0, "DECLARE CURSOR"),
            ("fetch 2 from c", 2, "FETCH 2"),
            ("close c", 0, "CLOSE CURSOR"),
            ("discard all", 0, "DISCARD ALL"),
            (
                "refresh materialized view mv",
                0,
                "REFRESH MATERIALIZED VIEW",
            ),
            (
                "-- leading comment\n/* and block */ select 1",
                1,
                "SELECT 1",
            ),
        ];
        for (sql, rows, want) in cases {
            let got = command_tag(
                sql,
                Outcome {
                    rows: *rows,
                    ..Outcome::default()
                },
            );
            assert_eq!(&got, want, "for {sql:?}");
        }
    }

    #[test]
    fn server_side_facts_change_the_tag() {
        let skipped = Outcome {
            rows: 0,
            skipped_existing: true,
            ..Outcome::default()
        };
        assert_eq!(
            command_tag("create table if not exists t2 as select 1", skipped),
            "CREATE TABLE AS"
        );
        assert_eq!(
            command_tag(
                "create materialized view if not exists m as select 1",
                skipped
            ),
            "CREATE MATERIALIZED VIEW"
        );
        assert_eq!(
            executed_name("EXECUTE Ins(1, 'a');").as_deref(),
            Some("ins")
        );
        assert_eq!(executed_name("execute \"Q\";").as_deref(), Some("Q"));
        assert_eq!(executed_name("executes"), None);
        assert_eq!(
            prepared_body("PREPARE ins (int, text) AS insert into t values ($1, $2);"),
            "insert into t values ($1, $2);"
        );
        assert_eq!(prepared_body("prepare q as\nselect 1"), "select 1");
        let one = Outcome {
            rows: 1,
            ..Outcome::default()
        };
        assert_eq!(
            command_tag(prepared_body("prepare i as insert into t values (1)"), one),
            "INSERT 0 1"
        );
        assert_eq!(command_tag("grant r1 to bob;", one), "GRANT ROLE");
        assert_eq!(command_tag("revoke r1 from bob;", one), "REVOKE ROLE");
        assert_eq!(
            command_tag(
                "(select 1) union (select 2);",
                Outcome {
                    rows: 2,
                    ..Outcome::default()
                }
            ),
            "SELECT 2"
        );
    }

    #[test]
    fn commit_of_a_failed_transaction_is_a_rollback() {
        let o = Outcome {
            rows: 0,
            ended_failed_transaction: true,
            skipped_existing: false,
        };
        assert_eq!(command_tag("commit", o), "ROLLBACK");
        assert_eq!(command_tag("END", o), "ROLLBACK");
        assert_eq!(command_tag("prepare transaction 'x'", o), "ROLLBACK");
    }

    #[test]
    fn transaction_effects() {
        assert_eq!(tx_effect("BEGIN"), TxEffect::Begin);
        assert_eq!(
            tx_effect("begin transaction isolation level serializable"),
            TxEffect::Begin
        );
        assert_eq!(tx_effect("start transaction read only"), TxEffect::Begin);
        assert_eq!(tx_effect("commit"), TxEffect::End);
        assert_eq!(tx_effect("END"), TxEffect::End);
        assert_eq!(tx_effect("abort"), TxEffect::End);
        assert_eq!(tx_effect("rollback"), TxEffect::End);
        assert_eq!(tx_effect("rollback and no chain"), TxEffect::End);
        assert_eq!(tx_effect("commit and chain"), TxEffect::Chain);
        assert_eq!(tx_effect("prepare transaction 'x'"), TxEffect::End);
        assert_eq!(
            tx_effect("rollback to savepoint a"),
            TxEffect::RollbackToSavepoint
        );
        assert_eq!(tx_effect("rollback to a"), TxEffect::RollbackToSavepoint);
        assert_eq!(
            tx_effect("rollback work to savepoint a"),
            TxEffect::RollbackToSavepoint
        );
        assert_eq!(tx_effect("commit prepared 'x'"), TxEffect::None);
        assert_eq!(tx_effect("select 'begin'"), TxEffect::None);
        assert_eq!(tx_effect("-- begin\nselect 1"), TxEffect::None);
    }

    #[test]
    fn words_skip_strings_comments_and_parentheses() {
        assert_eq!(
            words("with x as (select 'a' from t) /* c */ insert into \"T\" select $$ y $$"),
            ["WITH", "X", "AS", "INSERT", "INTO", "SELECT"]
        );
    }
}
