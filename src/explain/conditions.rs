//! Reading column names out of PostgreSQL's deparsed conditions, e.g.
//! `((status = 'todo'::text) AND (priority = 'high'::text))`, for findings that
//! suggest an index. Only a column compared with a constant counts, so that a
//! suggestion never names something that is not a column of the scanned table.

/// A column compared with a constant in a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnTest {
    /// Unqualified column name as PostgreSQL printed it.
    pub column: String,
    /// `=` (or `IS NULL`, `= ANY`): such columns go first in an index.
    pub equality: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Literal,
    Op(String),
    Open,
    Close,
    Cast,
    Comma,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Literal);
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            let end = i.min(chars.len());
            out.push(Tok::Word(chars[start..end].iter().collect::<String>()));
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '$' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Literal);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '.'
                    || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else if c == '(' || c == '[' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' || c == ']' {
            out.push(Tok::Close);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok::Cast);
            i += 2;
        } else {
            let start = i;
            while i < chars.len() && "=<>!~*+-/%^|&@#".contains(chars[i]) {
                i += 1;
            }
            if i == start {
                i += 1;
            }
            out.push(Tok::Op(chars[start..i].iter().collect()));
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "is", "null", "true", "false", "any", "all", "in", "like", "between",
    "case", "when", "then", "else", "end", "distinct", "from", "subplan", "hashed",
];

/// Columns compared with a constant, in order of first appearance, without
/// repeats. Returns nothing for conditions it cannot read with confidence.
pub fn column_tests(cond: &str) -> Vec<ColumnTest> {
    let toks = tokenize(cond);
    // Whether each token sits inside a function call's parentheses: a column
    // there (`lower(title)`) is not what a plain index on it would serve.
    let mut in_call = vec![false; toks.len()];
    let mut stack: Vec<bool> = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        in_call[k] = stack.iter().any(|c| *c);
        match t {
            Tok::Open => stack.push(k > 0 && matches!(&toks[k - 1], Tok::Word(w) if !KEYWORDS.contains(&w.to_ascii_lowercase().as_str()))),
            Tok::Close => {
                stack.pop();
            }
            _ => {}
        }
    }
    let mut out: Vec<ColumnTest> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Tok::Word(w) = &toks[i] else {
            i += 1;
            continue;
        };
        let lower = w.to_ascii_lowercase();
        let prev_is_cast = i > 0 && toks[i - 1] == Tok::Cast;
        let is_call = toks.get(i + 1) == Some(&Tok::Open);
        if prev_is_cast || is_call || in_call[i] || KEYWORDS.contains(&lower.as_str()) {
            i += 1;
            continue;
        }
        // Skip `)` and `::type` after the column: `((status)::text = ...)`.
        let mut j = i + 1;
        loop {
            match toks.get(j) {
                Some(Tok::Close) => j += 1,
                Some(Tok::Cast) => {
                    j += 1;
                    while let Some(Tok::Word(_)) = toks.get(j) {
                        j += 1;
                    }
                    if toks.get(j) == Some(&Tok::Open) && toks.get(j + 1) == Some(&Tok::Close) {
                        j += 2;
                    }
                }
                _ => break,
            }
        }
        let test = match (toks.get(j), toks.get(j + 1), toks.get(j + 2)) {
            (Some(Tok::Op(op)), Some(Tok::Literal), _) => btree_op(op),
            (Some(Tok::Op(op)), Some(Tok::Open), Some(Tok::Literal)) => btree_op(op),
            (Some(Tok::Op(op)), Some(Tok::Word(k)), _)
                if op == "=" && k.eq_ignore_ascii_case("any") =>
            {
                Some(true)
            }
            (Some(Tok::Word(k)), _, _) if k.eq_ignore_ascii_case("is") => Some(true),
            _ => None,
        };
        if let Some(equality) = test {
            let column = w.rsplit('.').next().unwrap_or(w).to_string();
            match out.iter_mut().find(|t| t.column == column) {
                Some(t) => t.equality &= equality,
                None => out.push(ColumnTest { column, equality }),
            }
        }
        i += 1;
    }
    out
}

/// `Some(true)` for `=`, `Some(false)` for a range a b-tree serves, `None`
/// for operators it does not (`<>`, `~~` LIKE, ...).
fn btree_op(op: &str) -> Option<bool> {
    match op {
        "=" => Some(true),
        "<" | ">" | "<=" | ">=" => Some(false),
        _ => None,
    }
}

/// Columns for an index serving these tests: equality columns first.
pub fn index_columns(tests: &[ColumnTest]) -> Vec<String> {
    let mut cols: Vec<String> = tests
        .iter()
        .filter(|t| t.equality)
        .map(|t| t.column.clone())
        .collect();
    // At most one range column helps a b-tree after the equalities.
    if let Some(range) = tests.iter().find(|t| !t.equality) {
        cols.push(range.column.clone());
    }
    cols
}

/// A plain column reference (`tasks.title`, `title`, `"Title"`), unqualified.
pub fn plain_column(expr: &str) -> Option<String> {
    let e = expr.trim();
    let name = e.rsplit('.').next()?;
    let ok = !name.is_empty()
        && (name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || (name.len() > 2 && name.starts_with('"') && name.ends_with('"')));
    let qual_ok = e
        .split('.')
        .all(|p| !p.is_empty() && !p.contains(['(', ')', ' ', ':', '\'']));
    (ok && qual_ok).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(s: &str) -> Vec<(String, bool)> {
        column_tests(s)
            .into_iter()
            .map(|t| (t.column, t.equality))
            .collect()
    }

    #[test]
    fn reads_equalities_and_ranges() {
        assert_eq!(
            cols("((status = 'todo'::text) AND (priority = 'high'::text))"),
            [("status".into(), true), ("priority".into(), true)]
        );
        assert_eq!(
            cols("(t.created_at > '2027-01-01 00:00:00+00'::timestamp with time zone)"),
            [("created_at".into(), false)]
        );
        assert_eq!(
            cols("((status)::text = 'x'::text)"),
            [("status".into(), true)]
        );
        assert_eq!(
            cols("((assignee_id IS NULL) AND (status = ANY ('{todo,doing}'::text[])))"),
            [("assignee_id".into(), true), ("status".into(), true)]
        );
        assert_eq!(cols("(id = $1)"), [("id".into(), true)]);
    }

    #[test]
    fn ignores_functions_joins_and_strings() {
        assert!(cols("(lower(title) = 'x'::text)").is_empty());
        assert!(cols("(a.id = b.task_id)").is_empty());
        assert!(cols("(title ~~ '%status = 1%'::text)").is_empty());
        assert!(cols("(status <> 'done'::text)").is_empty());
        assert!(cols("(NOT (hashed SubPlan 1))").is_empty());
        assert!(cols("").is_empty());
        assert!(cols("((((").is_empty());
    }

    #[test]
    fn index_columns_put_equalities_first() {
        let t = column_tests("((created_at > now()) AND (status = 'todo'::text))");
        // `now()` is not a constant literal: only status counts.
        assert_eq!(index_columns(&t), ["status"]);
        let t = column_tests("((created_at > '2026-01-01'::date) AND (status = 'todo'::text))");
        assert_eq!(index_columns(&t), ["status", "created_at"]);
    }

    #[test]
    fn plain_columns() {
        assert_eq!(plain_column("tasks.title").as_deref(), Some("title"));
        assert_eq!(plain_column("id").as_deref(), Some("id"));
        assert_eq!(plain_column("lower(title)"), None);
        assert_eq!(plain_column("(a + b)"), None);
        assert_eq!(plain_column("created_at DESC"), None);
    }
}
