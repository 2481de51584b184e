//! psql variables: `\set`, `\unset` and their interpolation, as psql 15's
//! lexer (`psqlscan.l`, `psqlscanslash.l`) does it.
//!
//! In a statement, outside quoted strings, quoted identifiers, dollar quotes
//! and comments:
//! - `:name` becomes the variable's value, as is;
//! - `:'name'` becomes the value as a quoted literal (`PQescapeLiteral`:
//!   quotes doubled, and with backslashes ` E'...'` with backslashes doubled);
//! - `:"name"` becomes the value as a quoted identifier;
//! - `:{?name}` becomes `TRUE` or `FALSE`, whether the variable is set;
//! - an undefined variable is left as typed, and `::` (a cast) is untouched.
//!
//! In a meta-command's arguments the same forms are replaced outside quotes
//! ([`crate::console::meta::parse_with`]).
//!
//! Some of psql's own variables change how a script runs, and psql checks
//! their values ([`assign`]): `ON_ERROR_STOP` and `AUTOCOMMIT` (booleans;
//! `\unset` makes them `off`, `\set NAME` alone `on`), `ECHO` and the other
//! boolean ones psql has.

use std::collections::BTreeMap;

/// A session's variables, by name.
pub type Vars = BTreeMap<String, String>;

/// psql's `valid_variable_name`: ASCII letters, digits, `_`, and any
/// non-ASCII character.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_var_char)
}

/// psql's variables holding a boolean (`bool_substitute_hook`).
const BOOL_VARS: &[&str] = &[
    "AUTOCOMMIT",
    "ON_ERROR_STOP",
    "QUIET",
    "SINGLELINE",
    "SINGLESTEP",
    "HIDE_TABLEAM",
    "HIDE_TOAST_COMPRESSION",
];

/// psql's `ParseVariableBool`: any prefix of `true`, `false`, `yes`, `no`,
/// at least two letters of `on`/`off`, `1`, `0`, in any case.
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = value.to_ascii_lowercase();
    let n = v.len();
    let prefix_of = |word: &str, min: usize| n >= min && n <= word.len() && word.starts_with(&v);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || v == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// Sets (`Some`) or unsets (`None`) variable `name` as psql's `\set` and
/// `\unset` do, through psql's hooks: a boolean variable unset becomes
/// `off` and set to nothing `on`, `ECHO` unset becomes `none`; a value the
/// hook refuses leaves the variable as it was and answers psql's error.
pub fn assign(vars: &mut Vars, name: &str, value: Option<&str>) -> Result<(), String> {
    if BOOL_VARS.contains(&name) {
        let value = match value {
            None => "off",
            Some("") => "on",
            Some(v) => v,
        };
        if parse_bool(value).is_none() {
            return Err(format!(
                "unrecognized value \"{value}\" for \"{name}\": Boolean expected"
            ));
        }
        vars.insert(name.to_string(), value.to_string());
        return Ok(());
    }
    if name == "ECHO" {
        let value = value.unwrap_or("none");
        if !["none", "errors", "queries", "all"]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value))
        {
            return Err(format!(
                "unrecognized value \"{value}\" for \"ECHO\"\nAvailable values are: none, errors, queries, all."
            ));
        }
        vars.insert(name.to_string(), value.to_string());
        return Ok(());
    }
    match value {
        Some(v) => {
            vars.insert(name.to_string(), v.to_string());
        }
        None => {
            vars.remove(name);
        }
    }
    Ok(())
}

/// The boolean psql variable `name` (one of psql's own: `default` when the
/// session never set it).
pub fn flag(vars: &Vars, name: &str, default: bool) -> bool {
    vars.get(name)
        .and_then(|v| parse_bool(v))
        .unwrap_or(default)
}

fn is_var_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// `PQescapeLiteral`'s quoting.
pub fn quote_literal(value: &str) -> String {
    let backslash = value.contains('\\');
    let mut out = String::with_capacity(value.len() + 4);
    if backslash {
        out.push_str(" E");
    }
    out.push('\'');
    for ch in value.chars() {
        if ch == '\'' || ch == '\\' {
            out.push(ch);
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

/// `PQescapeIdentifier`'s quoting.
pub fn quote_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// One variable reference at `bytes[at]` (a `:`): its replacement and the
/// length it covers, or `None` when it is not one (or is undefined).
pub fn reference(src: &str, at: usize, vars: &Vars) -> Option<(String, usize)> {
    let bytes = src.as_bytes();
    let rest = &bytes[at + 1..];
    let name_len = |from: usize| rest[from..].iter().take_while(|&&b| is_var_char(b)).count();
    match rest.first()? {
        q @ (b'\'' | b'"') => {
            let n = name_len(1);
            if n == 0 || rest.get(1 + n) != Some(q) {
                return None;
            }
            let value = vars.get(&src[at + 2..at + 2 + n])?;
            let text = if *q == b'\'' {
                quote_literal(value)
            } else {
                quote_ident(value)
            };
            Some((text, n + 3))
        }
        b'{' if rest.get(1) == Some(&b'?') => {
            let n = name_len(2);
            if n == 0 || rest.get(2 + n) != Some(&b'}') {
                return None;
            }
            let set = vars.contains_key(&src[at + 3..at + 3 + n]);
            Some((if set { "TRUE" } else { "FALSE" }.to_string(), n + 4))
        }
        _ => {
            let n = name_len(0);
            if n == 0 {
                return None;
            }
            let value = vars.get(&src[at + 1..at + 1 + n])?;
            Some((value.clone(), n + 1))
        }
    }
}

/// A statement's text with its variables replaced. `std_strings` is the
/// session's `standard_conforming_strings` (off: a backslash escapes in
/// `'...'`).
pub fn interpolate(sql: &str, vars: &Vars, std_strings: bool) -> String {
    if vars.is_empty() || !sql.contains(':') {
        return sql.to_string();
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => i = skip_quoted(b, i, b'\'', !std_strings),
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |n| i + n);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b'$' => i = skip_dollar(sql, i),
            b'e' | b'E' if b.get(i + 1) == Some(&b'\'') => {
                i = skip_quoted(b, i + 1, b'\'', true);
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' => match reference(sql, i, vars) {
                Some((text, len)) => {
                    out.push_str(&sql[copied..i]);
                    out.push_str(&text);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            },
            c if is_var_char(c) => {
                // A word (identifier, keyword, number): `a$b` and `e'` inside
                // a word are not quotes.
                while i < b.len() && (is_var_char(b[i]) || b[i] == b'$') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    out
}

fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn skip_block_comment(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn skip_dollar(src: &str, start: usize) -> usize {
    let b = src.as_bytes();
    let rest = &b[start + 1..];
    let tag_len = rest
        .iter()
        .take_while(|&&x| x.is_ascii_alphanumeric() || x == b'_' || x >= 0x80)
        .count();
    let starts_ok = rest
        .first()
        .is_some_and(|&x| x == b'$' || x.is_ascii_alphabetic() || x == b'_' || x >= 0x80);
    if !starts_ok || rest.get(tag_len) != Some(&b'$') {
        return start + 1;
    }
    let delim = &b[start..start + tag_len + 2];
    let body = start + delim.len();
    match b[body..].windows(delim.len()).position(|w| w == delim) {
        Some(n) => body + n + delim.len(),
        None => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("a", "12"),
            ("s", "it's"),
            ("d", r"back\slash"),
            ("q", "Mixed\"Q"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn replaces_values_literals_and_identifiers() {
        let v = vars();
        assert_eq!(interpolate("select :a;", &v, true), "select 12;");
        assert_eq!(interpolate("select :'s';", &v, true), "select 'it''s';");
        assert_eq!(
            interpolate("select :'d', :\"d\";", &v, true),
            r#"select  E'back\\slash', "back\slash";"#
        );
        assert_eq!(
            interpolate("select :\"q\";", &v, true),
            r#"select "Mixed""Q";"#
        );
        assert_eq!(
            interpolate("select :{?a}, :{?zz};", &v, true),
            "select TRUE, FALSE;"
        );
        assert_eq!(interpolate("select 1+:a*2", &v, true), "select 1+12*2");
        assert_eq!(interpolate("select x[1:a]", &v, true), "select x[112]");
    }

    #[test]
    fn leaves_undefined_casts_quotes_and_comments() {
        let v = vars();
        for sql in [
            "select :nope, :'nope', :\"nope\";",
            "select 1::int, a::text;",
            "select ':a', \":a\", $$:a$$, $t$ :a $t$;",
            "select 1 -- :a\n;",
            "select /* :a /* :a */ :a */ 1;",
            "select E'\\' :a';",
            "select : a, :'a, :\"a;",
        ] {
            assert_eq!(interpolate(sql, &v, true), sql, "{sql}");
        }
        // With standard_conforming_strings off, `\'` does not end a string.
        assert_eq!(
            interpolate(r"select 'x\' :a';", &v, false),
            r"select 'x\' :a';"
        );
        assert_eq!(
            interpolate(r"select 'x\' :a;", &v, true),
            r"select 'x\' 12;"
        );
        // `$1` is a parameter, `a$b` an identifier.
        assert_eq!(
            interpolate("select $1, a$b :a", &v, true),
            "select $1, a$b 12"
        );
    }

    #[test]
    fn hooked_variables_as_psql() {
        let mut v = Vars::new();
        assign(&mut v, "ON_ERROR_STOP", None).unwrap();
        assert_eq!(v["ON_ERROR_STOP"], "off");
        assert!(!flag(&v, "ON_ERROR_STOP", true));
        assign(&mut v, "ON_ERROR_STOP", Some("")).unwrap();
        assert!(flag(&v, "ON_ERROR_STOP", false));
        let e = assign(&mut v, "AUTOCOMMIT", Some("maybe")).unwrap_err();
        assert_eq!(
            e,
            "unrecognized value \"maybe\" for \"AUTOCOMMIT\": Boolean expected"
        );
        assert!(!v.contains_key("AUTOCOMMIT"));
        for (s, b) in [
            ("T", true),
            ("of", false),
            ("o", true),
            ("YES", true),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), (s != "o").then_some(b), "{s}");
        }
        assert!(assign(&mut v, "ECHO", Some("loud")).is_err());
        assign(&mut v, "ECHO", None).unwrap();
        assert_eq!(v["ECHO"], "none");
        assign(&mut v, "mine", Some("1")).unwrap();
        assign(&mut v, "mine", None).unwrap();
        assert!(!v.contains_key("mine"));
    }

    #[test]
    fn names_and_quoting_as_psql() {
        assert!(valid_name("a1_b"));
        assert!(valid_name("1a"));
        assert!(valid_name("é"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
        assert_eq!(quote_literal("o'k"), "'o''k'");
        assert_eq!(quote_ident("x"), "\"x\"");
    }
}
