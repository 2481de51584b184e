//! Server-side syntax highlighting for the three languages of the course:
//! `sql`, `bash` and `python`.
//!
//! A small tokenizer of our own rather than syntect: syntect loads its syntax
//! set in tens of milliseconds and highlights with regex state machines,
//! which would blow the 5 ms budget for rendering section 14 on the first
//! (uncached) render; lessons only need comments, strings, numbers,
//! keywords and variables told apart. The output is HTML-escaped text with
//! `<span class="tok-…">` around tokens; the text content is unchanged, so a
//! Run button can read the SQL back with `textContent`.

use std::fmt::Write;

/// A language we highlight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Sql,
    Bash,
    Python,
}

impl Lang {
    /// The language of a fence info string (`sql`, `psql`, `bash`, `sh`, `shell`, `console`, `python`, `py`).
    pub fn from_info(info: &str) -> Option<Self> {
        let tag = info
            .split([' ', ',', '{'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match tag.as_str() {
            "sql" | "psql" | "postgresql" | "pgsql" => Some(Self::Sql),
            "bash" | "sh" | "shell" | "console" | "zsh" => Some(Self::Bash),
            "python" | "py" | "python3" => Some(Self::Python),
            _ => None,
        }
    }
}

const SQL_KEYWORDS: &[&str] = &[
    "add",
    "all",
    "alter",
    "analyze",
    "and",
    "as",
    "asc",
    "begin",
    "between",
    "buffers",
    "by",
    "cascade",
    "case",
    "check",
    "checkpoint",
    "cluster",
    "commit",
    "committed",
    "concurrently",
    "conflict",
    "constraint",
    "copy",
    "create",
    "cross",
    "database",
    "declare",
    "default",
    "deferrable",
    "delete",
    "desc",
    "distinct",
    "do",
    "drop",
    "else",
    "end",
    "exception",
    "execute",
    "exists",
    "explain",
    "extension",
    "false",
    "fetch",
    "for",
    "foreign",
    "format",
    "from",
    "full",
    "function",
    "grant",
    "group",
    "having",
    "if",
    "ilike",
    "in",
    "index",
    "inner",
    "insert",
    "interval",
    "into",
    "is",
    "isolation",
    "join",
    "json",
    "key",
    "language",
    "lateral",
    "left",
    "level",
    "like",
    "limit",
    "lock",
    "login",
    "materialized",
    "not",
    "nothing",
    "nowait",
    "null",
    "nulls",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "over",
    "partition",
    "password",
    "perform",
    "primary",
    "procedure",
    "raise",
    "read",
    "references",
    "refresh",
    "reindex",
    "release",
    "rename",
    "repeatable",
    "replace",
    "restrict",
    "return",
    "returning",
    "returns",
    "revoke",
    "right",
    "role",
    "rollback",
    "row",
    "rows",
    "savepoint",
    "schema",
    "select",
    "sequence",
    "serializable",
    "session",
    "set",
    "share",
    "show",
    "skip",
    "table",
    "then",
    "to",
    "transaction",
    "trigger",
    "true",
    "truncate",
    "union",
    "unique",
    "update",
    "user",
    "using",
    "vacuum",
    "values",
    "verbose",
    "view",
    "when",
    "where",
    "window",
    "with",
    "work",
];

const SQL_TYPES: &[&str] = &[
    "bigint",
    "bigserial",
    "boolean",
    "bool",
    "char",
    "date",
    "decimal",
    "double",
    "float",
    "int",
    "integer",
    "jsonb",
    "numeric",
    "precision",
    "real",
    "serial",
    "smallint",
    "text",
    "timestamp",
    "timestamptz",
    "uuid",
    "varchar",
    "varying",
    "inet",
    "bytea",
    "regclass",
];

const BASH_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "function", "return", "export", "local", "set", "unset", "echo", "exit", "source",
];

const PY_KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "False", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "None", "nonlocal", "not", "or", "pass", "raise", "return", "True", "try", "while",
    "with", "yield",
];

/// Highlights `code` as `lang`, returning escaped HTML.
pub fn highlight(code: &str, lang: Lang) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &code[i..];
        // Comments.
        let comment_end = match lang {
            Lang::Sql if rest.starts_with("--") => Some(line_end(code, i)),
            Lang::Sql if rest.starts_with("/*") => {
                Some(rest.find("*/").map_or(code.len(), |e| i + e + 2))
            }
            Lang::Bash | Lang::Python
                if c == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) =>
            {
                Some(line_end(code, i))
            }
            _ => None,
        };
        if let Some(end) = comment_end {
            span(&mut out, "tok-com", &code[i..end]);
            i = end;
            continue;
        }
        // Strings.
        if let Some(end) = string_end(code, i, lang) {
            span(&mut out, "tok-str", &code[i..end]);
            i = end;
            continue;
        }
        // Variables: bash `$X`, `${X}`, `$1`; psql `:name`.
        if lang == Lang::Bash && c == b'$' && i + 1 < bytes.len() {
            let end = if bytes[i + 1] == b'{' {
                rest.find('}').map_or(code.len(), |e| i + e + 1)
            } else {
                word_end(code, i + 1)
            };
            if end > i + 1 {
                span(&mut out, "tok-var", &code[i..end]);
                i = end;
                continue;
            }
        }
        if lang == Lang::Python
            && c == b'@'
            && (i == 0 || bytes[i - 1] == b'\n' || bytes[i - 1] == b' ')
        {
            let end = word_end(code, i + 1);
            span(&mut out, "tok-fn", &code[i..end]);
            i = end;
            continue;
        }
        // Numbers (not inside identifiers).
        if c.is_ascii_digit() && (i == 0 || !is_word_byte(bytes[i - 1])) {
            let mut end = i;
            while end < bytes.len()
                && (bytes[end].is_ascii_digit() || bytes[end] == b'.' || bytes[end] == b'_')
            {
                end += 1;
            }
            if end < bytes.len() && is_word_byte(bytes[end]) {
                // `10ms`, `2nd`: a word, not a number.
                let w = word_end(code, i);
                escape_into(&mut out, &code[i..w]);
                i = w;
            } else {
                span(&mut out, "tok-num", &code[i..end]);
                i = end;
            }
            continue;
        }
        // Words.
        if is_word_byte(c) {
            let end = word_end(code, i);
            let word = &code[i..end];
            let class = match lang {
                Lang::Sql => sql_word_class(word),
                Lang::Bash => BASH_KEYWORDS.contains(&word).then_some("tok-kw"),
                Lang::Python => {
                    if PY_KEYWORDS.contains(&word) {
                        Some("tok-kw")
                    } else if bytes.get(end) == Some(&b'(') {
                        Some("tok-fn")
                    } else {
                        None
                    }
                }
            };
            match class {
                Some(class) => span(&mut out, class, word),
                None => escape_into(&mut out, word),
            }
            i = end;
            continue;
        }
        // Anything else, one character at a time (UTF-8 safe).
        let ch_len = rest.chars().next().map_or(1, char::len_utf8);
        escape_into(&mut out, &code[i..i + ch_len]);
        i += ch_len;
    }
    out
}

fn sql_word_class(word: &str) -> Option<&'static str> {
    // Keyword lists are lowercase; compare without allocating for short words.
    let mut buf = [0u8; 24];
    if word.len() > buf.len() {
        return None;
    }
    for (b, w) in buf.iter_mut().zip(word.bytes()) {
        *b = w.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..word.len()]).ok()?;
    if SQL_KEYWORDS.binary_search(&lower).is_ok() {
        Some("tok-kw")
    } else if SQL_TYPES.contains(&lower) {
        Some("tok-type")
    } else {
        None
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn word_end(code: &str, start: usize) -> usize {
    let bytes = code.as_bytes();
    let mut end = start;
    while end < bytes.len() && is_word_byte(bytes[end]) {
        end += 1;
    }
    end
}

fn line_end(code: &str, start: usize) -> usize {
    code[start..].find('\n').map_or(code.len(), |e| start + e)
}

/// The end of a string literal starting at `i`, if one starts there.
fn string_end(code: &str, i: usize, lang: Lang) -> Option<usize> {
    let bytes = code.as_bytes();
    let rest = &code[i..];
    let c = bytes[i];
    match lang {
        Lang::Sql => {
            if c == b'\''
                || ((c == b'E' || c == b'e')
                    && bytes.get(i + 1) == Some(&b'\'')
                    && (i == 0 || !is_word_byte(bytes[i - 1])))
            {
                let open = if c == b'\'' { i } else { i + 1 };
                let mut j = open + 1;
                while j < bytes.len() {
                    if bytes[j] == b'\'' {
                        if bytes.get(j + 1) == Some(&b'\'') {
                            j += 2;
                            continue;
                        }
                        return Some(j + 1);
                    }
                    if c != b'\'' && bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                return Some(code.len());
            }
            if c == b'$' {
                // Dollar quotes: `$$` or `$tag$`.
                let tag_end = rest[1..].find('$')? + 2;
                let tag = &rest[..tag_end];
                if !tag[1..tag.len() - 1].bytes().all(is_word_byte)
                    || tag[1..].starts_with(|ch: char| ch.is_ascii_digit())
                {
                    return None;
                }
                let close = rest[tag_end..]
                    .find(tag)
                    .map_or(code.len(), |e| i + tag_end + e + tag.len());
                return Some(close);
            }
            None
        }
        Lang::Bash => match c {
            b'\'' => Some(rest[1..].find('\'').map_or(code.len(), |e| i + e + 2)),
            b'"' => Some(quoted_end(code, i, b'"')),
            _ => None,
        },
        Lang::Python => {
            for q in ["\"\"\"", "'''"] {
                if rest.starts_with(q) {
                    return Some(rest[3..].find(q).map_or(code.len(), |e| i + e + 6));
                }
            }
            match c {
                b'\'' | b'"' => Some(quoted_end(code, i, c)),
                _ => None,
            }
        }
    }
}

/// End of a backslash-escaped string opened by `quote` at `i` (stops at a newline).
fn quoted_end(code: &str, i: usize, quote: u8) -> usize {
    let bytes = code.as_bytes();
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b if b == quote => return j + 1,
            b'\n' => return j,
            _ => j += 1,
        }
    }
    code.len()
}

fn span(out: &mut String, class: &str, text: &str) {
    let _ = write!(out, "<span class=\"{class}\">");
    escape_into(out, text);
    out.push_str("</span>");
}

/// Appends `text` with `& < > " '` escaped.
pub fn escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_tags(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in html.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => out.push(ch),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        let mut sorted = SQL_KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, SQL_KEYWORDS);
    }

    #[test]
    fn sql_tokens() {
        let html = highlight("SELECT 'it''s' -- note\nFROM t WHERE n > 10;", Lang::Sql);
        assert!(
            html.contains("<span class=\"tok-kw\">SELECT</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"tok-str\">&#39;it&#39;&#39;s&#39;</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"tok-com\">-- note</span>"),
            "{html}"
        );
        assert!(
            html.contains("&gt; <span class=\"tok-num\">10</span>"),
            "{html}"
        );
    }

    #[test]
    fn sql_dollar_quotes_are_one_string() {
        let code = "create function f() returns trigger as $fn$ begin return new; end $fn$ language plpgsql;";
        let html = highlight(code, Lang::Sql);
        assert!(
            html.contains("<span class=\"tok-str\">$fn$ begin return new; end $fn$</span>"),
            "{html}"
        );
    }

    #[test]
    fn text_is_preserved_exactly() {
        for (code, lang) in [
            (
                "select '<script>' as x, \"Col\" from t2 /* c */ where a::int = 1e3; ┌─┐",
                Lang::Sql,
            ),
            (
                "docker run -e POSTGRES_PASSWORD=\"$PW\" ${IMG} # run it\necho 'a' > f",
                Lang::Bash,
            ),
            (
                "@decorator\ndef up():\n    op.add_column('tasks', \"x\")  # ok\n    s = \"\"\"multi\nline\"\"\"",
                Lang::Python,
            ),
            ("unterminated 'string", Lang::Sql),
            ("$", Lang::Bash),
            ("$1 + $2", Lang::Sql),
        ] {
            assert_eq!(strip_tags(&highlight(code, lang)), code);
        }
    }

    #[test]
    fn bash_and_python_tokens() {
        let html = highlight("export PGHOST=/tmp # socket\necho \"$PGHOST\"", Lang::Bash);
        assert!(
            html.contains("<span class=\"tok-kw\">export</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"tok-com\"># socket</span>"),
            "{html}"
        );
        let html = highlight("def upgrade():\n    return None", Lang::Python);
        assert!(
            html.contains(
                "<span class=\"tok-kw\">def</span> <span class=\"tok-fn\">upgrade</span>"
            ),
            "{html}"
        );
    }

    #[test]
    fn info_strings() {
        assert_eq!(Lang::from_info("sql"), Some(Lang::Sql));
        assert_eq!(Lang::from_info("bash title=x"), Some(Lang::Bash));
        assert_eq!(Lang::from_info("py"), Some(Lang::Python));
        assert_eq!(Lang::from_info(""), None);
        assert_eq!(Lang::from_info("text"), None);
    }
}
