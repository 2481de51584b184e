//! Recognising a learner's `EXPLAIN` statement and rewriting it to the one
//! pglab runs: the same options, `FORMAT JSON`, and `BUFFERS` when `ANALYZE`
//! is on. `EXPLAIN ANALYZE` executes the query, so the console runs it once,
//! in JSON, and renders the text output from that JSON ([`super::render_text`]).

/// The output format the learner asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExplainFormat {
    #[default]
    Text,
    Json,
    Yaml,
    Xml,
}

/// The options of an `EXPLAIN` statement. `None` means "not written" (the
/// server's default applies); explicit values are kept so that the statement
/// pglab runs fails or succeeds exactly as the learner's would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExplainOptions {
    pub analyze: bool,
    pub verbose: bool,
    pub costs: Option<bool>,
    pub settings: Option<bool>,
    pub buffers: Option<bool>,
    pub wal: Option<bool>,
    pub timing: Option<bool>,
    pub summary: Option<bool>,
    pub format: ExplainFormat,
    /// Options pglab does not know (e.g. a newer server's `GENERIC_PLAN`),
    /// passed through verbatim so the server judges them.
    pub other: Vec<String>,
}

impl ExplainOptions {
    /// Whether costs are shown (on unless `COSTS false`).
    pub fn shows_costs(&self) -> bool {
        self.costs.unwrap_or(true)
    }
    /// Whether actual times are shown (with ANALYZE, unless `TIMING false`).
    pub fn shows_timing(&self) -> bool {
        self.analyze && self.timing.unwrap_or(true)
    }
    /// Whether buffer counts are shown as the learner asked (BUFFERS is off
    /// by default in PostgreSQL 15).
    pub fn shows_buffers(&self) -> bool {
        self.buffers.unwrap_or(false)
    }
}

/// A recognised `EXPLAIN` statement and what to run for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainRequest {
    /// The options as the learner wrote them.
    pub options: ExplainOptions,
    /// The explained statement (after the options), without a trailing `;`.
    pub query: String,
    /// The statement to run for the plan view: the learner's options with
    /// `FORMAT JSON` (and `BUFFERS` added when ANALYZE is on and BUFFERS was
    /// not written). `None` when no JSON run may happen: YAML/XML output with
    /// ANALYZE, where a second run would execute the query twice.
    pub json_sql: Option<String>,
    /// `true` for FORMAT YAML/XML: the console runs the learner's statement
    /// as written to show its output; for TEXT and JSON the output comes from
    /// the one JSON run ([`super::render_text`]).
    pub run_as_written: bool,
    /// Where `query` starts in the learner's statement (characters).
    query_start: usize,
}

impl ExplainRequest {
    /// Maps an error position (1-based, in characters, as PostgreSQL reports
    /// it) in `json_sql` to the same spot in the learner's statement, for the
    /// caret; `None` when it falls in the option list pglab wrote.
    pub fn learner_position(&self, json_sql_position: usize) -> Option<usize> {
        let json_sql = self.json_sql.as_deref()?;
        let prefix = json_sql.chars().count() - self.query.chars().count();
        json_sql_position
            .checked_sub(prefix)
            .filter(|p| *p >= 1)
            .map(|p| p + self.query_start)
    }
}

/// Recognises an `EXPLAIN` statement, whatever options, case and comments the
/// learner wrote; `None` for any other statement (or an unparsable option
/// list: the server then reports the learner's own syntax error).
pub fn parse_explain(sql: &str) -> Option<ExplainRequest> {
    let mut lx = Lexer { s: sql, pos: 0 };
    lx.skip_blank();
    if !lx.eat_keyword("explain") {
        return None;
    }
    let mut options = ExplainOptions::default();
    lx.skip_blank();
    if lx.peek() == Some('(') {
        lx.pos += 1;
        parse_option_list(&mut lx, &mut options)?;
    } else {
        // Legacy syntax: EXPLAIN [ANALYZE] [VERBOSE] statement, in that order.
        if lx.eat_keyword("analyze") || lx.eat_keyword("analyse") {
            options.analyze = true;
            lx.skip_blank();
        }
        if lx.eat_keyword("verbose") {
            options.verbose = true;
        }
    }
    lx.skip_blank();
    let query_start = sql[..lx.pos].chars().count();
    let query = sql[lx.pos..]
        .trim_end()
        .trim_end_matches(';')
        .trim_end()
        .to_string();
    if query.is_empty() {
        return None;
    }
    let run_as_written = matches!(options.format, ExplainFormat::Yaml | ExplainFormat::Xml);
    let json_sql = if run_as_written && options.analyze {
        None
    } else {
        Some(json_statement(&options, &query))
    };
    Some(ExplainRequest {
        options,
        query,
        json_sql,
        run_as_written,
        query_start,
    })
}

/// `EXPLAIN (<options>, FORMAT JSON) <query>`.
fn json_statement(o: &ExplainOptions, query: &str) -> String {
    let mut parts = Vec::new();
    let flag = |name: &str, v: bool| format!("{name} {}", if v { "true" } else { "false" });
    if o.analyze {
        parts.push("ANALYZE true".to_string());
    }
    if o.verbose {
        parts.push("VERBOSE true".to_string());
    }
    if let Some(v) = o.costs {
        parts.push(flag("COSTS", v));
    }
    if let Some(v) = o.settings {
        parts.push(flag("SETTINGS", v));
    }
    // Buffers teach a lot; PostgreSQL 15 leaves them off unless asked, so add
    // them to an ANALYZE run for the plan view. Under FORMAT JSON the learner
    // sees the JSON itself, which must be what they asked for.
    match o.buffers {
        Some(v) => parts.push(flag("BUFFERS", v)),
        None if o.analyze && o.format != ExplainFormat::Json => {
            parts.push("BUFFERS true".to_string())
        }
        None => {}
    }
    if let Some(v) = o.wal {
        parts.push(flag("WAL", v));
    }
    if let Some(v) = o.timing {
        parts.push(flag("TIMING", v));
    }
    if let Some(v) = o.summary {
        parts.push(flag("SUMMARY", v));
    }
    parts.extend(o.other.iter().cloned());
    parts.push("FORMAT JSON".to_string());
    format!("EXPLAIN ({}) {}", parts.join(", "), query)
}

fn parse_option_list(lx: &mut Lexer<'_>, o: &mut ExplainOptions) -> Option<()> {
    loop {
        lx.skip_blank();
        let name = lx.word()?.to_ascii_lowercase();
        lx.skip_blank();
        // An optional value: a word, a number or a quoted string.
        let value = match lx.peek() {
            Some(',') | Some(')') => None,
            Some('\'') => Some(lx.quoted()?),
            _ => Some(lx.word()?),
        };
        let lowered = value.as_deref().map(str::to_ascii_lowercase);
        let boolean = match lowered.as_deref() {
            None | Some("true" | "on" | "1" | "yes") => Some(true),
            Some("false" | "off" | "0" | "no") => Some(false),
            Some(_) => None,
        };
        match name.as_str() {
            "analyze" | "analyse" => o.analyze = boolean?,
            "verbose" => o.verbose = boolean?,
            "costs" => o.costs = Some(boolean?),
            "settings" => o.settings = Some(boolean?),
            "buffers" => o.buffers = Some(boolean?),
            "wal" => o.wal = Some(boolean?),
            "timing" => o.timing = Some(boolean?),
            "summary" => o.summary = Some(boolean?),
            "format" => {
                o.format = match lowered.as_deref()? {
                    "text" => ExplainFormat::Text,
                    "json" => ExplainFormat::Json,
                    "yaml" => ExplainFormat::Yaml,
                    "xml" => ExplainFormat::Xml,
                    _ => return None,
                }
            }
            _ => o.other.push(match &value {
                Some(v) => format!("{name} {v}"),
                None => name.clone(),
            }),
        }
        lx.skip_blank();
        match lx.peek()? {
            ',' => lx.pos += 1,
            ')' => {
                lx.pos += 1;
                return Some(());
            }
            _ => return None,
        }
    }
}

/// Just enough of a SQL lexer for the head of an EXPLAIN statement.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips whitespace, `-- line` and (nested) `/* block */` comments.
    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                let mut depth = 0usize;
                let bytes = trimmed.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                self.pos += i.min(bytes.len());
            } else {
                return;
            }
        }
    }

    /// Consumes `kw` (case-insensitive) when it is a whole word here.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..kw.len()) else {
            return false;
        };
        let boundary = rest[kw.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
        if head.eq_ignore_ascii_case(kw) && boundary {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<String> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(rest[..len].to_string())
    }

    fn quoted(&mut self) -> Option<String> {
        let rest = self.rest();
        let end = rest[1..].find('\'')? + 1;
        self.pos += end + 1;
        Some(rest[1..end].to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_select_is_not_explain() {
        assert_eq!(parse_explain("select 1"), None);
        assert_eq!(parse_explain("explainer"), None);
        assert_eq!(parse_explain("-- explain\nselect 1"), None);
        assert_eq!(parse_explain("explain"), None);
        assert_eq!(parse_explain(""), None);
    }

    #[test]
    fn bare_explain_runs_as_json() {
        let r = parse_explain("EXPLAIN select * from tasks;").unwrap();
        assert!(!r.options.analyze);
        assert_eq!(r.query, "select * from tasks");
        assert_eq!(
            r.json_sql.as_deref(),
            Some("EXPLAIN (FORMAT JSON) select * from tasks")
        );
        assert!(!r.run_as_written);
    }

    #[test]
    fn legacy_analyze_verbose_adds_buffers() {
        let r =
            parse_explain("  /* hi /* nested */ */ explain Analyse   VERBOSE\nselect 1").unwrap();
        assert!(r.options.analyze && r.options.verbose);
        assert_eq!(
            r.json_sql.as_deref(),
            Some("EXPLAIN (ANALYZE true, VERBOSE true, BUFFERS true, FORMAT JSON) select 1")
        );
    }

    #[test]
    fn parenthesised_options_are_kept() {
        let r =
            parse_explain("explain (ANALYZE, buffers off, Format TEXT, timing 0, wal) select 1")
                .unwrap();
        assert!(r.options.analyze);
        assert_eq!(r.options.buffers, Some(false));
        assert_eq!(r.options.timing, Some(false));
        assert_eq!(r.options.wal, Some(true));
        assert_eq!(
            r.json_sql.as_deref(),
            Some(
                "EXPLAIN (ANALYZE true, BUFFERS false, WAL true, TIMING false, FORMAT JSON) select 1"
            )
        );
    }

    #[test]
    fn analyze_false_does_not_execute() {
        let r = parse_explain("explain (analyze false, costs off) delete from tasks").unwrap();
        assert!(!r.options.analyze);
        assert_eq!(
            r.json_sql.as_deref(),
            Some("EXPLAIN (COSTS false, FORMAT JSON) delete from tasks")
        );
    }

    #[test]
    fn json_format_is_shown_as_asked() {
        let r = parse_explain("explain (analyze, format 'json') select 1").unwrap();
        assert_eq!(r.options.format, ExplainFormat::Json);
        assert_eq!(
            r.json_sql.as_deref(),
            Some("EXPLAIN (ANALYZE true, FORMAT JSON) select 1")
        );
    }

    #[test]
    fn yaml_with_analyze_is_never_run_twice() {
        let r = parse_explain("explain (analyze, format yaml) insert into t values (1)").unwrap();
        assert!(r.run_as_written);
        assert_eq!(r.json_sql, None);
        let r = parse_explain("explain (format xml) select 1").unwrap();
        assert!(r.run_as_written);
        assert!(r.json_sql.is_some());
    }

    #[test]
    fn unknown_options_pass_through_and_bad_lists_are_left_to_the_server() {
        let r = parse_explain("explain (generic_plan) select $1").unwrap();
        assert_eq!(r.options.other, vec!["generic_plan".to_string()]);
        assert_eq!(parse_explain("explain (analyze select 1"), None);
        assert_eq!(parse_explain("explain (format csv) select 1"), None);
        assert_eq!(parse_explain("explain (analyze maybe) select 1"), None);
    }

    #[test]
    fn error_positions_map_back_to_the_learners_text() {
        let sql = "/* é */ explain analyze selec 1";
        let r = parse_explain(sql).unwrap();
        let json = r.json_sql.clone().unwrap();
        // PostgreSQL would point at "selec" (1-based, characters).
        let at = json.find("selec").unwrap() + 1;
        let mapped = r.learner_position(at).unwrap();
        // Characters, not bytes: "é" is two bytes and one character.
        let chars_before = sql[..sql.find("selec").unwrap()].chars().count();
        assert_eq!(mapped, chars_before + 1);
        assert_eq!(r.learner_position(3), None);
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            "explain (",
            "explain ('",
            "explain /*",
            "explain --",
            "EXPLAIN (format 'é",
            "ÉXPLAIN select 1",
            "explain (\u{0}) x",
        ] {
            let _ = parse_explain(s);
        }
    }
}
