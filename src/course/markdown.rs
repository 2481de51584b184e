//! The one place that configures pulldown-cmark for course content.
//!
//! Every parser of a lesson (the model, the HTML renderer, `content check`)
//! goes through [`parser`], so an option switched on here is switched on
//! everywhere.

use pulldown_cmark::{Options, Parser};

/// Every pulldown-cmark option course content relies on.
///
/// - tables: the curriculum compares settings and plans in GitHub tables;
/// - strikethrough and task lists: used in checklists of steps;
/// - heading attributes: an author may pin an anchor with `{#id}`;
/// - footnotes: `[^1]` notes (the `¹ ²` markers are plain text and need none).
///
/// Smart punctuation stays off: the text is full of SQL and shell in prose,
/// where turning `'` and `--` into typographic quotes and dashes would break
/// copy and paste.
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_FOOTNOTES
}

/// A parser over `text` with [`options`].
pub fn parser(text: &str) -> Parser<'_> {
    Parser::new_ext(text, options())
}
