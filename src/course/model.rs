//! The structure of a section file in the curriculum format: its number and
//! title, parts (H2), exercises (H3 `### Exercise 14.B.1 — Title`), concept
//! headings, the scenario, references to lab files and the link to the next
//! section, and its sql code blocks (which `content check --run` plays).
//! `content check` and the lesson page read it; the renderer shares
//! its heading and file-reference rules so both always agree.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Tag, TagEnd};
use serde::Serialize;

use super::markdown;

/// A parsed section (or any markdown page: every field may be empty).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Section {
    /// `14` from `# SECTION 14 — Title`; `None` for pages without that H1.
    pub number: Option<u32>,
    /// The H1 after its dash, or the whole H1, or empty.
    pub title: String,
    /// H2 headings in order (parts and `Key Takeaways`).
    pub parts: Vec<Part>,
    /// Exercises and the scenario, in order.
    pub exercises: Vec<Exercise>,
    /// H3 headings that are neither exercises nor the scenario.
    pub concepts: Vec<String>,
    /// Every lab file referenced by the page, in order.
    pub files: Vec<FileRef>,
    /// The `*Next: [..](15-x.md)*` link.
    pub next: Option<NextLink>,
    /// Fenced code blocks whose language is `sql`, in order.
    pub sql_blocks: Vec<SqlBlock>,
}

/// A fenced code block of the page marked as `sql`.
#[derive(Clone, Debug, Serialize)]
pub struct SqlBlock {
    /// 1-based line of the opening fence in the markdown file.
    pub line: usize,
    /// The block's text, as a learner would copy it.
    pub text: String,
    /// The exercise the block appears in.
    pub exercise: Option<String>,
}

/// One H2.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    /// `A` for `## PART A — CONCEPT EXPLANATION`; `None` for `## Key Takeaways`.
    pub letter: Option<char>,
    pub title: String,
}

/// Whether a unit of practice is a numbered exercise or the part's scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExerciseKind {
    Exercise,
    Scenario,
}

/// One exercise card.
#[derive(Clone, Debug, Serialize)]
pub struct Exercise {
    /// `14.B.1`; a scenario gets `<section>.<part>`, e.g. `14.E`.
    pub id: String,
    pub title: String,
    /// The part letter from the id (`B`), or the enclosing part's.
    pub part: Option<char>,
    pub kind: ExerciseKind,
    /// Lab files referenced inside this exercise.
    pub files: Vec<FileRef>,
}

/// What a lab file reference is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRefKind {
    Practice,
    Solution,
}

/// A lab file path, relative to the curriculum root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRef {
    pub path: String,
    pub kind: FileRefKind,
    /// The exercise the reference appears in.
    pub exercise: Option<String>,
}

/// The link to the next section.
#[derive(Clone, Debug, Serialize)]
pub struct NextLink {
    /// The link text, e.g. `Section 15 — Elasticsearch Practice`.
    pub title: String,
    /// The file named by the link, e.g. `15-elasticsearch-practice.md`.
    pub file: String,
}

/// What a heading means in the curriculum format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heading {
    Section {
        number: u32,
        title: String,
    },
    Part {
        letter: Option<char>,
        title: String,
    },
    Exercise {
        id: String,
        title: String,
        part: Option<char>,
    },
    Scenario {
        title: String,
    },
    Other,
}

/// Classifies a heading by level and plain text.
pub fn classify(level: HeadingLevel, text: &str) -> Heading {
    let text = text.trim();
    match level {
        HeadingLevel::H1 => {
            let Some(rest) = strip_prefix_ci(text, "SECTION ") else {
                return Heading::Other;
            };
            let (num, title) = split_dash(rest).unwrap_or((rest, ""));
            match num.trim().parse() {
                Ok(number) => Heading::Section {
                    number,
                    title: title.trim().to_string(),
                },
                Err(_) => Heading::Other,
            }
        }
        HeadingLevel::H2 => {
            if let Some(rest) = strip_prefix_ci(text, "PART ") {
                let (letter, title) = split_dash(rest).unwrap_or((rest, ""));
                let mut chars = letter.trim().chars();
                if let (Some(c), None) = (chars.next(), chars.next())
                    && c.is_ascii_alphabetic()
                {
                    return Heading::Part {
                        letter: Some(c.to_ascii_uppercase()),
                        title: title.trim().to_string(),
                    };
                }
            }
            Heading::Part {
                letter: None,
                title: text.to_string(),
            }
        }
        HeadingLevel::H3 => {
            if let Some(rest) = strip_prefix_ci(text, "Exercise ") {
                let (id, title) = split_dash(rest).unwrap_or((rest, ""));
                if let Some(part) = exercise_part(id.trim()) {
                    return Heading::Exercise {
                        id: id.trim().to_string(),
                        title: title.trim().to_string(),
                        part,
                    };
                }
            }
            if let Some(rest) = strip_prefix_ci(text, "Scenario") {
                let title = rest.trim_start_matches([':', ' ', '—', '–']).trim();
                return Heading::Scenario {
                    title: title.to_string(),
                };
            }
            Heading::Other
        }
        _ => Heading::Other,
    }
}

/// `14.B.1` → `Some(Some('B'))`; `3.2` → `Some(None)`; not an id → `None`.
fn exercise_part(id: &str) -> Option<Option<char>> {
    let mut pieces = id.split('.');
    let section = pieces.next()?;
    if section.is_empty() || !section.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest: Vec<&str> = pieces.collect();
    if rest.is_empty()
        || rest
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return None;
    }
    let part = rest
        .first()
        .filter(|p| p.len() == 1 && p.as_bytes()[0].is_ascii_alphabetic())
        .map(|p| p.as_bytes()[0].to_ascii_uppercase() as char);
    Some(part)
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits at the first em dash (or en dash, or ` - `), the curriculum's
/// separator between a number and a title.
pub fn split_dash(text: &str) -> Option<(&str, &str)> {
    for sep in ["—", "–", " - "] {
        if let Some((a, b)) = text.split_once(sep) {
            return Some((a, b));
        }
    }
    None
}

/// Tracks `**Practice file:**` / `**Practice files:**` / `**Solution:**`
/// labels so that code spans after them count as lab file references. Code
/// spans starting with `practice/` count anywhere.
#[derive(Default)]
pub struct RefTracker {
    label: Option<(FileRefKind, bool)>,
    in_strong: bool,
    strong_text: String,
    list_depth: usize,
    label_list_depth: Option<usize>,
}

impl RefTracker {
    /// Feeds one event (call for every event, in order).
    pub fn observe(&mut self, event: &Event<'_>) {
        match event {
            Event::Start(Tag::Strong) => {
                self.in_strong = true;
                self.strong_text.clear();
            }
            Event::Text(t) if self.in_strong => self.strong_text.push_str(t),
            Event::End(TagEnd::Strong) => {
                self.in_strong = false;
                let label = self
                    .strong_text
                    .trim()
                    .trim_end_matches(':')
                    .to_ascii_lowercase();
                self.label = match label.as_str() {
                    "practice file" | "lab file" => Some((FileRefKind::Practice, false)),
                    "practice files" | "lab files" => Some((FileRefKind::Practice, true)),
                    "solution" => Some((FileRefKind::Solution, false)),
                    "solutions" | "solution files" => Some((FileRefKind::Solution, true)),
                    _ => self.label,
                };
            }
            Event::Start(Tag::List(_)) => {
                self.list_depth += 1;
                if matches!(self.label, Some((_, true))) && self.label_list_depth.is_none() {
                    self.label_list_depth = Some(self.list_depth);
                }
            }
            Event::End(TagEnd::List(_)) => {
                if self.label_list_depth == Some(self.list_depth) {
                    self.label = None;
                    self.label_list_depth = None;
                }
                self.list_depth = self.list_depth.saturating_sub(1);
            }
            Event::End(TagEnd::Paragraph)
                // A plural label carries over to the list that follows it.
                if matches!(self.label, Some((_, false))) && self.label_list_depth.is_none() => {
                    self.label = None;
                }
            Event::Start(Tag::Heading { .. }) | Event::Rule => {
                self.label = None;
                self.label_list_depth = None;
            }
            _ => {}
        }
    }

    /// Whether the code span `code` (seen now) is a lab file reference.
    pub fn file_ref(&self, code: &str) -> Option<FileRefKind> {
        let path_like = !code.is_empty()
            && !code.contains(char::is_whitespace)
            && code.contains('/')
            && code
                .rsplit('/')
                .next()
                .is_some_and(|name| name.contains('.'))
            && !code.contains("://");
        if !path_like {
            return None;
        }
        match self.label {
            Some((kind, _)) => Some(kind),
            None if code.starts_with("practice/") => Some(if code.contains("/solutions/") {
                FileRefKind::Solution
            } else {
                FileRefKind::Practice
            }),
            None => None,
        }
    }
}

/// Parses a section file.
pub fn parse(text: &str) -> Section {
    let mut section = Section::default();
    let mut tracker = RefTracker::default();
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut current_part: Option<char> = None;
    let mut current_exercise: Option<usize> = None;
    let mut emphasis_text: Option<String> = None;
    let mut link: Option<(String, String)> = None;
    let mut sql_block: Option<SqlBlock> = None;

    for (event, range) in markdown::parser(text).into_offset_iter() {
        tracker.observe(&event);
        match &event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
                if info
                    .split_whitespace()
                    .next()
                    .is_some_and(|lang| lang.eq_ignore_ascii_case("sql")) =>
            {
                sql_block = Some(SqlBlock {
                    line: text[..range.start].matches('\n').count() + 1,
                    text: String::new(),
                    exercise: current_exercise.map(|i| section.exercises[i].id.clone()),
                });
                continue;
            }
            Event::Text(t) if sql_block.is_some() => {
                if let Some(b) = sql_block.as_mut() {
                    b.text.push_str(t);
                }
                continue;
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(b) = sql_block.take() {
                    section.sql_blocks.push(b);
                }
                continue;
            }
            _ => {}
        }
        match &event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((*level, String::new())),
            Event::End(TagEnd::Heading(_)) => {
                let Some((level, text)) = heading.take() else {
                    continue;
                };
                if level <= HeadingLevel::H3 {
                    current_exercise = None;
                }
                match classify(level, &text) {
                    Heading::Section { number, title } => {
                        section.number = Some(number);
                        section.title = title;
                    }
                    Heading::Part { letter, title } => {
                        current_part = letter;
                        section.parts.push(Part { letter, title });
                    }
                    Heading::Exercise { id, title, part } => {
                        current_exercise = Some(section.exercises.len());
                        section.exercises.push(Exercise {
                            id,
                            title,
                            part: part.or(current_part),
                            kind: ExerciseKind::Exercise,
                            files: Vec::new(),
                        });
                    }
                    Heading::Scenario { title } => {
                        current_exercise = Some(section.exercises.len());
                        section.exercises.push(Exercise {
                            id: scenario_id(section.number, current_part),
                            title,
                            part: current_part,
                            kind: ExerciseKind::Scenario,
                            files: Vec::new(),
                        });
                    }
                    Heading::Other if level == HeadingLevel::H1 && section.title.is_empty() => {
                        section.title = text.trim().to_string();
                    }
                    Heading::Other if level == HeadingLevel::H3 => section.concepts.push(text),
                    Heading::Other => {}
                }
            }
            // A heading's text as the renderer reads it (`render::plain_text`):
            // raw HTML is shown as text there, so it is text here too.
            Event::Html(t) | Event::InlineHtml(t) => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push_str(t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push(' ');
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push_str(t);
                }
                if let Some(e) = emphasis_text.as_mut() {
                    e.push_str(t);
                }
                if let Some((_, l)) = link.as_mut() {
                    l.push_str(t);
                }
                if let Event::Code(code) = &event
                    && let Some(kind) = tracker.file_ref(code)
                {
                    let exercise = current_exercise.map(|i| section.exercises[i].id.clone());
                    let file = FileRef {
                        path: code.to_string(),
                        kind,
                        exercise,
                    };
                    if let Some(i) = current_exercise {
                        section.exercises[i].files.push(file.clone());
                    }
                    section.files.push(file);
                }
            }
            Event::Start(Tag::Emphasis) => emphasis_text = Some(String::new()),
            Event::End(TagEnd::Emphasis) => emphasis_text = None,
            Event::Start(Tag::Link { dest_url, .. }) => {
                link = Some((dest_url.to_string(), String::new()))
            }
            Event::End(TagEnd::Link) => {
                let Some((dest, title)) = link.take() else {
                    continue;
                };
                let is_next = emphasis_text
                    .as_deref()
                    .is_some_and(|e| e.trim_start().to_ascii_lowercase().starts_with("next"));
                if is_next && dest.ends_with(".md") && !dest.contains("://") {
                    section.next = Some(NextLink { title, file: dest });
                }
            }
            _ => {}
        }
    }
    section
}

/// A scenario's exercise id: `<section>.<part>` (`14.E`), `<section>.scenario`
/// outside a part, `scenario` on a page without a section number.
pub fn scenario_id(number: Option<u32>, part: Option<char>) -> String {
    match (number, part) {
        (Some(n), Some(p)) => format!("{n}.{p}"),
        (Some(n), None) => format!("{n}.scenario"),
        (None, _) => "scenario".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_curriculum_headings() {
        assert_eq!(
            classify(HeadingLevel::H1, "SECTION 14 — PostgreSQL Production Labs"),
            Heading::Section {
                number: 14,
                title: "PostgreSQL Production Labs".into()
            }
        );
        assert_eq!(
            classify(HeadingLevel::H2, "PART C — INTERMEDIATE PRACTICE"),
            Heading::Part {
                letter: Some('C'),
                title: "INTERMEDIATE PRACTICE".into()
            }
        );
        assert_eq!(
            classify(HeadingLevel::H3, "Exercise 14.B.1 — Run Postgres"),
            Heading::Exercise {
                id: "14.B.1".into(),
                title: "Run Postgres".into(),
                part: Some('B')
            }
        );
        assert_eq!(
            classify(HeadingLevel::H3, "Scenario: Launch week"),
            Heading::Scenario {
                title: "Launch week".into()
            }
        );
        assert_eq!(
            classify(HeadingLevel::H3, "Indexes — The Lever"),
            Heading::Other
        );
        assert_eq!(
            classify(HeadingLevel::H3, "Exercise time — fun"),
            Heading::Other
        );
    }

    #[test]
    fn finds_files_exercises_and_next() {
        let md = "# SECTION 15 — Search\n\n## PART B — BEGINNER PRACTICE\n\n### Exercise 15.B.1 — Index\n\n**Practice file:** `practice/a/b.sql`\n\n**Practice files:**\n- `practice/a/c.json`\n- `practice/a/d.sh`\n\n**Solution:** `practice/a/solutions/s.md`\n\nSee `src/main.rs` for nothing.\n\n---\n\n*Next: [Section 16 — More](16-more.md)*\n";
        let s = parse(md);
        assert_eq!(s.number, Some(15));
        assert_eq!(s.exercises.len(), 1);
        assert_eq!(s.exercises[0].part, Some('B'));
        let paths: Vec<_> = s.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            paths,
            vec![
                ("practice/a/b.sql", FileRefKind::Practice),
                ("practice/a/c.json", FileRefKind::Practice),
                ("practice/a/d.sh", FileRefKind::Practice),
                ("practice/a/solutions/s.md", FileRefKind::Solution),
            ]
        );
        assert_eq!(s.exercises[0].files.len(), 4);
        assert!(s.sql_blocks.is_empty());
        let next = s.next.expect("next link");
        assert_eq!(next.file, "16-more.md");
        assert_eq!(next.title, "Section 16 — More");
    }

    #[test]
    fn finds_sql_blocks_with_their_line_and_exercise() {
        let md = "# SECTION 90 — X\n\n```sql\nselect 1;\n```\n\n## PART B — P\n\n### Exercise 90.B.1 — E\n\n```bash\nls\n```\n\n```SQL title\nselect 2;\nselect 3;\n```\n\n    select 'indented, not fenced';\n";
        let s = parse(md);
        let blocks: Vec<_> = s
            .sql_blocks
            .iter()
            .map(|b| (b.line, b.text.as_str(), b.exercise.as_deref()))
            .collect();
        assert_eq!(
            blocks,
            vec![
                (3, "select 1;\n", None),
                (15, "select 2;\nselect 3;\n", Some("90.B.1")),
            ]
        );
    }
}
