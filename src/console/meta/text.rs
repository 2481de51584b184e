//! psql's aligned text format (`\pset format aligned`, `border 1`), and its
//! expanded form (`\x`), for results and meta-command tables: what
//! `psql -X -P pager=off` prints, byte for byte, so that tests can compare
//! pglab's answers with psql's own output and handouts can quote it.
//!
//! Widths count display columns as psql does ([`char_width`]): none for
//! combining marks, two for East Asian wide characters, one for the rest.

use crate::console::notices::Notice;
use crate::console::result::{Format, PrintOptions, SqlError, StatementResult};

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
    s.chars().map(char_width).sum()
}

fn lines(s: &str) -> Vec<&str> {
    s.split('\n').collect()
}

/// A value as psql's `pg_wcsformat` shows it: a tab becomes spaces to the
/// next multiple of 8 columns of its line, `\r` the two characters `\r`,
/// any other ASCII control character `\xNN`, a C1 control character
/// `\uNNNN`; line breaks stay.
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && (c.is_control())) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut col = 0;
    for c in s.chars() {
        match c {
            '\n' => {
                out.push('\n');
                col = 0;
            }
            '\t' => loop {
                out.push(' ');
                col += 1;
                if col % 8 == 0 {
                    break;
                }
            },
            '\r' => {
                out.push_str("\\r");
                col += 2;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02X}", c as u32));
                col += 4;
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
                col += 6;
            }
            c => {
                out.push(c);
                col += char_width(c);
            }
        }
    }
    out.into()
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
        self.render_with(expanded, &PrintOptions::default())
    }

    /// The table as psql prints it with these print options (`\pset`):
    /// aligned (borders 0 to 2, expanded with border 1), unaligned and csv,
    /// with or without header and footer.
    pub fn render_with(&self, expanded: bool, o: &PrintOptions) -> String {
        match o.format {
            Format::Csv => self.render_csv(expanded, o.tuples_only),
            Format::Unaligned => self.render_unaligned(expanded, o),
            Format::Aligned if expanded => self.render_vertical(o),
            Format::Aligned => self.render_aligned(o),
        }
    }

    /// psql's unaligned format: values as they are, `fieldsep` between.
    fn render_unaligned(&self, expanded: bool, o: &PrintOptions) -> String {
        let mut out = String::new();
        let sep = o.fieldsep.as_str();
        if expanded {
            for (i, row) in self.rows.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                for (h, v) in self.headers.iter().zip(row) {
                    out.push_str(h);
                    out.push_str(sep);
                    out.push_str(v);
                    out.push('\n');
                }
            }
            return out;
        }
        if !o.tuples_only {
            if let Some(t) = self.title {
                out.push_str(t);
                out.push('\n');
            }
            out.push_str(&self.headers.join(sep));
            out.push('\n');
        }
        for row in &self.rows {
            out.push_str(&row.join(sep));
            out.push('\n');
        }
        if !o.tuples_only {
            for f in self.footer_lines(o.footer) {
                out.push_str(&f);
                out.push('\n');
            }
        }
        out
    }

    /// psql's csv format (RFC 4180 quoting), no footer.
    fn render_csv(&self, expanded: bool, tuples_only: bool) -> String {
        fn field(out: &mut String, v: &str) {
            if v.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&v.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(v);
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[&str]| {
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                field(out, c);
            }
            out.push('\n');
        };
        if expanded {
            for row in &self.rows {
                for (h, v) in self.headers.iter().zip(row) {
                    line(&mut out, &[h, v]);
                }
            }
            return out;
        }
        if !tuples_only {
            line(&mut out, &self.headers);
        }
        for row in &self.rows {
            line(&mut out, row);
        }
        out
    }

    fn render_aligned(&self, o: &PrintOptions) -> String {
        let border = o.border.min(2);
        let n = self.headers.len();
        if n == 0 {
            // psql: no header line, one of dashes, no row lines.
            let mut out = String::from("--\n");
            for f in self.footer_lines(true) {
                out.push_str(&f);
                out.push('\n');
            }
            out.push('\n');
            return out;
        }
        let headers: Vec<std::borrow::Cow<'_, str>> =
            self.headers.iter().map(|h| shown(h)).collect();
        let headers: Vec<&str> = headers.iter().map(|h| h.as_ref()).collect();
        let header_lines: Vec<Vec<&str>> = headers.iter().map(|h| lines(h)).collect();
        let mut w: Vec<usize> = header_lines
            .iter()
            .map(|h| h.iter().map(|l| width(l)).max().unwrap_or(0))
            .collect();
        let shown_rows: Vec<Vec<std::borrow::Cow<'_, str>>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| shown(c)).collect())
            .collect();
        let cells: Vec<Vec<Vec<&str>>> = shown_rows
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
        let total = match border {
            0 => n - 1,
            1 => n * 3 - 1,
            _ => n * 3 + 1,
        } + w.iter().sum::<usize>();
        let rule = |out: &mut String| {
            if border == 2 {
                out.push('+');
            }
            for (i, wi) in w.iter().enumerate() {
                let dashes = if border == 0 { *wi } else { wi + 2 };
                out.extend(std::iter::repeat_n('-', dashes));
                if i + 1 < n || border == 2 {
                    out.push(if border == 0 { ' ' } else { '+' });
                }
            }
            out.push('\n');
        };
        let mut out = String::new();
        if let Some(t) = self.title.filter(|_| !o.tuples_only) {
            // A title may end with a newline (`\watch`'s): psql centers it
            // by its widest line.
            let tw = t.split('\n').map(width).max().unwrap_or(0);
            if tw < total {
                pad(&mut out, (total - tw) / 2);
            }
            out.push_str(t);
            out.push('\n');
        }
        if border == 2 {
            rule(&mut out);
        }
        // Header lines, centered; a header of several lines ends each but
        // its last with `+`, and columns whose header is done are blank.
        let height = if o.tuples_only {
            0
        } else {
            header_lines.iter().map(Vec::len).max().unwrap_or(1)
        };
        for k in 0..height {
            if border == 2 {
                out.push('|');
            }
            for (i, h) in header_lines.iter().enumerate() {
                if border > 0 {
                    out.push(' ');
                }
                match h.get(k) {
                    Some(l) => {
                        let space = w[i] - width(l);
                        pad(&mut out, space / 2);
                        out.push_str(l);
                        pad(&mut out, space.div_ceil(2));
                    }
                    None => pad(&mut out, w[i]),
                }
                out.push(if k + 1 < h.len() { '+' } else { ' ' });
                if border > 0 && (i + 1 < n || border == 2) {
                    out.push('|');
                }
            }
            out.push('\n');
        }
        if !o.tuples_only {
            rule(&mut out);
        }
        for row in &cells {
            let height = row.iter().map(Vec::len).max().unwrap_or(1);
            for k in 0..height {
                if border == 2 {
                    out.push('|');
                }
                for (j, &wj) in w.iter().enumerate() {
                    let cell = row.get(j).map(Vec::as_slice).unwrap_or(&[]);
                    // Border 2 closes the last column like the others.
                    let last = j + 1 == n && border < 2;
                    if border > 0 {
                        out.push(' ');
                    }
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
                    if !last && border > 0 {
                        out.push('|');
                    }
                }
                out.push('\n');
            }
        }
        if border == 2 {
            rule(&mut out);
        }
        if !o.tuples_only {
            for f in self.footer_lines(o.footer) {
                out.push_str(&f);
                out.push('\n');
            }
        }
        out.push('\n');
        out
    }

    fn render_vertical(&self, o: &PrintOptions) -> String {
        let mut out = String::new();
        if self.rows.is_empty() || self.headers.is_empty() {
            for f in self.footer_lines(true) {
                out.push_str(&f);
                out.push('\n');
            }
            out.push('\n');
            return out;
        }
        let headers: Vec<std::borrow::Cow<'_, str>> =
            self.headers.iter().map(|h| shown(h)).collect();
        let shown_rows: Vec<Vec<std::borrow::Cow<'_, str>>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| shown(c)).collect())
            .collect();
        // psql's print_aligned_vertical (not wrapped): the widest line of
        // any header, the widest line of any value.
        let hwidth = headers
            .iter()
            .flat_map(|h| lines(h))
            .map(width)
            .max()
            .unwrap_or(0);
        let dwidth = shown_rows
            .iter()
            .flatten()
            .flat_map(|c| lines(c))
            .map(width)
            .max()
            .unwrap_or(0);
        if let Some(t) = self.title {
            out.push_str(t);
            out.push('\n');
        }
        for (i, row) in shown_rows.iter().enumerate() {
            if !o.tuples_only {
                record_line(&mut out, i + 1, hwidth, dwidth);
            } else if i > 0 {
                // Rows only: a plain rule between records.
                out.extend(std::iter::repeat_n('-', hwidth + 1));
                out.push('+');
                out.extend(std::iter::repeat_n('-', dwidth + 1));
                out.push('\n');
            }
            for (j, h) in headers.iter().enumerate() {
                let value = row.get(j).map(|v| v.as_ref()).unwrap_or("");
                vertical_field(&mut out, &lines(h), &lines(value), hwidth, dwidth);
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

/// psql's `print_aligned_vertical_line` (border 1): `-[ RECORD n ]`, then
/// dashes to the header width, `-+-` where it still fits, dashes to the
/// data width.
fn record_line(out: &mut String, record: usize, hwidth: usize, dwidth: usize) {
    let rec = format!("[ RECORD {record} ]");
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
    for _ in reclen.max(0) as usize..dwidth {
        out.push('-');
    }
    out.push('\n');
}

/// One field of an expanded record: header and value side by side, line
/// by line, each ended with `+` where more lines follow (psql's
/// `header_nl_right` and `nl_right`); a header with fewer lines than its
/// value leaves blanks under it, a value with fewer lines ends at `|`.
fn vertical_field(out: &mut String, h: &[&str], d: &[&str], hwidth: usize, dwidth: usize) {
    let (mut hline, mut dline) = (0, 0);
    let (mut hdone, mut ddone) = (false, false);
    while !hdone || !ddone {
        if hdone {
            pad(out, hwidth + 1);
        } else {
            let l = h[hline];
            out.push_str(l);
            pad(out, hwidth - width(l));
            if hline + 1 < h.len() {
                out.push('+');
                hline += 1;
            } else {
                out.push(' ');
                hdone = true;
            }
        }
        out.push('|');
        if !ddone {
            let l = d[dline];
            out.push(' ');
            out.push_str(l);
            if dline + 1 < d.len() {
                pad(out, dwidth - width(l));
                out.push('+');
                dline += 1;
            } else {
                ddone = true;
            }
        }
        out.push('\n');
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
    let expanded = r.expanded.unwrap_or(expanded);
    if !r.columns.is_empty() || (r.tuples && r.kind == "statement") {
        let options = r.print.clone().unwrap_or_default();
        out.push_str(&table_of(r, null).render_with(expanded && !r.unexpanded, &options));
        // psql prints the tag under the rows of INSERT/UPDATE/DELETE
        // ... RETURNING.
        if let Some(tag) = &r.command_tag
            && r.kind == "statement"
            && ["INSERT", "UPDATE", "DELETE"]
                .iter()
                .any(|k| tag.starts_with(k))
        {
            out.push_str(tag);
            out.push('\n');
        }
    } else if r.kind == "meta" {
        if let Some(t) = &r.text {
            out.push_str(t);
            let sql = r.sql.trim_start();
            if !(sql.starts_with("\\echo -n") || sql.starts_with("\\qecho -n")) {
                out.push('\n');
            }
        }
    } else if let Some(data) = &r.text {
        // COPY ... TO STDOUT: its data; psql prints no tag after it.
        out.push_str(data);
    } else if let Some(tag) = &r.command_tag {
        out.push_str(tag);
        out.push('\n');
    }
    for m in &r.more {
        out.push_str(&psql_text(m, expanded));
    }
    out
}

/// psql's `VERBOSITY` and `SHOW_CONTEXT`, which shape how it prints the
/// server's errors and notices (libpq's `PGVerbosity` and
/// `PGContextVisibility`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Messages {
    pub verbosity: Verbosity,
    pub context: ShowContext,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    #[default]
    Default,
    Terse,
    Verbose,
    Sqlstate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShowContext {
    Never,
    #[default]
    Errors,
    Always,
}

impl Messages {
    /// As the session's variables set them (psql's hooks keep them valid).
    pub fn from_vars(vars: &crate::console::vars::Vars) -> Self {
        let get = |name: &str| vars.get(name).map(|v| v.to_ascii_lowercase());
        Self {
            verbosity: match get("VERBOSITY").as_deref() {
                Some("terse") => Verbosity::Terse,
                Some("verbose") => Verbosity::Verbose,
                Some("sqlstate") => Verbosity::Sqlstate,
                _ => Verbosity::Default,
            },
            context: match get("SHOW_CONTEXT").as_deref() {
                Some("never") => ShowContext::Never,
                Some("always") => ShowContext::Always,
                _ => ShowContext::Errors,
            },
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What psql prints on standard error for a failed result (default
/// verbosity, `SHOW_CONTEXT errors`), as libpq builds it: `ERROR:  message`,
/// the statement line with a caret (or the internal query's), DETAIL, HINT,
/// QUERY and CONTEXT; a meta-command's own complaint is printed bare, as
/// psql does.
pub fn psql_error_text(r: &StatementResult) -> String {
    psql_error_text_with(r, Messages::default())
}

/// [`psql_error_text`] under the session's `VERBOSITY` and `SHOW_CONTEXT`.
pub fn psql_error_text_with(r: &StatementResult, how: Messages) -> String {
    let Some(e) = &r.error else {
        return String::new();
    };
    if e.sqlstate.is_empty() && r.kind == "meta" {
        return format!("{}\n", e.message);
    }
    let v = e.verbose.as_deref().cloned().unwrap_or_default();
    message_text(
        &Message {
            severity: &e.severity,
            sqlstate: &e.sqlstate,
            message: &e.message,
            sql: &r.sql,
            position: e.position,
            internal_query: e.internal_query.as_deref(),
            internal_position: e.internal_position,
            detail: e.detail.as_deref(),
            hint: e.hint.as_deref(),
            context: e.context.as_deref(),
            names: [
                v.schema.as_deref(),
                v.table.as_deref(),
                v.column.as_deref(),
                v.data_type.as_deref(),
                v.constraint.as_deref(),
            ],
            location: v.location.as_deref(),
            error: true,
        },
        how,
    )
}

/// What psql prints on standard error for a NOTICE or WARNING the server
/// sent while `sql` ran (default verbosity, `SHOW_CONTEXT errors`): as for
/// an error, `NOTICE:  message`, the caret line under its position, DETAIL,
/// HINT and QUERY, but no CONTEXT (libpq shows it for errors only).
pub fn psql_notice_text(n: &Notice, sql: &str) -> String {
    psql_notice_text_with(n, sql, Messages::default())
}

/// [`psql_notice_text`] under the session's `VERBOSITY` and `SHOW_CONTEXT`.
pub fn psql_notice_text_with(n: &Notice, sql: &str, how: Messages) -> String {
    message_text(
        &Message {
            severity: &n.severity,
            sqlstate: &n.sqlstate,
            message: &n.message,
            sql,
            position: n.position,
            internal_query: n.internal_query.as_deref(),
            internal_position: n.internal_position,
            detail: n.detail.as_deref(),
            hint: n.hint.as_deref(),
            context: n.context.as_deref(),
            names: [
                n.schema.as_deref(),
                n.table.as_deref(),
                n.column.as_deref(),
                n.data_type.as_deref(),
                n.constraint.as_deref(),
            ],
            location: n.location.as_deref(),
            error: false,
        },
        how,
    )
}

/// The fields of a server message libpq prints.
struct Message<'a> {
    severity: &'a str,
    sqlstate: &'a str,
    message: &'a str,
    sql: &'a str,
    position: Option<usize>,
    internal_query: Option<&'a str>,
    internal_position: Option<usize>,
    detail: Option<&'a str>,
    hint: Option<&'a str>,
    context: Option<&'a str>,
    /// Schema, table, column, data type and constraint names.
    names: [Option<&'a str>; 5],
    location: Option<&'a str>,
    /// An error (CONTEXT shown by default), not a notice.
    error: bool,
}

/// libpq's `pqBuildErrorMessage3`: the message (with the SQLSTATE when
/// verbose; ` at character N` when terse), the caret under the statement's
/// position (or else the internal query's), then DETAIL, HINT, QUERY and
/// CONTEXT (as `SHOW_CONTEXT` says), and when verbose the object names and
/// LOCATION; terse is the message line alone.
fn message_text(m: &Message<'_>, how: Messages) -> String {
    let mut verbosity = how.verbosity;
    let mut out = format!("{}:  ", m.severity);
    if verbosity == Verbosity::Sqlstate {
        if !m.sqlstate.is_empty() {
            out.push_str(m.sqlstate);
            out.push('\n');
            return out;
        }
        verbosity = Verbosity::Terse;
    }
    let terse = verbosity == Verbosity::Terse;
    if verbosity == Verbosity::Verbose && !m.sqlstate.is_empty() {
        out.push_str(m.sqlstate);
        out.push_str(": ");
    }
    out.push_str(m.message);
    let caret_on = match (m.position, m.internal_query, m.internal_position) {
        (Some(p), _, _) if !terse => Some((m.sql, p)),
        (Some(p), _, _) => {
            out.push_str(&format!(" at character {p}"));
            None
        }
        (None, Some(q), Some(p)) if !terse => Some((q, p)),
        (None, _, Some(p)) => {
            out.push_str(&format!(" at character {p}"));
            None
        }
        _ => None,
    };
    out.push('\n');
    if terse {
        // libpq stops at the message line (no CONTEXT either).
        return out;
    }
    if let Some((text, p)) = caret_on {
        out.push_str(&caret(text, p));
    }
    let mut field = |name: &str, value: Option<&str>| {
        if let Some(x) = value {
            out.push_str(&format!("{name}:  {x}\n"));
        }
    };
    field("DETAIL", m.detail);
    field("HINT", m.hint);
    field("QUERY", m.internal_query);
    if how.context == ShowContext::Always || (how.context == ShowContext::Errors && m.error) {
        field("CONTEXT", m.context);
    }
    if verbosity == Verbosity::Verbose {
        for (name, value) in [
            "SCHEMA NAME",
            "TABLE NAME",
            "COLUMN NAME",
            "DATATYPE NAME",
            "CONSTRAINT NAME",
        ]
        .into_iter()
        .zip(m.names)
        {
            field(name, value);
        }
        field("LOCATION", m.location);
    }
    out
}

/// Display columns psql gives a character in a table cell (libpq's
/// `PQdsplen` for UTF8, see [`super::widths`]): 0 for combining marks, 2
/// for East Asian wide characters, 1 otherwise.
pub fn char_width(c: char) -> usize {
    super::widths::dsplen(c)
}

/// Display columns libpq's caret code gives a character: as
/// [`char_width`], but at least 1 (`reportErrorPosition` counts a
/// zero-width character as one column).
fn caret_width(c: char) -> usize {
    char_width(c).max(1)
}

/// psql's `LINE n: ...` and caret under the error position (1-based
/// character offset into `sql`), as libpq's `reportErrorPosition` prints
/// it: tabs shown as spaces, `\r`, `\n` and `\r\n` ending lines, and a line
/// wider than 60 columns cut with `...` around the caret. Nothing when the
/// position is past the end.
pub fn caret(sql: &str, position: usize) -> String {
    const DISPLAY_SIZE: usize = 60;
    const MIN_RIGHT_CUT: usize = 10;
    let Some(loc) = position.checked_sub(1) else {
        return String::new();
    };
    let chars: Vec<char> = sql
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let mut scr = Vec::with_capacity(chars.len() + 1);
    let (mut col, mut loc_line, mut ibeg) = (0usize, 1usize, 0usize);
    let mut iend = None;
    for (cno, &ch) in chars.iter().enumerate() {
        scr.push(col);
        if ch == '\r' || ch == '\n' {
            if cno < loc {
                if ch == '\r' || cno == 0 || chars[cno - 1] != '\r' {
                    loc_line += 1;
                }
                ibeg = cno + 1;
            } else {
                iend = Some(cno);
                break;
            }
        }
        col += caret_width(ch);
    }
    let mut iend = match iend {
        Some(i) => i,
        None => {
            scr.push(col);
            chars.len()
        }
    };
    if loc > chars.len() || loc >= scr.len() {
        return String::new();
    }
    let (mut beg_trunc, mut end_trunc) = (false, false);
    if scr[iend] - scr[ibeg] > DISPLAY_SIZE {
        if scr[ibeg] + DISPLAY_SIZE >= scr[loc] + MIN_RIGHT_CUT {
            while scr[iend] - scr[ibeg] > DISPLAY_SIZE {
                iend -= 1;
            }
            end_trunc = true;
        } else {
            while scr[loc] + MIN_RIGHT_CUT < scr[iend] {
                iend -= 1;
                end_trunc = true;
            }
            while scr[iend] - scr[ibeg] > DISPLAY_SIZE {
                ibeg += 1;
                beg_trunc = true;
            }
        }
    }
    let mut prefix = format!("LINE {loc_line}: ");
    if beg_trunc {
        prefix.push_str("...");
    }
    let line: String = chars[ibeg..iend].iter().collect();
    let indent = prefix.chars().count() + scr[loc] - scr[ibeg];
    format!(
        "{prefix}{line}{}\n{}^\n",
        if end_trunc { "..." } else { "" },
        " ".repeat(indent)
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

    fn plain<'a>(headers: Vec<&'a str>, rows: Vec<Vec<&'a str>>, right: Vec<bool>) -> Table<'a> {
        Table {
            title: None,
            headers,
            right,
            rows,
            footers: &[],
            count_footer: true,
        }
    }

    #[test]
    fn multi_line_headers_as_psql() {
        // psql 15's own output for
        // select 1 as "two\nline header", E'a\nb' as "tab\theader", 3 as n;
        let t = plain(
            vec!["two\nline header", "tab\theader", "n"],
            vec![vec!["1", "a\nb", "3"]],
            vec![true, false, true],
        );
        assert_eq!(
            t.render(false),
            "     two    +| tab     header | n \n line header |                |   \n-------------+----------------+---\n           1 | a             +| 3\n             | b              | \n(1 row)\n\n"
        );
        assert_eq!(
            t.render(true),
            "-[ RECORD 1 ]--+--\ntwo           +| 1\nline header    |\ntab     header | a+\n               | b\nn              | 3\n\n"
        );
    }

    #[test]
    fn record_lines_follow_each_record_number() {
        // psql: a record line is as long as its own number needs, not the
        // last record's.
        let rows: Vec<Vec<&str>> = (0..10).map(|_| vec!["1", "x"]).collect();
        let out = plain(vec!["n", "eleven"], rows, vec![true, false]).render(true);
        assert!(out.starts_with("-[ RECORD 1 ]\nn      | 1\neleven | x\n"));
        assert!(out.contains("\n-[ RECORD 10 ]\n"));
        let rows = vec![vec!["8", "--------"], vec!["10", "----------"]];
        let out = plain(vec!["id", "dashes"], rows, vec![true, false]).render(true);
        assert!(
            out.starts_with("-[ RECORD 1 ]------\nid     | 8\n"),
            "{out}"
        );
    }

    #[test]
    fn tabs_and_control_characters_as_psql() {
        assert_eq!(shown("tab\there"), "tab     here");
        assert_eq!(shown("a\tb\nabcdefgh\tx"), "a       b\nabcdefgh        x");
        assert_eq!(shown("cr\r\u{1}"), "cr\\r\\x01");
        assert_eq!(shown("plain"), "plain");
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let sql = "select 'a long literal that pushes the caret far to the right of the line' as padding, 1 + 'x' as boom;";
        let p = sql.find("'x'").unwrap() + 1;
        assert_eq!(
            caret(sql, p),
            "LINE 1: ...ret far to the right of the line' as padding, 1 + 'x' as boo...\n                                                             ^\n"
        );
        assert_eq!(caret("select 1", 20), "");
    }

    #[test]
    fn caret_under_the_position() {
        assert_eq!(
            caret("select\nfoo bar", 12),
            "LINE 2: foo bar\n            ^\n"
        );
    }
}
