//! Splits a script into the statements psql would send one at a time, and the
//! psql meta-commands (`\dt`, `\x`...) found at the start of a line.
//!
//! The lexer follows psql's rules closely enough for a course: single-quoted
//! strings (`''` escapes), `E''` strings (backslash escapes), double-quoted
//! identifiers, dollar quotes (`$$`, `$tag$`), `--` and nested `/* */`
//! comments, and semicolons inside parentheses (`CREATE RULE ... (a; b)`) or
//! inside a `BEGIN ATOMIC ... END` function body, which do not end a statement.
//! Each item keeps its byte and character offset in the script, so that an
//! error position reported by the server maps back to the right place.

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
    /// The text to run: leading whitespace and comments and the terminating
    /// `;` removed (comments inside are kept, as psql keeps them).
    pub text: String,
    /// Byte offset of `text` in the script.
    pub offset: usize,
    /// Character offset of `text` in the script (what a browser counts).
    pub char_offset: usize,
    /// 1-based line of the script where `text` starts.
    pub line: usize,
}

/// Splits `script` into statements and meta-commands, in order.
pub fn split(script: &str) -> Vec<Item> {
    Splitter::new(script).run()
}

struct Splitter<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    items: Vec<Item>,
    /// Byte offset where the current statement's first token starts.
    start: Option<usize>,
    paren_depth: usize,
    /// `BEGIN ... END` depth inside a `CREATE FUNCTION ... BEGIN ATOMIC` body.
    begin_depth: usize,
    /// The first two words of the current statement, upper-cased, to know
    /// whether `BEGIN` opens a function body.
    words: Vec<String>,
}

impl<'a> Splitter<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            items: Vec::new(),
            start: None,
            paren_depth: 0,
            begin_depth: 0,
            words: Vec::new(),
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn at_line_start(&self, pos: usize) -> bool {
        self.src[..pos]
            .bytes()
            .rev()
            .take_while(|&b| b != b'\n')
            .all(|b| b == b' ' || b == b'\t' || b == b'\r')
    }

    fn run(mut self) -> Vec<Item> {
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            match c {
                c if is_space(c) => self.pos += 1,
                b'-' if self.peek(1) == Some(b'-') => self.skip_line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.skip_block_comment(),
                b'\\' if self.at_line_start(self.pos) => self.meta_command(),
                b';' if self.paren_depth == 0 && self.begin_depth == 0 => {
                    self.finish(self.pos);
                    self.pos += 1;
                }
                _ => {
                    self.start.get_or_insert(self.pos);
                    self.token(c);
                }
            }
        }
        self.finish(self.bytes.len());
        self.items
    }

    fn token(&mut self, c: u8) {
        match c {
            b'(' => {
                self.paren_depth += 1;
                self.pos += 1;
            }
            b')' => {
                self.paren_depth = self.paren_depth.saturating_sub(1);
                self.pos += 1;
            }
            b'\'' => self.skip_quoted(b'\'', false),
            b'"' => self.skip_quoted(b'"', false),
            b'$' => self.dollar(),
            b'e' | b'E' if self.peek(1) == Some(b'\'') && !self.prev_is_ident() => {
                self.pos += 1;
                self.skip_quoted(b'\'', true);
            }
            c if is_ident_start(c) => self.word(),
            _ => self.pos += 1,
        }
    }

    fn prev_is_ident(&self) -> bool {
        self.pos > 0 && is_ident_char(self.bytes[self.pos - 1])
    }

    fn word(&mut self) {
        let begin = self.pos;
        while self.pos < self.bytes.len() && is_ident_char(self.bytes[self.pos]) {
            self.pos += 1;
        }
        let word = self.src[begin..self.pos].to_ascii_uppercase();
        if self.words.len() < 4 {
            self.words.push(word.clone());
        }
        if self.is_routine_definition() {
            match word.as_str() {
                "BEGIN" => self.begin_depth += 1,
                "CASE" if self.begin_depth > 0 => self.begin_depth += 1,
                "END" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
    }

    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: the only statements whose
    /// body may be a `BEGIN ATOMIC ... END` block with semicolons inside.
    fn is_routine_definition(&self) -> bool {
        let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["CREATE", "FUNCTION" | "PROCEDURE", ..]
                | ["CREATE", "OR", "REPLACE", "FUNCTION" | "PROCEDURE", ..]
        )
    }

    /// Skips a quoted string or identifier; a doubled quote is an escaped
    /// quote, and with `backslash` a backslash escapes the next byte.
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

    /// `$tag$ ... $tag$` or `$$ ... $$`; `$1` and `a$b` are not quotes.
    fn dollar(&mut self) {
        if self.prev_is_ident() {
            self.pos += 1;
            return;
        }
        let rest = &self.src[self.pos + 1..];
        let tag_len = rest
            .bytes()
            .take_while(|&b| is_ident_char(b) && b != b'$')
            .count();
        let starts_ok = rest
            .as_bytes()
            .first()
            .is_some_and(|&b| b == b'$' || is_ident_start(b));
        if !starts_ok || rest.as_bytes().get(tag_len) != Some(&b'$') {
            self.pos += 1;
            return;
        }
        let delim = &self.src[self.pos..self.pos + tag_len + 2];
        let body_start = self.pos + delim.len();
        match self.src[body_start..].find(delim) {
            Some(end) => self.pos = body_start + end + delim.len(),
            None => self.pos = self.bytes.len(),
        }
    }

    fn skip_line_comment(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
            self.pos += 1;
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
    /// meta-command. A statement typed before it without `;` is sent first,
    /// as psql's `\g` would.
    fn meta_command(&mut self) {
        self.finish(self.pos);
        let begin = self.pos;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
            self.pos += 1;
        }
        let text = trim_space_end(&self.src[begin..self.pos]);
        // `\g` only sends the statement typed before it, which is done above.
        if text != "\\g" {
            self.items.push(self.item(ItemKind::Meta, begin, text));
        }
    }

    /// Ends the current statement at byte `end` (exclusive).
    fn finish(&mut self, end: usize) {
        if let Some(start) = self.start.take() {
            let text = trim_space_end(&self.src[start..end]);
            if !text.is_empty() {
                let item = self.item(ItemKind::Statement, start, text);
                self.items.push(item);
            }
        }
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.words.clear();
    }

    fn item(&self, kind: ItemKind, offset: usize, text: &str) -> Item {
        let before = &self.src[..offset];
        Item {
            kind,
            text: text.to_string(),
            offset,
            char_offset: before.chars().count(),
            line: before.bytes().filter(|&b| b == b'\n').count() + 1,
        }
    }
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
    fn splits_on_semicolons_and_drops_empty_statements() {
        assert_eq!(texts("select 1; select 2;;  ; "), ["select 1", "select 2"]);
        assert_eq!(texts("select 1"), ["select 1"]);
        assert!(texts("  \n -- only a comment\n").is_empty());
    }

    #[test]
    fn single_quotes_with_doubled_quote_escape() {
        assert_eq!(
            texts("select 'a;''b'; select 2"),
            ["select 'a;''b'", "select 2"]
        );
    }

    #[test]
    fn e_strings_with_backslash_escapes() {
        assert_eq!(
            texts(r"select E'it\'s; fine'; select 2"),
            [r"select E'it\'s; fine'", "select 2"]
        );
        // A standard string ends at the quote even after a backslash.
        assert_eq!(
            texts(r"select 'a\'; select 2"),
            [r"select 'a\'", "select 2"]
        );
        // `e'` inside a word is not an E string.
        assert_eq!(texts("select type'x;'"), ["select type'x;'"]);
    }

    #[test]
    fn double_quoted_identifiers() {
        assert_eq!(
            texts(r#"select 1 as "a;""b"; select 2"#),
            [r#"select 1 as "a;""b""#, "select 2"]
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
                "do $body$ begin raise notice 'a;$$'; end $body$",
                "select 1"
            ]
        );
    }

    #[test]
    fn positional_parameters_and_dollar_in_identifiers_are_not_quotes() {
        assert_eq!(
            texts("prepare p as select $1; select a$b$ from t; select 3"),
            ["prepare p as select $1", "select a$b$ from t", "select 3"]
        );
    }

    #[test]
    fn comments_line_and_nested_block() {
        assert_eq!(
            texts("-- a; b\nselect 1 /* x; /* nested; */ still; */ + 1; select 2 -- c;"),
            [
                "select 1 /* x; /* nested; */ still; */ + 1",
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
    fn begin_atomic_function_body() {
        let script = "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end; select f()";
        assert_eq!(
            texts(script),
            [
                "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end",
                "select f()"
            ]
        );
        // A plain transaction BEGIN is its own statement.
        assert_eq!(texts("begin; select 1; end;"), ["begin", "select 1", "end"]);
    }

    #[test]
    fn meta_commands_at_line_start_are_items() {
        let items = split("\\dt\nselect 1;\n  \\d+ tasks\nselect 2\n\\x\n");
        let kinds: Vec<_> = items.iter().map(|i| (i.kind, i.text.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ItemKind::Meta, "\\dt"),
                (ItemKind::Statement, "select 1"),
                (ItemKind::Meta, "\\d+ tasks"),
                (ItemKind::Statement, "select 2"),
                (ItemKind::Meta, "\\x"),
            ]
        );
        // A backslash inside a string or mid-line is not a meta-command.
        assert_eq!(texts("select '\n\\dt'"), ["select '\n\\dt'"]);
        assert_eq!(split("select 1 \\x").len(), 1);
        // `\g` on its own line sends the statement before it.
        assert_eq!(texts("select 1\n\\g\nselect 2"), ["select 1", "select 2"]);
    }

    #[test]
    fn offsets_lines_and_char_offsets_map_back_to_the_script() {
        let script = "-- héllo\nselect 1;\n\n  select 'é', 2;";
        let items = split(script);
        assert_eq!(items.len(), 2);
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
        ] {
            let _ = split(script);
        }
        assert_eq!(texts("select 'abc; select 2"), ["select 'abc; select 2"]);
    }
}
