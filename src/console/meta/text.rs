//! psql's aligned text format (`\pset format aligned`, `border 1`), and its
//! expanded form (`\x`), for results and meta-command tables: what
//! `psql -X -P pager=off` prints, byte for byte, so that tests can compare
//! pglab's answers with psql's own output and handouts can quote it.
//!
//! Widths count characters (psql counts display columns: the same for the
//! ASCII and Latin text of the course; East Asian wide characters differ).

use crate::console::result::{SqlError, StatementResult};

/// Types psql right-aligns (`column_type_alignment` in psql's print code).
fn right_aligned(type_name: &str) -> bool {
    matches!(
        type_name,
        "smallint"
            | "integer"
            | "bigint"
            | "real"
            | "double precision"
            | "numeric"
            | "oid"
            | "xid"
            | "xid8"
            | "cid"
            | "money"
    )
}

/// One table as psql's `printTable` gets it.
pub struct Table<'a> {
    pub title: Option<&'a str>,
    pub headers: Vec<&'a str>,
    /// Per column: right-aligned.
    pub right: Vec<bool>,
    /// Cells, NULLs already replaced by the null string.
    pub rows: Vec<Vec<&'a str>>,
    /// Footers psql prints in both forms.
    pub footers: &'a [String],
    /// Whether psql adds its default `(N rows)` footer (aligned form only,
    /// or when there is no row).
    pub count_footer: bool,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn lines(s: &str) -> Vec<&str> {
    s.split('\n').collect()
}

fn count_line(n: usize) -> String {
    if n == 1 {
        "(1 row)".into()
    } else {
        format!("({n} rows)")
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

impl Table<'_> {
    fn footer_lines(&self, with_default: bool) -> Vec<String> {
        let mut f: Vec<String> = self.footers.to_vec();
        if f.is_empty() && with_default && self.count_footer {
            f.push(count_line(self.rows.len()));
        }
        f
    }

    /// The table as psql prints it, blank line after included.
    pub fn render(&self, expanded: bool) -> String {
        if expanded {
            self.render_vertical()
        } else {
            self.render_aligned()
        }
    }

    fn render_aligned(&self) -> String {
        let n = self.headers.len();
        let mut w: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        let cells: Vec<Vec<Vec<&str>>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| lines(c)).collect())
            .collect();
        for row in &cells {
            for (j, cell) in row.iter().enumerate().take(n) {
                for l in cell {
                    w[j] = w[j].max(width(l));
                }
            }
        }
        let total = if n > 0 { n * 3 - 1 } else { 0 } + w.iter().sum::<usize>();
        let mut out = String::new();
        if let Some(t) = self.title {
            let tw = width(t);
            if tw < total {
                pad(&mut out, (total - tw) / 2);
            }
            out.push_str(t);
            out.push('\n');
        }
        for (i, h) in self.headers.iter().enumerate() {
            out.push(' ');
            let space = w[i] - width(h);
            pad(&mut out, space / 2);
            out.push_str(h);
            pad(&mut out, space.div_ceil(2));
            out.push(' ');
            if i + 1 < n {
                out.push('|');
            }
        }
        out.push('\n');
        for (i, wi) in w.iter().enumerate() {
            out.extend(std::iter::repeat_n('-', wi + 2));
            if i + 1 < n {
                out.push('+');
            }
        }
        out.push('\n');
        for row in &cells {
            let height = row.iter().map(Vec::len).max().unwrap_or(1);
            for k in 0..height {
                for (j, &wj) in w.iter().enumerate() {
                    let cell = row.get(j).map(Vec::as_slice).unwrap_or(&[]);
                    let last = j + 1 == n;
                    out.push(' ');
                    match cell.get(k) {
                        None => {
                            if !last {
                                pad(&mut out, wj);
                            }
                        }
                        Some(text) => {
                            let more = k + 1 < cell.len();
                            let space = wj - width(text);
                            if self.right.get(j).copied().unwrap_or(false) {
                                pad(&mut out, space);
                                out.push_str(text);
                            } else {
                                out.push_str(text);
                                if !last || more {
                                    pad(&mut out, space);
                                }
                            }
                        }
                    }
                    let more = k + 1 < cell.len();
                    if more {
                        out.push('+');
                    } else if !last {
                        out.push(' ');
                    }
                    if !last {
                        out.push('|');
                    }
                }
                out.push('\n');
            }
        }
        for f in self.footer_lines(true) {
            out.push_str(&f);
            out.push('\n');
        }
        out.push('\n');
        out
    }

    fn render_vertical(&self) -> String {
        let mut out = String::new();
        if self.rows.is_empty() {
            for f in self.footer_lines(true) {
                out.push_str(&f);
                out.push('\n');
            }
            out.push('\n');
            return out;
        }
        let hwidth = self.headers.iter().map(|h| width(h)).max().unwrap_or(0);
        let mut dwidth = 0;
        let mut multiline = false;
        for row in &self.rows {
            for c in row {
                let ls = lines(c);
                multiline |= ls.len() > 1;
                for l in ls {
                    dwidth = dwidth.max(width(l));
                }
            }
        }
        let swidth = if multiline { 4 } else { 3 };
        let digits = self.rows.len().to_string().len();
        let rwidth = digits + 12;
        let total = (hwidth + swidth + dwidth).max(rwidth);
        let dwidth = total - hwidth - swidth;
        if let Some(t) = self.title {
            out.push_str(t);
            out.push('\n');
        }
        for (i, row) in self.rows.iter().enumerate() {
            // The record line: "-[ RECORD n ]" then dashes to the width.
            let rec = format!("[ RECORD {} ]", i + 1);
            out.push('-');
            out.push_str(&rec);
            let mut reclen = rec.len() as isize + 1;
            for _ in reclen..hwidth as isize {
                out.push('-');
            }
            reclen -= hwidth as isize;
            for ch in ['-', '+', '-'] {
                if reclen <= 0 {
                    out.push(ch);
                }
                reclen -= 1;
            }
            let reclen = reclen.max(0) as usize;
            for _ in reclen..dwidth {
                out.push('-');
            }
            out.push('\n');
            for (j, h) in self.headers.iter().enumerate() {
                let value = row.get(j).copied().unwrap_or("");
                let ls = lines(value);
                for (k, l) in ls.iter().enumerate() {
                    if k == 0 {
                        out.push_str(h);
                        pad(&mut out, hwidth - width(h));
                        out.push(' ');
                    } else {
                        pad(&mut out, hwidth + 1);
                    }
                    out.push_str("| ");
                    out.push_str(l);
                    if k + 1 < ls.len() {
                        pad(&mut out, dwidth - width(l));
                        out.push('+');
                    }
                    out.push('\n');
                }
            }
        }
        if !self.footers.is_empty() {
            out.push('\n');
            for f in self.footers {
                out.push_str(f);
                out.push('\n');
            }
        }
        out.push('\n');
        out
    }
}

/// A result's table (if it has columns) as psql prints it; `null` stands
/// for SQL NULL (psql's `\pset null`, empty by default).
fn table_of<'a>(r: &'a StatementResult, null: &'a str) -> Table<'a> {
    let meta = r.kind == "meta";
    Table {
        title: r.title.as_deref(),
        headers: r.columns.iter().map(|c| c.name.as_str()).collect(),
        right: r
            .columns
            .iter()
            .map(|c| right_aligned(&c.type_name))
            .collect(),
        rows: r
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| v.as_deref().unwrap_or(if meta { "" } else { null }))
                    .collect()
            })
            .collect(),
        footers: &r.footers,
        count_footer: !meta || r.count_footer,
    }
}

/// What psql prints on standard output for one result: its table(s), its
/// text, or its command tag. Errors go to [`psql_error_text`].
pub fn psql_text(r: &StatementResult, expanded: bool) -> String {
    let mut out = String::new();
    if r.error.is_some() {
        return out;
    }
    let null = r.null_display.as_deref().unwrap_or("");
    if !r.columns.is_empty() {
        out.push_str(&table_of(r, null).render(expanded && !r.unexpanded));
    } else if r.kind == "meta" {
        if let Some(t) = &r.text {
            out.push_str(t);
            if !r.sql.trim_start().starts_with("\\echo -n") {
                out.push('\n');
            }
        }
    } else if let Some(tag) = &r.command_tag {
        out.push_str(tag);
        out.push('\n');
    }
    for m in &r.more {
        out.push_str(&psql_text(m, expanded));
    }
    out
}

/// What psql prints on standard error for a failed result (default
/// verbosity): `ERROR:  message`, the statement line with a caret, DETAIL
/// and HINT; a meta-command's own complaint is printed bare, as psql does.
pub fn psql_error_text(r: &StatementResult) -> String {
    let Some(e) = &r.error else {
        return String::new();
    };
    if e.sqlstate.is_empty() && r.kind == "meta" {
        return format!("{}\n", e.message);
    }
    let mut out = format!("{}:  {}\n", e.severity, e.message);
    if let Some(p) = e.position {
        out.push_str(&caret(&r.sql, p));
    }
    if let Some(d) = &e.detail {
        out.push_str(&format!("DETAIL:  {d}\n"));
    }
    if let Some(h) = &e.hint {
        out.push_str(&format!("HINT:  {h}\n"));
    }
    out
}

/// psql's `LINE n: ...` and caret under the error position (1-based
/// character offset into `sql`).
pub fn caret(sql: &str, position: usize) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let at = position.saturating_sub(1).min(chars.len());
    let before: String = chars[..at].iter().collect();
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = sql[line_start..].split('\n').next().unwrap_or("");
    let col = before[line_start..].chars().count();
    let prefix = format!("LINE {line_no}: ");
    format!(
        "{prefix}{line}\n{}^\n",
        " ".repeat(prefix.chars().count() + col)
    )
}

/// `\errverbose`: the last error in psql's verbose form.
pub fn verbose_error(sql: &str, e: &SqlError) -> String {
    let mut out = if e.sqlstate.is_empty() {
        format!("{}:  {}\n", e.severity, e.message)
    } else {
        format!("{}:  {}: {}\n", e.severity, e.sqlstate, e.message)
    };
    if let Some(p) = e.position {
        out.push_str(&caret(sql, p));
    }
    let v = e.verbose.as_deref().cloned().unwrap_or_default();
    let mut field = |name: &str, value: &Option<String>| {
        if let Some(x) = value {
            out.push_str(&format!("{name}:  {x}\n"));
        }
    };
    field("DETAIL", &e.detail);
    field("HINT", &e.hint);
    field("CONTEXT", &v.context);
    field("SCHEMA NAME", &v.schema);
    field("TABLE NAME", &v.table);
    field("COLUMN NAME", &v.column);
    field("DATATYPE NAME", &v.data_type);
    field("CONSTRAINT NAME", &v.constraint);
    field("LOCATION", &v.location);
    out.trim_end_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(rows: Vec<Vec<&'a str>>, footers: &'a [String]) -> Table<'a> {
        Table {
            title: Some("List of things"),
            headers: vec!["Name", "n"],
            right: vec![false, true],
            rows,
            footers,
            count_footer: true,
        }
    }

    #[test]
    fn aligned_like_psql() {
        let none: [String; 0] = [];
        let out = t(vec![vec!["alpha", "1"], vec!["b\nc", "22"]], &none).render(false);
        assert_eq!(
            out,
            "List of things\n Name  | n  \n-------+----\n alpha |  1\n b    +| 22\n c     | \n(2 rows)\n\n"
        );
    }

    #[test]
    fn expanded_like_psql() {
        let none: [String; 0] = [];
        let out = t(vec![vec!["alpha", "1"]], &none).render(true);
        assert_eq!(
            out,
            "List of things\n-[ RECORD 1 ]\nName | alpha\nn    | 1\n\n"
        );
        assert_eq!(t(vec![], &none).render(true), "(0 rows)\n\n");
    }

    #[test]
    fn caret_under_the_position() {
        assert_eq!(
            caret("select\nfoo bar", 12),
            "LINE 2: foo bar\n            ^\n"
        );
    }
}
