//! The statement under the editor's cursor, for Shift+Enter: the editor sends
//! its whole text and the cursor, and [`split`](super::split) decides where
//! statements begin and end, so the statement run is exactly one psql would
//! send (dollar quotes, `BEGIN ATOMIC` bodies and meta-commands included).
//!
//! Offsets are in UTF-16 code units, as a browser's string and CodeMirror's
//! positions count them.

use serde::Serialize;

use super::split::{self, ItemKind};

/// The statement (or meta-command) picked for a cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementAt {
    pub kind: ItemKind,
    /// The text as the splitter cut it (semicolon included).
    pub text: String,
    /// Where `text` starts in the script, in UTF-16 code units.
    pub from: usize,
    /// Where it ends (exclusive), in UTF-16 code units.
    pub to: usize,
}

/// The item that holds `cursor` (its start to its end, both included, so a
/// cursor right after a `;` still picks that statement); else the nearest
/// one before the cursor; else the first one after it. Empty queries (a bare
/// `;`) are passed over when there is anything else. `None` for a script of
/// whitespace and comments only.
pub fn statement_at(script: &str, cursor: usize) -> Option<StatementAt> {
    let items = split::split(script);
    let mut units = Utf16Offsets::new(script);
    let spans: Vec<StatementAt> = items
        .into_iter()
        .filter(|item| !item.empty)
        .map(|item| {
            let from = units.at(item.offset);
            let to = units.at(item.offset + item.text.len());
            StatementAt {
                kind: item.kind,
                text: item.text,
                from,
                to,
            }
        })
        .collect();
    let inside = spans
        .iter()
        .position(|s| s.from <= cursor && cursor <= s.to);
    let before = spans.iter().rposition(|s| s.to <= cursor);
    let index = inside
        .or(before)
        .or(if spans.is_empty() { None } else { Some(0) })?;
    spans.into_iter().nth(index)
}

/// Converts byte offsets of a string to UTF-16 offsets, moving forward only
/// (the splitter's items come in order), so a large script takes one pass.
struct Utf16Offsets<'a> {
    src: &'a str,
    byte: usize,
    units: usize,
}

impl<'a> Utf16Offsets<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            byte: 0,
            units: 0,
        }
    }

    fn at(&mut self, byte: usize) -> usize {
        if byte < self.byte {
            self.byte = 0;
            self.units = 0;
        }
        self.units += self.src[self.byte..byte]
            .chars()
            .map(char::len_utf16)
            .sum::<usize>();
        self.byte = byte;
        self.units
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_at(script: &str, cursor: usize) -> Option<String> {
        statement_at(script, cursor).map(|s| s.text)
    }

    #[test]
    fn picks_the_statement_under_the_cursor() {
        let script = "select 1;\nselect 2;\n\nselect 3";
        assert_eq!(text_at(script, 0).unwrap(), "select 1;");
        assert_eq!(text_at(script, 9).unwrap(), "select 1;", "right after ;");
        assert_eq!(text_at(script, 12).unwrap(), "select 2;");
        assert_eq!(text_at(script, 20).unwrap(), "select 2;", "blank line");
        assert_eq!(text_at(script, script.len()).unwrap(), "select 3");
        let at = statement_at(script, 12).unwrap();
        assert_eq!((at.from, at.to), (10, 19));
    }

    #[test]
    fn the_splitter_decides_the_boundaries() {
        let script = "create function f() returns int language sql\nbegin atomic select 1; select 2; end;\nselect $$a;b$$;";
        let body = text_at(script, 60).unwrap();
        assert!(
            body.starts_with("create function") && body.ends_with("end;"),
            "{body}"
        );
        assert_eq!(
            text_at(script, script.len() - 3).unwrap(),
            "select $$a;b$$;"
        );
        let meta = statement_at("select 1;\n\\dt\nselect 2;", 12).unwrap();
        assert_eq!((meta.kind, meta.text.as_str()), (ItemKind::Meta, "\\dt"));
    }

    #[test]
    fn offsets_count_utf16_units_and_empty_queries_are_passed_over() {
        // 'é' is one unit, '😀' two: "select 2" starts at unit 16.
        let script = "select 'é😀';\n;\nselect 2;";
        let at = statement_at(script, 17).unwrap();
        assert_eq!((at.text.as_str(), at.from, at.to), ("select 2;", 16, 25));
        assert_eq!(text_at(script, 14).unwrap(), "select 'é😀';");
        assert_eq!(text_at("-- only a comment\n", 3), None);
        assert_eq!(text_at("\n\nselect 1", 0).unwrap(), "select 1");
    }
}
