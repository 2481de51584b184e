//! psql's object name patterns (`tasks`, `task*`, `public.t?`, `"Mixed Case"`,
//! `db.schema.name`) turned into SQL conditions the way psql's
//! `processSQLNamePattern` does: `*` and `?` are wildcards, unquoted letters
//! fold to lower case, double quotes keep case and make regex characters
//! literal, an unquoted `.` separates schema and name, and a name without a
//! schema is limited to what the search_path makes visible.

/// A pattern split into anchored regexes (`None`: that part was not given).
#[derive(Debug, PartialEq, Eq)]
pub struct Parts {
    pub db: Option<String>,
    pub schema: Option<String>,
    pub name: String,
}

/// Splits and translates `pattern`; the error is psql's message.
pub fn parse(pattern: &str) -> Result<Parts, String> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut in_quotes = false;
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        let cur = parts.last_mut().expect("one part at least");
        match ch {
            '"' => {
                if in_quotes && chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '*' if !in_quotes => cur.push_str(".*"),
            '?' if !in_quotes => cur.push('.'),
            '.' if !in_quotes => parts.push(String::new()),
            '$' => cur.push_str("\\$"),
            c if !in_quotes && c.is_ascii_uppercase() => cur.push(c.to_ascii_lowercase()),
            c => {
                if in_quotes && "|*+?()[]{}.^\\".contains(c) {
                    cur.push('\\');
                }
                cur.push(c);
            }
        }
    }
    let anchored = |s: &str| format!("^({s})$");
    let mut parts = parts.into_iter().rev();
    let name = anchored(&parts.next().unwrap_or_default());
    let schema = parts.next().map(|s| anchored(&s));
    let db = parts.next();
    if parts.next().is_some() {
        return Err(format!(
            "improper qualified name (too many dotted names): {pattern}"
        ));
    }
    Ok(Parts { db, schema, name })
}

/// A string as an SQL literal, safe whatever `standard_conforming_strings` is.
pub fn literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn regex_match(var: &str, re: &str) -> String {
    format!(
        " AND {var} OPERATOR(pg_catalog.~) {} COLLATE pg_catalog.default",
        literal(re)
    )
}

/// Where the pattern applies: the schema and name columns, an optional
/// second name column (`\df` matches either), and the visibility test used
/// when no schema is given.
pub struct Target<'a> {
    pub schema: Option<&'a str>,
    pub name: &'a str,
    pub alt_name: Option<&'a str>,
    pub visible: Option<&'a str>,
}

/// The `AND ...` conditions for `pattern` (none: every visible object).
/// `current_db` checks a three-part name as psql does.
pub fn conditions(
    pattern: Option<&str>,
    target: &Target<'_>,
    current_db: Option<&str>,
) -> Result<String, String> {
    let Some(pattern) = pattern else {
        return Ok(target
            .visible
            .map(|v| format!(" AND {v}"))
            .unwrap_or_default());
    };
    let parts = parse(pattern)?;
    if let (Some(db), Some(current)) = (&parts.db, current_db)
        && db != current
    {
        return Err(format!(
            "cross-database references are not implemented: {pattern}"
        ));
    }
    let mut out = String::new();
    if parts.name != "^(.*)$" {
        match target.alt_name {
            None => out.push_str(&regex_match(target.name, &parts.name)),
            Some(alt) => {
                let re = literal(&parts.name);
                out.push_str(&format!(
                    " AND ({} OPERATOR(pg_catalog.~) {re} COLLATE pg_catalog.default OR {alt} OPERATOR(pg_catalog.~) {re} COLLATE pg_catalog.default)",
                    target.name
                ));
            }
        }
    }
    match (&parts.schema, target.schema) {
        (Some(s), Some(var)) => {
            if s != "^(.*)$" {
                out.push_str(&regex_match(var, s));
            }
        }
        (Some(_), None) => {}
        (None, _) => {
            if let Some(v) = target.visible {
                out.push_str(&format!(" AND {v}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_like_psql() {
        let p = parse("Task*").unwrap();
        assert_eq!((p.schema, p.name.as_str()), (None, "^(task.*)$"));
        let p = parse("public.t?").unwrap();
        assert_eq!(p.schema.as_deref(), Some("^(public)$"));
        assert_eq!(p.name, "^(t.)$");
        assert_eq!(parse("\"Mixed Case\"").unwrap().name, "^(Mixed Case)$");
        assert_eq!(parse("\"a.b\"").unwrap().name, "^(a\\.b)$");
        assert_eq!(parse("\"say \"\"hi\"\"\"").unwrap().name, "^(say \"hi\")$");
        assert_eq!(parse("x$").unwrap().name, "^(x\\$)$");
        assert_eq!(parse("db.s.n").unwrap().db.as_deref(), Some("db"));
        assert!(
            parse("a.b.c.d")
                .unwrap_err()
                .contains("too many dotted names")
        );
        assert_eq!(literal("a'b"), "'a''b'");
        assert_eq!(literal("a\\$"), "E'a\\\\$'");
    }

    #[test]
    fn conditions_follow_visibility() {
        let t = Target {
            schema: Some("n.nspname"),
            name: "c.relname",
            alt_name: None,
            visible: Some("pg_catalog.pg_table_is_visible(c.oid)"),
        };
        assert_eq!(
            conditions(None, &t, None).unwrap(),
            " AND pg_catalog.pg_table_is_visible(c.oid)"
        );
        let c = conditions(Some("*.*"), &t, None).unwrap();
        assert_eq!(c, "", "everything everywhere");
        let c = conditions(Some("lab.*"), &t, None).unwrap();
        assert!(c.contains("n.nspname") && !c.contains("relname"), "{c}");
        assert!(conditions(Some("other.public.t"), &t, Some("labdb")).is_err());
    }
}
