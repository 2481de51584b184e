//! Renders a course page (a section or any lab markdown file) to HTML.
//!
//! The rendering pipeline, in order:
//!
//! 1. Parse the markdown with the options of [`super::markdown::options`].
//! 2. Escape raw HTML: `Html`/`InlineHtml` events become text, so a pasted
//!    `<script>` is shown, never run. From here on, every `Html` event in the
//!    stream is markup we wrote.
//! 3. Headings: give each an anchor id (an explicit `{#id}` wins, else a slug
//!    of its text, made unique), add a `#` anchor link, and record H2/H3 in
//!    the table of contents.
//! 4. Exercise cards: an `### Exercise 14.B.1 — Title` (or `### Scenario:`)
//!    heading opens a card with its id, a status badge placeholder and, when
//!    the card closes (next H2/H3, `---` or end of page), a "Check my work"
//!    button placeholder.
//! 5. Code blocks: `sql`, `bash`, `python` are highlighted
//!    ([`super::highlight`]); every sql block gets a Run button that sends it
//!    (with the enclosing exercise id) to the learner's console; untagged
//!    blocks are diagrams kept verbatim in monospace.
//! 6. Lab file references (code spans after `**Practice file:**`,
//!    `**Practice files:**`, `**Solution:**`, or starting with `practice/`)
//!    become links to `/files/<path>`, with a "Run this file in my sandbox"
//!    button for `.sql` files.
//! 7. Links: `15-x.md` → `/sections/15-x`; other relative links → `/files/..`
//!    resolved against the page's folder; `javascript:` (and `vbscript:`,
//!    `data:`) links point to `#`.
//! 8. Tables are wrapped in a horizontally scrolling box.
//! 9. pulldown-cmark's HTML writer turns the rewritten stream into HTML.

use std::collections::HashSet;
use std::fmt::Write;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Tag, TagEnd};
use serde::Serialize;

use super::highlight::{self, Lang, escape_into};
use super::markdown;
use super::model::{self, Heading, RefTracker};

/// One entry of a page's table of contents.
#[derive(Clone, Debug, Serialize)]
pub struct TocEntry {
    /// 2 or 3.
    pub level: u8,
    /// The heading's anchor id.
    pub id: String,
    /// The heading's plain text.
    pub text: String,
    /// The exercise id when the heading is an exercise or scenario.
    pub exercise: Option<String>,
}

/// A rendered page body.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The page body HTML.
    pub html: String,
    /// H2 and H3 headings in order.
    pub toc: Vec<TocEntry>,
}

/// Renders `text`. `doc_dir` is the page's folder relative to the curriculum
/// root (`""` for sections), against which relative links resolve.
pub fn render(text: &str, doc_dir: &str) -> Rendered {
    let mut r = Renderer {
        doc_dir,
        events: Vec::new(),
        toc: Vec::new(),
        ids: HashSet::new(),
        tracker: RefTracker::default(),
        section_number: None,
        current_part: None,
        card: None,
    };
    let mut parser = markdown::parser(text);
    while let Some(event) = parser.next() {
        r.tracker.observe(&event);
        match event {
            Event::Start(Tag::Heading { level, id, .. }) => {
                let inner = collect_until_end(&mut parser, &mut r.tracker);
                r.heading(level, id.map(|s| s.to_string()), inner);
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let mut code = String::new();
                for e in parser.by_ref() {
                    match e {
                        Event::Text(t) => code.push_str(&t),
                        Event::End(TagEnd::CodeBlock) => break,
                        _ => {}
                    }
                }
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                r.code_block(&info, &code);
            }
            Event::Rule => {
                r.close_card();
                r.events.push(Event::Rule);
            }
            other => r.inline(other),
        }
    }
    r.close_card();
    let mut html = String::with_capacity(text.len() * 2);
    pulldown_cmark::html::push_html(&mut html, r.events.into_iter());
    Rendered { html, toc: r.toc }
}

/// An open exercise card.
struct Card {
    id: String,
}

struct Renderer<'a> {
    doc_dir: &'a str,
    events: Vec<Event<'a>>,
    toc: Vec<TocEntry>,
    ids: HashSet<String>,
    tracker: RefTracker,
    section_number: Option<u32>,
    current_part: Option<char>,
    card: Option<Card>,
}

/// The events inside a heading (its inline content), up to its end tag.
fn collect_until_end<'a>(
    parser: &mut pulldown_cmark::Parser<'a>,
    tracker: &mut RefTracker,
) -> Vec<Event<'a>> {
    let mut inner = Vec::new();
    for e in parser.by_ref() {
        tracker.observe(&e);
        if let Event::End(TagEnd::Heading(_)) = e {
            break;
        }
        inner.push(e);
    }
    inner
}

impl<'a> Renderer<'a> {
    /// Steps 2, 6, 7, 8: everything that is not a heading, code block or rule.
    fn inline(&mut self, event: Event<'a>) {
        match event {
            Event::Html(t) | Event::InlineHtml(t) => self.events.push(Event::Text(t)),
            Event::Start(Tag::HtmlBlock) => self
                .events
                .push(Event::Html("<div class=\"raw-html\">".into())),
            Event::End(TagEnd::HtmlBlock) => self.events.push(Event::Html("</div>\n".into())),
            e @ Event::Start(Tag::Link { .. } | Tag::Image { .. }) => {
                let e = self.link(e);
                self.events.push(e);
            }
            Event::Code(code) => match self.tracker.file_ref(&code) {
                Some(_) => {
                    let html = self.file_ref_html(&code);
                    self.events.push(Event::Html(html.into()));
                }
                None => self.events.push(Event::Code(code)),
            },
            Event::Start(Tag::Table(align)) => {
                self.events
                    .push(Event::Html("<div class=\"table-wrap\">".into()));
                self.events.push(Event::Start(Tag::Table(align)));
            }
            Event::End(TagEnd::Table) => {
                self.events.push(Event::End(TagEnd::Table));
                self.events.push(Event::Html("</div>\n".into()));
            }
            other => self.events.push(other),
        }
    }

    /// Step 7 for a link or image start (other events pass unchanged).
    fn link(&self, event: Event<'a>) -> Event<'a> {
        let target = |dest: CowStr<'a>| -> CowStr<'a> {
            if is_script_url(&dest) {
                "#".into()
            } else {
                resolve_link(&dest, self.doc_dir).map_or(dest, CowStr::from)
            }
        };
        match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: target(dest_url),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: target(dest_url),
                title,
                id,
            }),
            other => other,
        }
    }

    /// Steps 3 and 4.
    fn heading(&mut self, level: HeadingLevel, explicit_id: Option<String>, inner: Vec<Event<'a>>) {
        let text = plain_text(&inner);
        let kind = model::classify(level, &text);
        if level <= HeadingLevel::H3 {
            self.close_card();
        }
        let mut inner_html = String::new();
        let inner: Vec<Event<'a>> = inner
            .into_iter()
            .map(|e| match e {
                Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
                other => self.link(other),
            })
            .collect();
        pulldown_cmark::html::push_html(&mut inner_html, inner.into_iter());
        let level_n = level as u8;
        match kind {
            Heading::Section { number, .. } => {
                self.section_number = Some(number);
                let id = self.unique_id(explicit_id.unwrap_or_else(|| "top".into()));
                let id = attr(&id);
                let html = format!("<h1 id=\"{id}\" class=\"lesson-title\">{inner_html}</h1>\n");
                self.events.push(Event::Html(html.into()));
            }
            Heading::Exercise { id: ex, title, .. } => {
                self.open_card(&ex, "Exercise", &title, explicit_id, &text);
            }
            Heading::Scenario { title } => {
                // The enclosing part (H2), as in the model: an exercise's id
                // does not change it.
                let ex = model::scenario_id(self.section_number, self.current_part);
                self.open_card(&ex, "Scenario", &title, explicit_id, &text);
            }
            Heading::Part {
                letter: Some(letter),
                ..
            } if level == HeadingLevel::H2 => {
                self.current_part = Some(letter);
                let id = self.unique_id(explicit_id.unwrap_or_else(|| slugify(&text)));
                let id_attr = attr(&id);
                let html = format!(
                    "<h2 id=\"{id_attr}\" class=\"part\" data-part=\"{letter}\"><a class=\"anchor\" href=\"#{id_attr}\" aria-hidden=\"true\">#</a>{inner_html}</h2>\n"
                );
                self.toc.push(TocEntry {
                    level: 2,
                    id,
                    text,
                    exercise: None,
                });
                self.events.push(Event::Html(html.into()));
            }
            _ => {
                if level == HeadingLevel::H2 {
                    // `## Key Takeaways` and other H2s end the current part.
                    self.current_part = None;
                }
                let id = self.unique_id(explicit_id.unwrap_or_else(|| slugify(&text)));
                let id_attr = attr(&id);
                let html = format!(
                    "<h{level_n} id=\"{id_attr}\"><a class=\"anchor\" href=\"#{id_attr}\" aria-hidden=\"true\">#</a>{inner_html}</h{level_n}>\n"
                );
                if level_n == 2 || level_n == 3 {
                    self.toc.push(TocEntry {
                        level: level_n,
                        id,
                        text,
                        exercise: None,
                    });
                }
                self.events.push(Event::Html(html.into()));
            }
        }
    }

    fn open_card(
        &mut self,
        ex: &str,
        label: &str,
        title: &str,
        explicit_id: Option<String>,
        text: &str,
    ) {
        let id = self.unique_id(explicit_id.unwrap_or_else(|| format!("exercise-{}", slugify(ex))));
        let mut html = String::new();
        let ex_attr = attr(ex);
        let id_attr = attr(&id);
        let _ = write!(
            html,
            "<section class=\"exercise-card\" id=\"{id_attr}\" data-exercise=\"{ex_attr}\">\n\
             <header class=\"exercise-head\">\
             <div class=\"exercise-meta\"><span class=\"exercise-kind\">{label}</span> <span class=\"exercise-id\">{ex_attr}</span> \
             <span class=\"badge\" data-exercise-status=\"{ex_attr}\">not checked</span></div>\
             <h3><a class=\"anchor\" href=\"#{id_attr}\" aria-hidden=\"true\">#</a>"
        );
        escape_into(&mut html, title);
        html.push_str("</h3></header>\n");
        self.toc.push(TocEntry {
            level: 3,
            id,
            text: text.to_string(),
            exercise: Some(ex.to_string()),
        });
        self.events.push(Event::Html(html.into()));
        self.card = Some(Card { id: ex.to_string() });
    }

    fn close_card(&mut self) {
        if let Some(card) = self.card.take() {
            let ex = attr(&card.id);
            let html = format!(
                "<footer class=\"exercise-foot\"><button class=\"btn primary\" type=\"button\" data-check-exercise=\"{ex}\">Check my work</button>\
                 <span class=\"check-result\" data-check-result=\"{ex}\" role=\"status\"></span></footer>\n</section>\n"
            );
            self.events.push(Event::Html(html.into()));
        }
    }

    /// Step 5.
    fn code_block(&mut self, info: &str, code: &str) {
        let mut html = String::with_capacity(code.len() * 3);
        match Lang::from_info(info) {
            Some(lang) => {
                let (name, label) = match lang {
                    Lang::Sql => ("sql", "SQL"),
                    Lang::Bash => ("bash", "Shell"),
                    Lang::Python => ("python", "Python"),
                };
                let _ = write!(
                    html,
                    "<div class=\"code-block\" data-lang=\"{name}\"><div class=\"code-toolbar\"><span class=\"code-lang\">{label}</span>"
                );
                if lang == Lang::Sql {
                    let ex = self.card.as_ref().map(|c| attr(&c.id));
                    let ex_attr = ex
                        .map(|e| format!(" data-exercise=\"{e}\""))
                        .unwrap_or_default();
                    let _ = write!(
                        html,
                        "<button class=\"btn btn-sm run-sql\" type=\"button\" data-run-sql{ex_attr} title=\"Run in my console\">▶ Run</button>"
                    );
                }
                let _ = writeln!(
                    html,
                    "<button class=\"btn btn-sm copy-code\" type=\"button\" data-copy-code>Copy</button></div><pre class=\"code lang-{name}\"><code>{}</code></pre></div>",
                    highlight::highlight(code, lang)
                );
            }
            None => {
                // Diagrams and plain text: verbatim, monospace, no wrapping.
                let class = if info.trim().is_empty() {
                    "diagram".to_string()
                } else {
                    format!(
                        "code lang-{}",
                        attr(info.split_whitespace().next().unwrap_or(""))
                    )
                };
                let _ = write!(html, "<pre class=\"{class}\"><code>");
                escape_into(&mut html, code);
                html.push_str("</code></pre>\n");
            }
        }
        self.events.push(Event::Html(html.into()));
    }

    fn file_ref_html(&self, path: &str) -> String {
        let mut html = String::new();
        let p = attr(path);
        let _ = write!(
            html,
            "<span class=\"file-ref\"><a href=\"/files/{}\"><code>{p}</code></a>",
            url_path(path)
        );
        if path.ends_with(".sql") {
            let ex = self
                .card
                .as_ref()
                .map(|c| format!(" data-exercise=\"{}\"", attr(&c.id)))
                .unwrap_or_default();
            let _ = write!(
                html,
                " <button class=\"btn btn-sm run-file\" type=\"button\" data-run-file=\"{p}\"{ex}>▶ Run this file in my sandbox</button>"
            );
        }
        html.push_str("</span>");
        html
    }

    fn unique_id(&mut self, base: String) -> String {
        let mut id = base.clone();
        let mut n = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// The plain text of inline events.
fn plain_text(events: &[Event<'_>]) -> String {
    let mut s = String::new();
    for e in events {
        match e {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                s.push_str(t)
            }
            Event::SoftBreak | Event::HardBreak => s.push(' '),
            _ => {}
        }
    }
    s
}

/// A URL fragment from heading text: lowercase letters and digits joined by `-`.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut dash = false;
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.extend(ch.to_lowercase());
        } else {
            dash = true;
        }
    }
    if slug.is_empty() {
        "section".into()
    } else {
        slug
    }
}

/// Escapes text for an attribute value.
fn attr(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    escape_into(&mut s, text);
    s
}

/// Percent-encodes what must not appear raw in a URL path (keeps `/`).
fn url_path(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

/// Rewrites a relative link: a section file at the curriculum root becomes
/// `/sections/<slug>`, anything else `/files/<path>`. Absolute URLs,
/// fragments and links leaving the curriculum root are left alone (`None`).
pub fn resolve_link(dest: &str, doc_dir: &str) -> Option<String> {
    if dest.is_empty() || dest.starts_with('#') || dest.starts_with('/') || dest.contains(':') {
        return None;
    }
    let (path, frag) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let mut parts: Vec<&str> = doc_dir.split('/').filter(|p| !p.is_empty()).collect();
    for piece in path.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    let mut out = if parts.len() == 1 && is_section_file(&joined) {
        format!("/sections/{}", joined.trim_end_matches(".md"))
    } else {
        format!("/files/{}", url_path(&joined))
    };
    if let Some(f) = frag {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// A link that would run script when followed (`javascript:`, `vbscript:`,
/// `data:`), however it is cased or spaced: such links point to `#` instead.
fn is_script_url(dest: &str) -> bool {
    let scheme: String = dest
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|s| scheme.starts_with(s))
}

/// `14-postgresql-production-labs.md`: digits, a dash, `.md`.
pub fn is_section_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".md") else {
        return false;
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (stem.len() == digits || stem.as_bytes()[digits] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_to_routes() {
        assert_eq!(
            resolve_link("15-elastic.md", "").as_deref(),
            Some("/sections/15-elastic")
        );
        assert_eq!(
            resolve_link("15-elastic.md#part-b", "").as_deref(),
            Some("/sections/15-elastic#part-b")
        );
        assert_eq!(
            resolve_link("practice/x/solutions/a.md", "").as_deref(),
            Some("/files/practice/x/solutions/a.md")
        );
        assert_eq!(
            resolve_link("../../../14-pg.md", "practice/x/solutions").as_deref(),
            Some("/sections/14-pg")
        );
        assert_eq!(
            resolve_link("b.md", "practice/x").as_deref(),
            Some("/files/practice/x/b.md")
        );
        assert_eq!(resolve_link("../../etc/passwd", ""), None);
        assert_eq!(resolve_link("https://postgresql.org", ""), None);
        assert_eq!(resolve_link("#top", ""), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("PART A — CONCEPT EXPLANATION"),
            "part-a-concept-explanation"
        );
        assert_eq!(
            slugify("Indexes — The `Performance` Lever!"),
            "indexes-the-performance-lever"
        );
        assert_eq!(slugify("¹²"), "¹²");
        assert_eq!(slugify("—"), "section");
    }

    #[test]
    fn raw_html_is_escaped_everywhere() {
        let out = render(
            "<script>alert(1)</script>\n\nText <b>bold</b>\n\n## Head <i>x</i>\n",
            "",
        );
        assert!(!out.html.contains("<script>"), "{}", out.html);
        assert!(!out.html.contains("<b>"), "{}", out.html);
        assert!(!out.html.contains("<i>"), "{}", out.html);
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
    }

    #[test]
    fn cards_close_and_run_buttons_carry_the_exercise() {
        let md = "## PART B — X\n\n### Exercise 14.B.1 — One\n\n```sql\nselect 1;\n```\n\n### Concept\n\n```sql\nselect 2;\n```\n";
        let out = render(md, "");
        assert_eq!(
            out.html.matches("<section class=\"exercise-card\"").count(),
            1
        );
        assert_eq!(out.html.matches("</section>").count(), 1);
        assert!(
            out.html.contains("data-run-sql data-exercise=\"14.B.1\""),
            "{}",
            out.html
        );
        assert!(
            out.html.contains("data-run-sql title"),
            "a run button outside a card has no exercise: {}",
            out.html
        );
        let close = out.html.find("</section>").expect("closed");
        let concept = out.html.find("id=\"concept\"").expect("concept heading");
        assert!(close < concept);
    }
}
