//! Splits a script into the statements psql would send one at a time, and the
//! psql meta-commands (`\dt`, `\x`...) found at the start of a line, with the
//! rules of psql 15's lexer (`psqlscan.l`):
//!
//! - a statement ends at a `;` outside quotes, comments and parentheses, and
//!   is sent **with** its semicolon; leading whitespace and `--` comments are
//!   not part of it, a leading `/* */` comment is;
//! - a bare `;` (or a block comment and `;`) is an empty query: psql sends it
//!   and the server answers EmptyQueryResponse;
//! - `'...'` strings follow the session's `standard_conforming_strings`: when
//!   it is off, a backslash escapes the next character as in `E'...'`;
//! - dollar quotes (`$$`, `$tag$`), double-quoted identifiers, nested block
//!   comments;
//! - inside `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, `BEGIN ... END` (and
//!   `CASE ... END` inside it) at parenthesis depth 0 are counted, so a
//!   `BEGIN ATOMIC` body's semicolons do not end the statement;
//! - at the end of the script, what is left is sent without a semicolon.
//!
//! The lexer is incremental ([`Lexer::next_item`]) because a statement may
//! change `standard_conforming_strings` for the statements after it, exactly
//! as psql re-reads the setting after each statement. Each item keeps its
//! byte and character offset and its line in the script, so that an error
//! position reported by the server maps back to the right place.

use serde::Serialize;

/// What an item of a script is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// SQL to send to the server.
    Statement,
    /// A psql meta-command line, backslash included (`\d+ tasks`).
    Meta,
}

/// One statement or meta-command of a script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: ItemKind,
    /// The text to send, as psql sends it: from the first token (a leading
    /// block comment included) to the terminating `;` included.
    pub text: String,
    /// Byte offset of `text` in the script.
    pub offset: usize,
    /// Character offset of `text` in the script (what a browser counts).
    pub char_offset: usize,
    /// 1-based line of the script where `text` starts.
    pub line: usize,
    /// Only whitespace, comments and `;`: psql sends it, the server answers
    /// EmptyQueryResponse and psql prints nothing.
    pub empty: bool,
}

/// Splits `script` into statements and meta-commands, in order, with
/// `standard_conforming_strings` on throughout.
pub fn split(script: &str) -> Vec<Item> {
    split_with(script, true)
}

/// [`split`] with `standard_conforming_strings` as given, throughout.
pub fn split_with(script: &str, std_strings: bool) -> Vec<Item> {
    let mut lexer = Lexer::new(script);
    std::iter::from_fn(|| lexer.next_item(std_strings)).collect()
}

/// Counts where a byte offset is, moving forward only (so that offsets of a
/// large script are found in one pass).
#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    byte: usize,
    chars: usize,
    line: usize,
}

/// psql's lexer over one script, one item at a time.
#[derive(Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    mark: Mark,
    /// Statements of the current buffer ended by a meta-command still to come.
    pending_meta: Option<(usize, usize)>,
}

/// Per-statement state, as psqlscan keeps it.
#[derive(Default)]
struct StmtState {
    paren_depth: usize,
    begin_depth: usize,
    identifier_count: usize,
    identifiers: [u8; 4],
    /// Something other than whitespace and `--` comments was seen.
    started: Option<usize>,
    /// Something other than comments and `;` was seen.
    nonempty: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            mark: Mark {
                line: 1,
                ..Mark::default()
            },
            pending_meta: None,
        }
    }

    /// Byte offset of what is still to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many items are left, lexed with `std_strings` throughout.
    pub fn count_rest(&self, std_strings: bool) -> usize {
        let mut copy = self.clone();
        std::iter::from_fn(|| copy.next_item(std_strings)).count()
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// `\g`, `\gx`, `\gset`, `\gexec` or `\watch` mid-line ends the
    /// query before it, as psql reads any backslash command (`select 1 as
    /// n \gset`).
    fn at_gset_or_gexec(&self) -> bool {
        let rest = &self.bytes[self.pos + 1..];
        [
            "g".as_bytes(),
            "gx".as_bytes(),
            "gdesc".as_bytes(),
            "gset".as_bytes(),
            "gexec".as_bytes(),
            "watch".as_bytes(),
        ]
        .iter()
        .any(|w| rest.starts_with(w) && rest.get(w.len()).is_none_or(|&b| !is_ident_char(b)))
    }

    fn at_line_start(&self, pos: usize) -> bool {
        self.bytes[..pos]
            .iter()
            .rev()
            .take_while(|&&b| b != b'\n')
            .all(|&b| b == b' ' || b == b'\t' || b == b'\r')
    }

    /// The next statement or meta-command, `'...'` strings read with
    /// `standard_conforming_strings` = `std_strings`.
    pub fn next_item(&mut self, std_strings: bool) -> Option<Item> {
        if let Some((begin, end)) = self.pending_meta.take() {
            let text = trim_space_end(&self.src[begin..end]);
            return Some(self.item(ItemKind::Meta, begin, text, false));
        }
        let mut st = StmtState::default();
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            match c {
                c if is_space(c) => self.pos += 1,
                b'-' if self.peek(1) == Some(b'-') => self.skip_line_comment(),
                b'/' if self.peek(1) == Some(b'*') => {
                    st.started.get_or_insert(self.pos);
                    self.skip_block_comment();
                }
                b'\\' if self.at_line_start(self.pos) || self.at_gset_or_gexec() => {
                    if let Some(item) = self.meta_command(&st) {
                        return Some(item);
                    }
                }
                b';' => {
                    let start = *st.started.get_or_insert(self.pos);
                    self.pos += 1;
                    if st.paren_depth == 0 && st.begin_depth == 0 {
                        let text = &self.src[start..self.pos];
                        return Some(self.item(ItemKind::Statement, start, text, !st.nonempty));
                    }
                }
                _ => {
                    st.started.get_or_insert(self.pos);
                    st.nonempty = true;
                    self.token(c, &mut st, std_strings);
                }
            }
        }
        let start = st.started?;
        // psql skips empty lines outside a quote; inside one left open at
        // the end (the server refuses the statement as unterminated anyway)
        // the trailing whitespace is dropped too, so that the statement ends
        // at its last character whatever line endings the script has.
        let text = trim_space_end(&self.src[start..]);
        Some(self.item(ItemKind::Statement, start, text, !st.nonempty))
    }

    fn token(&mut self, c: u8, st: &mut StmtState, std_strings: bool) {
        match c {
            b'(' => {
                st.paren_depth += 1;
                self.pos += 1;
            }
            b')' => {
                st.paren_depth = st.paren_depth.saturating_sub(1);
                self.pos += 1;
            }
            b'\'' => self.skip_quoted(b'\'', !std_strings),
            b'"' => self.skip_quoted(b'"', false),
            b'$' => self.dollar(),
            b'e' | b'E' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.skip_quoted(b'\'', true);
            }
            // N'..', B'..', X'..', U&'..': the prefix then a string read as
            // a plain one (B, X and U& strings never take backslash escapes).
            b'n' | b'N' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.skip_quoted(b'\'', !std_strings);
            }
            b'b' | b'B' | b'x' | b'X' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.skip_quoted(b'\'', false);
            }
            b'u' | b'U' if self.peek(1) == Some(b'&') && self.peek(2) == Some(b'\'') => {
                self.pos += 2;
                self.skip_quoted(b'\'', false);
            }
            c if c.is_ascii_digit() => {
                // A number (and what sticks to it: `1e5`, `12abc` is lexed
                // by the server); never an identifier for BEGIN tracking.
                while self.pos < self.bytes.len()
                    && (self.bytes[self.pos].is_ascii_alphanumeric()
                        || self.bytes[self.pos] == b'.'
                        || self.bytes[self.pos] == b'_')
                {
                    self.pos += 1;
                }
            }
            c if is_ident_start(c) => self.word(st),
            _ => self.pos += 1,
        }
    }

    /// An identifier or keyword, with psqlscan's heuristic for function
    /// bodies: the first words are remembered by their initial when they are
    /// CREATE, OR, REPLACE, FUNCTION or PROCEDURE.
    fn word(&mut self, st: &mut StmtState) {
        let begin = self.pos;
        while self.pos < self.bytes.len() && is_ident_char(self.bytes[self.pos]) {
            self.pos += 1;
        }
        let word = &self.src[begin..self.pos];
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        if st.identifier_count == 0 {
            st.identifiers = [0; 4];
        }
        if (is("create") || is("function") || is("procedure") || is("or") || is("replace"))
            && st.identifier_count < st.identifiers.len()
        {
            st.identifiers[st.identifier_count] = word.as_bytes()[0].to_ascii_lowercase();
        }
        st.identifier_count += 1;
        let id = st.identifiers;
        let routine = id[0] == b'c'
            && (id[1] == b'f'
                || id[1] == b'p'
                || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if routine && st.paren_depth == 0 {
            if is("begin") {
                st.begin_depth += 1;
            } else if is("case") {
                if st.begin_depth >= 1 {
                    st.begin_depth += 1;
                }
            } else if is("end") && st.begin_depth > 0 {
                st.begin_depth -= 1;
            }
        }
    }

    /// Skips a quoted string or identifier; a doubled quote is an escaped
    /// quote, and with `backslash` a backslash escapes the next character.
    fn skip_quoted(&mut self, quote: u8, backslash: bool) {
        self.pos += 1;
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            if backslash && c == b'\\' {
                self.pos += 2;
            } else if c == quote {
                if self.peek(1) == Some(quote) {
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = self.bytes.len();
    }

    /// `$tag$ ... $tag$` or `$$ ... $$`; `$1` is a parameter, and `a$b` an
    /// identifier (read whole by `word`).
    fn dollar(&mut self) {
        let rest = &self.bytes[self.pos + 1..];
        let tag_len = rest
            .iter()
            .take_while(|&&b| is_ident_start(b) || b.is_ascii_digit())
            .count();
        let starts_ok = rest
            .first()
            .is_some_and(|&b| b == b'$' || is_ident_start(b));
        if !starts_ok || rest.get(tag_len) != Some(&b'$') {
            self.pos += 1;
            while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            return;
        }
        let delim = &self.src[self.pos..self.pos + tag_len + 2];
        let body_start = self.pos + delim.len();
        match memchr_find(&self.bytes[body_start..], delim.as_bytes()) {
            Some(end) => self.pos = body_start + end + delim.len(),
            None => self.pos = self.bytes.len(),
        }
    }

    fn skip_line_comment(&mut self) {
        match self.bytes[self.pos..].iter().position(|&b| b == b'\n') {
            Some(n) => self.pos += n,
            None => self.pos = self.bytes.len(),
        }
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            if self.bytes[self.pos] == b'/' && self.peek(1) == Some(b'*') {
                depth += 1;
                self.pos += 2;
            } else if self.bytes[self.pos] == b'*' && self.peek(1) == Some(b'/') {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
    }

    /// A backslash at the start of a line: the rest of the line is one
    /// meta-command. A statement typed before it without `;` is sent first
    /// (as `\g` would send it); `\g` itself is not an item.
    fn meta_command(&mut self, st: &StmtState) -> Option<Item> {
        let begin = self.pos;
        let end = self.bytes[begin..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |n| begin + n);
        self.pos = end;
        let is_g = trim_space_end(&self.src[begin..end]) == "\\g";
        if let Some(start) = st.started {
            // psql's query buffer: what came before the backslash, with
            // the spaces before a mid-line one (`select 1 \g` sends
            // `select 1 `), without the line break before one that starts
            // a line.
            let text = if self.at_line_start(begin) {
                trim_space_end(&self.src[start..begin])
            } else {
                &self.src[start..begin]
            };
            // A plain `\g` just sends it; any other command follows it.
            if !is_g {
                self.pending_meta = Some((begin, end));
            }
            return Some(self.item(ItemKind::Statement, start, text, !st.nonempty));
        }
        let text = trim_space_end(&self.src[begin..end]);
        Some(self.item(ItemKind::Meta, begin, text, false))
    }

    fn item(&mut self, kind: ItemKind, offset: usize, text: &str, empty: bool) -> Item {
        // Items come in script order: count characters and lines from the
        // previous item only.
        let from = self.mark;
        let between = &self.bytes[from.byte..offset];
        let mark = Mark {
            byte: offset,
            chars: from.chars + between.iter().filter(|&&b| (b & 0xC0) != 0x80).count(),
            line: from.line + between.iter().filter(|&&b| b == b'\n').count(),
        };
        self.mark = mark;
        Item {
            kind,
            text: text.to_string(),
            offset,
            char_offset: mark.chars,
            line: mark.line,
            empty,
        }
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = 0;
    while let Some(p) = haystack[i..].iter().position(|&b| b == first) {
        let at = i + p;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The whitespace PostgreSQL's lexer skips (`[ \t\n\r\f]`): only this is
/// trimmed from an item, so that what the splitter drops is exactly what it
/// skips (Rust's `trim_end` would also drop `\v` and Unicode spaces, which
/// the server reads as part of the statement).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c')
}

fn trim_space_end(text: &str) -> &str {
    text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        split(script).into_iter().map(|i| i.text).collect()
    }

    #[test]
    fn statements_keep_their_semicolon_and_empty_queries_count() {
        assert_eq!(
            texts("select 1; select 2;;  ; "),
            ["select 1;", "select 2;", ";", ";"]
        );
        let items = split("select 1;;");
        assert!(!items[0].empty);
        assert!(items[1].empty);
        assert_eq!(texts("select 1"), ["select 1"]);
        assert_eq!(texts("select 1\n"), ["select 1"]);
        assert!(texts("  \n -- only a comment\n").is_empty());
        // A line comment is whitespace to psql; a block comment is kept.
        assert_eq!(texts("-- c\n;"), [";"]);
        let items = split("/* c */ ;\n/* only */");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text, "/* c */ ;");
        assert!(items[0].empty && items[1].empty);
        assert_eq!(texts("select 2 FROM;"), ["select 2 FROM;"]);
    }

    #[test]
    fn single_quotes_with_doubled_quote_escape() {
        assert_eq!(
            texts("select 'a;''b'; select 2"),
            ["select 'a;''b';", "select 2"]
        );
    }

    #[test]
    fn e_strings_and_standard_conforming_strings() {
        assert_eq!(
            texts(r"select E'it\'s; fine'; select 2"),
            [r"select E'it\'s; fine';", "select 2"]
        );
        // A standard string ends at the quote even after a backslash.
        assert_eq!(
            texts(r"select 'a\'; select 2"),
            [r"select 'a\';", "select 2"]
        );
        // With standard_conforming_strings off, it does not.
        let off: Vec<String> = split_with(r"select 'it\'s; still one'; select 2", false)
            .into_iter()
            .map(|i| i.text)
            .collect();
        assert_eq!(off, [r"select 'it\'s; still one';", "select 2"]);
        // `e'` ending a word is not an E string; B/X/U& strings never escape.
        assert_eq!(texts("select type'x;'"), ["select type'x;'"]);
        let off: Vec<String> = split_with(r"select X'1\'; select U&'d\'; select 3", false)
            .into_iter()
            .map(|i| i.text)
            .collect();
        assert_eq!(off.len(), 3);
    }

    #[test]
    fn incremental_lexing_follows_the_setting_between_statements() {
        let script = r"set standard_conforming_strings = off; select 'a\'; b'; select 3;";
        let mut lexer = Lexer::new(script);
        assert_eq!(
            lexer.next_item(true).unwrap().text,
            "set standard_conforming_strings = off;"
        );
        assert_eq!(lexer.next_item(false).unwrap().text, r"select 'a\'; b';");
        assert_eq!(lexer.count_rest(false), 1);
        assert_eq!(lexer.next_item(false).unwrap().text, "select 3;");
        assert!(lexer.next_item(false).is_none());
    }

    #[test]
    fn double_quoted_identifiers() {
        assert_eq!(
            texts(r#"select 1 as "a;""b"; select 2"#),
            [r#"select 1 as "a;""b";"#, "select 2"]
        );
    }

    #[test]
    fn dollar_quotes_plain_and_tagged() {
        let script = "create function f() returns int language plpgsql as $$ begin return 1; end $$; select f()";
        assert_eq!(texts(script).len(), 2);
        let script = "do $body$ begin raise notice 'a;$$'; end $body$; select 1";
        assert_eq!(
            texts(script),
            [
                "do $body$ begin raise notice 'a;$$'; end $body$;",
                "select 1"
            ]
        );
        assert_eq!(texts("select $a1$;$a1$; select 2").len(), 2);
    }

    #[test]
    fn positional_parameters_and_dollar_in_identifiers_are_not_quotes() {
        assert_eq!(
            texts("prepare p as select $1; select a$b$ from t; select 3"),
            ["prepare p as select $1;", "select a$b$ from t;", "select 3"]
        );
    }

    #[test]
    fn comments_line_and_nested_block() {
        assert_eq!(
            texts("-- a; b\nselect 1 /* x; /* nested; */ still; */ + 1; select 2 -- c;"),
            [
                "select 1 /* x; /* nested; */ still; */ + 1;",
                "select 2 -- c;"
            ]
        );
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split() {
        let script = "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1";
        assert_eq!(texts(script).len(), 2);
    }

    #[test]
    fn begin_atomic_function_body_as_psqlscan_tracks_it() {
        let script = "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end; select f()";
        assert_eq!(
            texts(script),
            [
                "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end;",
                "select f()"
            ]
        );
        let script =
            "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC insert into t values (1); END; call p();";
        assert_eq!(texts(script).len(), 2);
        // A plain transaction BEGIN is its own statement.
        assert_eq!(
            texts("begin; select 1; end;"),
            ["begin;", "select 1;", "end;"]
        );
        // Not a routine: `create table ... (begin int)` counts nothing.
        assert_eq!(texts("create table b (begin_x int); select 1;").len(), 2);
    }

    #[test]
    fn meta_commands_at_line_start_are_items() {
        let items = split("\\dt\nselect 1;\n  \\d+ tasks\nselect 2\n\\x\n");
        let kinds: Vec<_> = items.iter().map(|i| (i.kind, i.text.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ItemKind::Meta, "\\dt"),
                (ItemKind::Statement, "select 1;"),
                (ItemKind::Meta, "\\d+ tasks"),
                (ItemKind::Statement, "select 2"),
                (ItemKind::Meta, "\\x"),
            ]
        );
        // A backslash inside a string or mid-line is not a meta-command.
        assert_eq!(texts("select '\n\\dt'"), ["select '\n\\dt'"]);
        assert_eq!(split("select 1 \\x").len(), 1);
        // `\gset` and `\gexec` mid-line end the query before them.
        let kinds: Vec<_> = split("select 1 as a \\gset p_\nselect 'x'\\gexec")
            .into_iter()
            .map(|i| (i.kind, i.text))
            .collect();
        assert_eq!(
            kinds,
            [
                (ItemKind::Statement, "select 1 as a ".to_string()),
                (ItemKind::Meta, "\\gset p_".to_string()),
                (ItemKind::Statement, "select 'x'".to_string()),
                (ItemKind::Meta, "\\gexec".to_string()),
            ]
        );
        assert_eq!(split("select '\\gset'").len(), 1);
        assert_eq!(split("select now() \\watch 1").len(), 2);
        // `\g` on its own line sends the statement before it; mid-line
        // too, with the spaces before it; `\gx` follows its query, and a
        // `\g` after nothing is an item (the session sends the previous
        // query again).
        assert_eq!(texts("select 1\n\\g\nselect 2"), ["select 1", "select 2"]);
        assert_eq!(
            texts("select 1 \\g\nselect 2 \\gx"),
            ["select 1 ", "select 2 ", "\\gx"]
        );
        assert_eq!(texts("select 1;\n\\g\n\\gx"), ["select 1;", "\\g", "\\gx"]);
        assert_eq!(split("select '\\g'").len(), 1);
        assert_eq!(split("select 1 \\gdesc").len(), 2);
        assert_eq!(split("select 1 \\gdescx").len(), 1);
    }

    #[test]
    fn offsets_lines_and_char_offsets_map_back_to_the_script() {
        let script = "-- héllo\nselect 1;\n\n  select 'é', 2;\n\\x\nselect 'ü'";
        let items = split(script);
        assert_eq!(items.len(), 4);
        for item in &items {
            assert_eq!(
                &script[item.offset..item.offset + item.text.len()],
                item.text
            );
            let by_chars: String = script
                .chars()
                .skip(item.char_offset)
                .take(item.text.chars().count())
                .collect();
            assert_eq!(by_chars, item.text);
        }
        assert_eq!(items[0].line, 2);
        assert_eq!(items[1].line, 4);
        assert_eq!(items[1].char_offset, 22);
        assert_eq!(items[2].line, 5);
        assert_eq!(items[3].line, 6);
    }

    #[test]
    fn unterminated_quotes_and_comments_do_not_panic() {
        for script in [
            "select 'abc",
            "select \"x",
            "select $$x",
            "/* open",
            "select E'\\",
            "$",
            "$a",
            "e'",
            "u&",
            "x'",
            "\\",
        ] {
            let _ = split(script);
            let _ = split_with(script, false);
        }
        assert_eq!(texts("select 'abc; select 2"), ["select 'abc; select 2"]);
    }
}
