//! Fuzzing on the stable toolchain: property tests (proptest) over the
//! parsers that read what authors and learners type, each stating "never
//! panics, and this property holds":
//!
//! - `split`: the SQL statement splitter (`console::split`);
//! - `course`: the curriculum markdown model and renderer;
//! - `explain`: the EXPLAIN JSON parser, psql text and plan view;
//! - `checks`: the checks sidecar (TOML) parser;
//! - `csv`: the learners CSV import.
//!
//! Inputs are random bytes (as lossy UTF-8), structured generators of the
//! format's pieces, and mutations of seeds. Seeds are the committed corpus
//! under `tests/fixtures/fuzz/<target>/` plus the project's real files
//! (course content, plan fixtures); every corpus file is also run as a
//! regression case on every run (`*_corpus` tests), which is where a failing
//! input found by a long run is added.
//!
//! Cases per property: `PGLAB_FUZZ_CASES` (default 20000: about 20 s for
//! the whole binary in a debug build on two cores); raise it for a long local
//! run, e.g. `PGLAB_FUZZ_CASES=500000 cargo test --test fuzz`. Failure
//! persistence is off: proptest prints the minimal failing input, which goes
//! into the corpus. cargo-fuzz (libFuzzer) would need a nightly toolchain,
//! which CI does not have.
//!
//! The splitter's API may change: [`split_target::check`] is the one place
//! that calls it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn cases() -> u32 {
    std::env::var("PGLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files under `dir` (relative to the repository, recursively) whose
/// names end in `ext`, sorted.
fn files_in(dir: &str, ext: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, ext, out);
            } else if path.to_string_lossy().ends_with(ext) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), ext, &mut files);
    files.sort();
    files
}

/// The committed corpus of `target` (any extension).
fn corpus(target: &str) -> Vec<(PathBuf, String)> {
    let files = files_in(&format!("tests/fixtures/fuzz/{target}"), "");
    assert!(!files.is_empty(), "no corpus for {target}");
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

/// Seeds for mutation: the corpus plus real files of the project.
fn seeds(target: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let mut all: Vec<String> = corpus(target).into_iter().map(|(_, t)| t).collect();
    for (dir, ext) in extra {
        for p in files_in(dir, ext) {
            all.push(std::fs::read_to_string(p).unwrap());
        }
    }
    all
}

/// Random bytes read as lossy UTF-8.
fn lossy_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..max)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Text made of pieces of a format (and a little noise), concatenated.
fn pieces(list: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => prop::sample::select(list).prop_map(str::to_string),
        1 => "[a-z_0-9]{1,8}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

/// A seed with byte-level edits: cut, insert a piece, duplicate a range,
/// delete a range; kept on char boundaries.
fn mutated(seeds: Vec<String>, list: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edit = (
        0..4u8,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(list),
    );
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit, 1..8),
    )
        .prop_map(|(seed, edits)| {
            let mut s = seed;
            for (kind, a, b, piece) in edits {
                let at = floor_boundary(&s, a.index(s.len() + 1));
                let to = floor_boundary(&s, b.index(s.len() + 1));
                let (lo, hi) = (at.min(to), at.max(to));
                match kind {
                    0 => s.truncate(at),
                    1 => s.insert_str(at, piece),
                    2 => {
                        let dup = s[lo..floor_boundary(&s, hi.min(lo + 512))].to_string();
                        s.insert_str(hi, &dup);
                    }
                    _ => s.replace_range(lo..hi, ""),
                }
            }
            s
        })
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

// ---------------------------------------------------------------------------
// 1. The SQL statement splitter.
// ---------------------------------------------------------------------------

mod split_target {
    use super::*;
    use pglab::console::split::{ItemKind, split};

    pub const PIECES: &[&str] = &[
        "select 1",
        " ",
        "\n",
        "\r\n",
        "\t",
        "\x0c",
        ";",
        ";;",
        "'",
        "''",
        "'a;b'",
        "E'",
        "e'",
        "\\",
        "\\'",
        "E'it\\'s;'",
        "\"",
        "\"a;\"\"b\"",
        "$$",
        "$$;$$",
        "$tag$",
        "$tag$ ; $tag$",
        "$t",
        "$1",
        "a$b$",
        "$é$",
        "/*",
        "*/",
        "/* x; /* y; */ z */",
        "--",
        "-- c;\n",
        "(",
        ")",
        "CREATE",
        "create or replace",
        " FUNCTION ",
        " procedure ",
        "BEGIN",
        " ATOMIC ",
        "END",
        "CASE",
        "begin atomic select 1; end",
        "\n\\dt",
        "\n\\d+ t\n",
        "\n\\g\n",
        "\\g",
        "\n  \\x\n",
        "é",
        "😀",
        "\u{feff}",
        "\0",
        "\u{b}",
        "\u{a0}",
        "\u{3000}",
    ];

    /// The whole property; the one place that calls the splitter.
    pub fn check(src: &str) {
        let items = split(src);
        let mut rebuilt = String::new();
        let mut end = 0;
        let mut after_statement = false;
        for it in &items {
            assert!(
                it.offset >= end,
                "{src:?}: item at {} overlaps the one before",
                it.offset
            );
            let text_end = it.offset + it.text.len();
            assert_eq!(
                src.get(it.offset..text_end),
                Some(it.text.as_str()),
                "{src:?}: item text is not the input's slice at its offset"
            );
            // Trimmed of exactly the whitespace the lexer skips, but for a
            // query sent by a mid-line backslash command (`select 1 \g`),
            // which keeps the spaces before it as psql's buffer does.
            let mid_line = src[text_end..].starts_with('\\');
            let trimmed = it.text.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
            assert!(
                !trimmed.is_empty() && (mid_line || trimmed == it.text),
                "{src:?}: {it:?}"
            );
            assert_eq!(it.char_offset, src[..it.offset].chars().count(), "{src:?}");
            assert_eq!(
                it.line,
                src[..it.offset].matches('\n').count() + 1,
                "{src:?}"
            );
            // Between items only what the lexer skips, and the plain `\g`
            // that sent the statement before it (alone it is an item).
            let gap = &src[end..it.offset];
            assert!(
                split(gap)
                    .iter()
                    .all(|g| g.kind == ItemKind::Meta && g.text == "\\g" && after_statement),
                "{src:?}: SQL left between items: {gap:?}"
            );
            after_statement = it.kind == ItemKind::Statement;
            rebuilt.push_str(gap);
            rebuilt.push_str(&it.text);
            end = text_end;
            match it.kind {
                ItemKind::Meta => {
                    assert!(
                        it.text.starts_with('\\') && !it.text.contains('\n'),
                        "{it:?}"
                    );
                }
                ItemKind::Statement if !it.text.starts_with('\\') => {
                    let again = split(&it.text);
                    assert!(
                        again.len() == 1
                            && again[0].text == trimmed
                            && again[0].kind == ItemKind::Statement,
                        "{src:?}: statement {:?} splits again into {again:?}",
                        it.text
                    );
                }
                ItemKind::Statement => {}
            }
        }
        let tail = &src[end..];
        assert!(
            split(tail)
                .iter()
                .all(|g| g.kind == ItemKind::Meta && g.text == "\\g" && after_statement),
            "{src:?}: SQL left after the last item: {tail:?}"
        );
        rebuilt.push_str(tail);
        assert_eq!(rebuilt, src);
        assert_eq!(
            split(&format!("{src}\n")),
            items,
            "{src:?}: a final newline changes the split"
        );
    }

    #[test]
    fn split_corpus() {
        for (path, text) in corpus("split") {
            eprintln!("{}", path.display());
            check(&text);
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn split_random_bytes(src in lossy_text(300)) {
            check(&src);
        }

        #[test]
        fn split_sql_pieces(src in pieces(PIECES, 40)) {
            check(&src);
        }

        #[test]
        fn split_mutated_seeds(src in mutated(seeds("split", &[("content/practice", ".sql")]), PIECES)) {
            check(&src);
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The curriculum markdown model and renderer.
// ---------------------------------------------------------------------------

mod course_target {
    use super::*;
    use pglab::course::{model, render};

    pub const PIECES: &[&str] = &[
        "# SECTION 14 — Title\n",
        "# ",
        "## ",
        "### ",
        "#### ",
        "\n",
        "\n\n",
        " ",
        "PART A — Concept\n",
        "PART ",
        "Exercise 14.B.1 — Index it\n",
        "Exercise ",
        "14.",
        "B.",
        "2",
        " — ",
        " - ",
        "–",
        "Scenario: outage\n",
        "Key Takeaways\n",
        "{#pinned}",
        "{#a\"b}",
        "{#x .c}",
        "{",
        "}",
        "<script>alert(1)</script>",
        "<SCRIPT src=x>",
        "<img src=x onerror=alert(1)>",
        "<b>",
        "</b>",
        "<div onclick=\"x()\">",
        "</div>",
        "<!-- c -->",
        "<",
        ">",
        "&",
        "&amp;",
        "\"",
        "'",
        "`",
        "`practice/x/a.sql`",
        "**Practice file:** ",
        "**Solution:** ",
        "`a.sql`",
        "```sql\n",
        "```\n",
        "```bash\n",
        "```python\n",
        "```<x>\n",
        "~~~\n",
        "select 1;\n",
        "    indented\n",
        "---\n",
        "***\n",
        "===\n",
        "[link](15-x.md)",
        "[l](../../a b.md#f\"g)",
        "![i](p.png)",
        "[j](javascript:alert(1))",
        "*Next: [Section 15 — X](15-x.md)*",
        "| a | b |\n|---|:-:|\n| 1 | 2 |\n",
        "- [ ] task\n",
        "- [x] done\n",
        "> quote\n",
        "1. item\n",
        "[^1]",
        "[^1]: note\n",
        "~~s~~",
        "\\",
        "é",
        "😀",
        "\0",
    ];

    /// Tags the renderer and pulldown-cmark write; anything else in the output
    /// came from the input unescaped.
    const TAGS: &[&str] = &[
        "a",
        "blockquote",
        "br",
        "button",
        "code",
        "del",
        "div",
        "em",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "img",
        "input",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "span",
        "strong",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    ];

    /// Every `<` of `html` starts a known tag whose attributes are
    /// well-formed `name="value"` pairs (or bare names) with known names: a
    /// quote from the input that closed an attribute early, or a raw tag,
    /// fails here.
    fn assert_markup_is_ours(html: &str, input: &str) {
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{input:?} → {html}");
        let b = html.as_bytes();
        let mut i = 0;
        while let Some(off) = html[i..].find('<') {
            let start = i + off;
            let mut j = start + 1;
            if b.get(j) == Some(&b'/') {
                j += 1;
            }
            let name_start = j;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            let name = &html[name_start..j];
            assert!(
                TAGS.contains(&name),
                "{input:?}: unknown tag <{name}> in {html}"
            );
            loop {
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                match b.get(j) {
                    Some(b'>') => break,
                    Some(b'/') if b.get(j + 1) == Some(&b'>') => {
                        j += 1;
                        break;
                    }
                    Some(c) if c.is_ascii_alphabetic() => {}
                    other => panic!(
                        "{input:?}: bad attribute start {:?} in <{name}> at {j} of {html}",
                        other.map(|c| *c as char)
                    ),
                }
                let attr_start = j;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
                    j += 1;
                }
                let attr = &html[attr_start..j];
                assert!(
                    !attr.to_ascii_lowercase().starts_with("on"),
                    "{input:?}: event handler attribute {attr} in {html}"
                );
                if b.get(j) == Some(&b'=') {
                    assert_eq!(
                        b.get(j + 1),
                        Some(&b'"'),
                        "{input:?}: unquoted {attr} in {html}"
                    );
                    let close = html[j + 2..].find('"').expect("closing quote") + j + 2;
                    let value = &html[j + 2..close];
                    assert!(
                        !value.contains(['<', '>']),
                        "{input:?}: {attr}={value:?} in {html}"
                    );
                    if attr == "href" || attr == "src" {
                        assert!(
                            !value
                                .trim_start()
                                .to_ascii_lowercase()
                                .starts_with("javascript:"),
                            "{input:?}: {attr}={value:?}"
                        );
                    }
                    j = close + 1;
                }
            }
            i = j + 1;
        }
    }

    /// The whole property.
    pub fn check(md: &str) {
        let section = model::parse(md);
        for dir in ["", "practice/curriculum/14-x/solutions"] {
            let page = render::render(md, dir);
            assert_markup_is_ours(&page.html, md);
            let mut ids = std::collections::HashSet::new();
            for entry in &page.toc {
                assert!(
                    ids.insert(entry.id.clone()),
                    "{md:?}: duplicate id {}",
                    entry.id
                );
                let mut attr = String::new();
                pglab::course::highlight::escape_into(&mut attr, &entry.id);
                assert!(
                    page.html.contains(&format!(" id=\"{attr}\"")),
                    "{md:?}: toc id {} is not in the page",
                    entry.id
                );
            }
            let model_ids: Vec<&str> = section.exercises.iter().map(|e| e.id.as_str()).collect();
            let page_ids: Vec<&str> = page
                .toc
                .iter()
                .filter_map(|t| t.exercise.as_deref())
                .collect();
            assert_eq!(
                model_ids, page_ids,
                "{md:?}: the model and the page disagree on exercises"
            );
            let h2 = page.toc.iter().filter(|t| t.level == 2).count();
            assert_eq!(section.parts.len(), h2, "{md:?}: parts vs H2 in the toc");
            let h3 = page.toc.iter().filter(|t| t.level == 3).count();
            assert_eq!(
                section.exercises.len() + section.concepts.len(),
                h3,
                "{md:?}: exercises and concepts vs H3 in the toc"
            );
        }
    }

    #[test]
    fn course_corpus() {
        for (path, text) in corpus("course") {
            eprintln!("{}", path.display());
            check(&text);
        }
        for path in files_in("content", ".md")
            .into_iter()
            .chain(files_in("tests/fixtures", ".md"))
        {
            eprintln!("{}", path.display());
            check(&std::fs::read_to_string(path).unwrap());
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn course_random_bytes(md in lossy_text(300)) {
            check(&md);
        }

        #[test]
        fn course_markdown_pieces(md in pieces(PIECES, 40)) {
            check(&md);
        }

        #[test]
        fn course_mutated_seeds(md in mutated(seeds("course", &[("tests/fixtures/course", ".md")]), PIECES)) {
            check(&md);
        }
    }
}

// ---------------------------------------------------------------------------
// 3. The EXPLAIN JSON parser, psql's text and the plan view.
// ---------------------------------------------------------------------------

mod explain_target {
    use super::*;
    use pglab::explain::{
        AnalyzedPlan, ExplainRequest, compare, explain_output, parse_explain, render_text,
    };
    use serde_json::Value;

    const KEYS: &[&str] = &[
        "Plan",
        "Plans",
        "Node Type",
        "Parent Relationship",
        "Subplan Name",
        "Relation Name",
        "Alias",
        "Schema",
        "Index Name",
        "Filter",
        "Index Cond",
        "Recheck Cond",
        "Hash Cond",
        "Join Filter",
        "Join Type",
        "Strategy",
        "Output",
        "Group Key",
        "Sort Key",
        "Rows Removed by Filter",
        "Rows Removed by Index Recheck",
        "Heap Fetches",
        "Startup Cost",
        "Total Cost",
        "Plan Rows",
        "Plan Width",
        "Actual Startup Time",
        "Actual Total Time",
        "Actual Rows",
        "Actual Loops",
        "Workers Planned",
        "Workers Launched",
        "Workers",
        "Worker Number",
        "Shared Hit Blocks",
        "Shared Read Blocks",
        "Temp Read Blocks",
        "Temp Written Blocks",
        "I/O Read Time",
        "WAL Bytes",
        "Sort Method",
        "Sort Space Used",
        "Sort Space Type",
        "Peak Memory Usage",
        "Hash Buckets",
        "Hash Batches",
        "HashAgg Batches",
        "Disk Usage",
        "Planning",
        "Planning Time",
        "Execution Time",
        "Triggers",
        "Trigger Name",
        "Relation",
        "Time",
        "Calls",
        "Settings",
        "JIT",
        "Functions",
        "Options",
        "Timing",
        "Generation",
        "Inlining",
        "Optimization",
        "Emission",
        "Total",
        "Query Identifier",
        "Cache Hits",
        "Cache Misses",
        "Parallel Aware",
        "Async Capable",
        "Scan Direction",
    ];

    pub const STATEMENTS: &[&str] = &[
        "EXPLAIN SELECT 1",
        "explain analyze verbose select 1",
        "EXPLAIN (ANALYZE, BUFFERS, SETTINGS, WAL, VERBOSE) SELECT 1;",
        "EXPLAIN (COSTS off, TIMING false, SUMMARY on) select 1",
        "explain (format json) select 1",
        "explain (format yaml) select 1",
        "explain (analyze, format xml) select 1",
        "explain (generic_plan) select $1",
    ];

    fn requests() -> Vec<ExplainRequest> {
        STATEMENTS
            .iter()
            .map(|s| parse_explain(s).expect(s))
            .collect()
    }

    /// The whole property for a document: a plan, or a clear error; the same
    /// answer from every entry point.
    pub fn check(json: &str) {
        let parsed = AnalyzedPlan::parse(json);
        match &parsed {
            Ok(plan) => {
                let html = plan.html_with_prefix("fz-");
                assert!(html.contains("plan-view"), "{json:?}: {html}");
                assert!(
                    !html.to_ascii_lowercase().contains("<script"),
                    "{json:?}: {html}"
                );
                for req in requests() {
                    let _ = render_text(&plan.plan, &req.options);
                }
                let _ = compare::compare(plan, plan);
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("the plan") || msg.starts_with("the EXPLAIN JSON"),
                    "{json:?}: unclear error {msg:?}"
                );
            }
        }
        for req in requests() {
            let out = explain_output(&req, json);
            assert_eq!(out.is_ok(), parsed.is_ok(), "{json:?}: {:?}", req.json_sql);
            if let Ok(out) = out {
                assert!(out.plan_html.is_some() && out.no_view.is_none());
                if req.run_as_written {
                    assert!(out.rows.is_empty());
                } else {
                    assert!(!out.rows.is_empty());
                }
            }
        }
    }

    /// `parse_explain` on any statement: no panic, and an error position in
    /// the rewritten statement maps back to the same character the learner wrote.
    pub fn check_statement(sql: &str) {
        let Some(req) = parse_explain(sql) else {
            return;
        };
        assert!(
            !req.query.is_empty() && sql.contains(&req.query),
            "{sql:?}: {req:?}"
        );
        let Some(json_sql) = req.json_sql.as_deref() else {
            assert!(req.run_as_written && req.options.analyze, "{sql:?}");
            return;
        };
        assert!(
            json_sql.starts_with("EXPLAIN (") && json_sql.ends_with(&req.query),
            "{json_sql:?}"
        );
        let mine: Vec<char> = json_sql.chars().collect();
        let theirs: Vec<char> = sql.chars().collect();
        for p in 1..=mine.len() {
            if let Some(lp) = req.learner_position(p) {
                assert_eq!(
                    theirs.get(lp - 1),
                    mine.get(p - 1),
                    "{sql:?}: position {p} of {json_sql:?} maps to {lp}"
                );
            }
        }
        // "at end of input" points just past the query.
        let end = req.learner_position(mine.len() + 1);
        assert!(
            end.is_some_and(|e| e <= theirs.len() + 1),
            "{sql:?}: end maps to {end:?}"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            prop::sample::select(KEYS).prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(8, 128, 8, |inner| {
            let key = prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => ".{0,6}"];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// The real plans of the project and the committed corpus.
    fn plans() -> Vec<String> {
        let mut all = seeds("explain", &[("tests/fixtures/plans", ".json")]);
        all.retain(|t| serde_json::from_str::<Value>(t).is_ok());
        all
    }

    /// The `n`-th value of `v` in pre-order.
    fn nth_mut<'v>(v: &'v mut Value, n: &mut usize) -> Option<&'v mut Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        match v {
            Value::Array(a) => a.iter_mut().find_map(|c| nth_mut(c, n)),
            Value::Object(o) => o.values_mut().find_map(|c| nth_mut(c, n)),
            _ => None,
        }
    }

    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Number(f64),
        RemoveKey,
        Nest,
        Replace(Value),
        DuplicateChild,
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            prop_oneof![
                Just(0.0),
                Just(-1.0),
                Just(1e308),
                Just(-1e308),
                Just(f64::MIN_POSITIVE),
                Just(9.007_199_254_740_993e15),
                Just(0.5),
                any::<f64>(),
            ]
            .prop_map(Mutation::Number),
            Just(Mutation::RemoveKey),
            Just(Mutation::Nest),
            json_value().prop_map(Mutation::Replace),
            Just(Mutation::DuplicateChild),
        ]
    }

    fn apply(doc: &mut Value, at: prop::sample::Index, m: &Mutation) {
        let mut n = at.index(count(doc));
        let Some(target) = nth_mut(doc, &mut n) else {
            return;
        };
        match m {
            Mutation::Number(f) => {
                if let Some(num) = serde_json::Number::from_f64(*f) {
                    *target = Value::Number(num);
                } else {
                    *target = Value::from(i64::MIN);
                }
            }
            Mutation::RemoveKey => match target {
                Value::Object(o) if !o.is_empty() => {
                    let k = o.keys().nth(at.index(o.len())).cloned().unwrap();
                    o.remove(&k);
                }
                Value::Array(a) if !a.is_empty() => {
                    a.remove(at.index(a.len()));
                }
                _ => *target = Value::Null,
            },
            Mutation::Nest => *target = Value::Array(vec![target.take()]),
            Mutation::Replace(v) => *target = v.clone(),
            Mutation::DuplicateChild => match target {
                Value::Array(a) if !a.is_empty() => {
                    let c = a[at.index(a.len())].clone();
                    a.push(c);
                }
                Value::Object(o) => {
                    let copy = Value::Object(o.clone());
                    o.insert("Plans".into(), Value::Array(vec![copy]));
                }
                _ => {}
            },
        }
    }

    /// A plan nested `depth` levels deep (built as text: a deep
    /// `serde_json::Value` would overflow the stack when dropped).
    fn deep_plan(depth: usize) -> String {
        let open = r#"{"Node Type": "Nested Loop", "Plans": ["#;
        format!(
            r#"[{{"Plan": {}{{"Node Type": "Result", "Total Cost": 1.0}}{}}}]"#,
            open.repeat(depth),
            "]}".repeat(depth)
        )
    }

    #[test]
    fn explain_corpus() {
        for (path, text) in corpus("explain") {
            eprintln!("{}", path.display());
            check(&text);
            check_statement(&text);
        }
        for depth in [0, 1, 30, 61, 62, 63, 64, 100, 1000, 100_000] {
            eprintln!("a plan {depth} levels deep");
            check(&deep_plan(depth));
        }
        let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        check(&deep_array);
        for s in STATEMENTS {
            check_statement(s);
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn explain_random_bytes(json in lossy_text(200)) {
            check(&json);
        }

        #[test]
        fn explain_random_json(v in json_value()) {
            check(&v.to_string());
            check(&serde_json::json!([{"Plan": v}]).to_string());
        }

        #[test]
        fn explain_mutated_plans(
            seed in prop::sample::select(plans()),
            edits in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..6),
        ) {
            let mut doc: Value = serde_json::from_str(&seed).unwrap();
            for (at, m) in &edits {
                apply(&mut doc, *at, m);
            }
            check(&doc.to_string());
        }

        #[test]
        fn explain_truncated_plans(seed in prop::sample::select(plans()), at in any::<prop::sample::Index>()) {
            let cut = floor_boundary(&seed, at.index(seed.len()));
            let head = &seed[..cut];
            check(head);
            if !seed[cut..].trim().is_empty() {
                let err = AnalyzedPlan::parse(head).err().map(|e| e.to_string());
                prop_assert!(
                    err.as_deref().is_some_and(|e| e.starts_with("the plan is not valid EXPLAIN JSON")),
                    "{head:?} → {err:?}"
                );
            }
        }

        #[test]
        fn explain_statements(sql in pieces(&[
            "EXPLAIN", "explain", " ", "(", ")", ",", "ANALYZE", "analyse", "VERBOSE", "COSTS",
            "BUFFERS", "FORMAT", "JSON", "yaml", "XML", "TEXT", "true", "off", "0", "'x'", "'",
            "/* c */", "-- c\n", "\n", ";", "select 1", "é", "😀", "\t", "generic_plan",
        ], 16)) {
            check_statement(&sql);
        }
    }
}

// ---------------------------------------------------------------------------
// 4. The checks sidecar (TOML).
// ---------------------------------------------------------------------------

mod checks_target {
    use super::*;
    use pglab::course::checks::ChecksFile;
    use toml::{Table, Value};

    pub const PIECES: &[&str] = &[
        "[[exercise]]\n",
        "id = \"14.B.1\"\n",
        "[[exercise.check]]\n",
        "name = \"n\"\n",
        "sql = \"select true\"\n",
        "message = \"m\"\n",
        "kind = \"learner_result\"\n",
        "ordered = true\n",
        "expect_rows = 3\n",
        "min_rows = -1\n",
        "same_as = \"select 1\"\n",
        "plan_has_no_seq_scan_on = \"t\"\n",
        "database = \"copy\"\n",
        "before = \"select 1\"\n",
        "before = [\"a\", \"b\"]\n",
        "before = [1, {x = 1}]\n",
        "[[exercise.solution]]\n",
        "file = \"practice/a.sql\"\n",
        "session = \"T1\"\n",
        "background = true\n",
        "allow_error = true\n",
        "shell = \"psql\"\n",
        "restart = true\n",
        "[[block]]\n",
        "contains = \"lock\"\n",
        "expect_sqlstate = \"40P01\"\n",
        "skip = \"why\"\n",
        "unknown = 1\n",
        "[exercise]\n",
        "[[exercise.check.x]]\n",
        "'''",
        "\"\"\"",
        "\"",
        "=",
        "\n",
        "[",
        "]",
        "{",
        "}",
        ",",
        "#",
        "\\u0000",
        "\\",
        "1979-05-27T07:32:00Z",
        "inf",
        "nan",
        "9223372036854775808",
        "é",
    ];

    /// The whole property on any text: no panic, an error says something,
    /// and what parses serializes back to text that parses to the same.
    pub fn check(text: &str) {
        match ChecksFile::parse(text) {
            Ok(file) => {
                let again = toml::to_string(&file).expect("serialize");
                let reread = ChecksFile::parse(&again)
                    .unwrap_or_else(|e| panic!("{text:?} → {again:?} does not parse again: {e}"));
                assert_eq!(toml::to_string(&reread).unwrap(), again, "{text:?}");
            }
            Err(e) => assert!(!e.trim().is_empty(), "{text:?}: empty error"),
        }
    }

    /// Calls `f` on the `n`-th table of a parsed sidecar in pre-order: the
    /// root, each `[[exercise]]`, `[[exercise.check]]`, `[[exercise.solution]]`,
    /// `[[block]]`. Returns whether there was one.
    fn with_table(t: &mut Table, n: &mut usize, f: &mut dyn FnMut(&mut Table)) -> bool {
        if *n == 0 {
            f(t);
            return true;
        }
        *n -= 1;
        for (_, v) in t.iter_mut() {
            if let Value::Array(a) = v {
                for item in a.iter_mut() {
                    if let Value::Table(inner) = item
                        && with_table(inner, n, f)
                    {
                        return true;
                    }
                }
            }
        }
        false
    }

    fn count_tables(t: &Table) -> usize {
        1 + t
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_table)
            .map(count_tables)
            .sum::<usize>()
    }

    fn sidecars() -> Vec<String> {
        let mut all = seeds(
            "checks",
            &[
                ("content", ".checks.toml"),
                ("tests/fixtures", ".checks.toml"),
            ],
        );
        all.retain(|t| ChecksFile::parse(t).is_ok());
        assert!(all.len() >= 3, "valid sidecar seeds");
        all
    }

    fn toml_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::Integer),
            any::<f64>().prop_map(Value::Float),
            ".{0,8}".prop_map(Value::String),
            prop::sample::select(&["learner_result", "40P01", "select true", ""][..])
                .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                    .prop_map(|kv| Value::Table(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn checks_corpus() {
        for (path, text) in corpus("checks") {
            eprintln!("{}", path.display());
            check(&text);
        }
        for text in sidecars() {
            check(&text);
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn checks_random_bytes(text in lossy_text(200)) {
            check(&text);
        }

        #[test]
        fn checks_toml_pieces(text in pieces(PIECES, 30)) {
            check(&text);
        }

        #[test]
        fn checks_mutated_text(text in mutated(sidecars(), PIECES)) {
            check(&text);
        }

        /// Any table of a valid sidecar with a key we do not know is refused,
        /// and the error names the key.
        #[test]
        fn checks_unknown_keys_refused(
            seed in prop::sample::select(sidecars()),
            at in any::<prop::sample::Index>(),
            key in "[a-z][a-z_]{0,10}",
            value in toml_value(),
        ) {
            const KNOWN: &[&str] = &[
                "exercise", "block", "id", "check", "solution", "name", "kind", "sql",
                "message", "before", "expect_rows", "min_rows", "same_as",
                "plan_has_no_seq_scan_on", "database", "ordered", "file", "session",
                "background", "allow_error", "shell", "restart", "contains",
                "expect_sqlstate", "skip",
            ];
            prop_assume!(!KNOWN.contains(&key.as_str()));
            let mut doc: Table = seed.parse().unwrap();
            let mut n = at.index(count_tables(&doc));
            let found = with_table(&mut doc, &mut n, &mut |t| {
                t.insert(key.clone(), value.clone());
            });
            prop_assert!(found);
            let text = toml::to_string(&doc).unwrap();
            let err = ChecksFile::parse(&text).err();
            prop_assert!(
                err.as_deref().is_some_and(|e| e.contains(&format!("unknown field `{key}`"))),
                "{key} accepted or not named: {err:?}"
            );
        }

        /// A valid sidecar with one value replaced by any TOML value: parsed
        /// or refused, never a panic.
        #[test]
        fn checks_values_replaced(
            seed in prop::sample::select(sidecars()),
            at in any::<prop::sample::Index>(),
            key_at in any::<prop::sample::Index>(),
            value in toml_value(),
        ) {
            let mut doc: Table = seed.parse().unwrap();
            let mut n = at.index(count_tables(&doc));
            with_table(&mut doc, &mut n, &mut |t| {
                if !t.is_empty() {
                    let k = t.keys().nth(key_at.index(t.len())).unwrap().clone();
                    t.insert(k, value.clone());
                }
            });
            check(&toml::to_string(&doc).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------
// 5. The learners CSV import.
// ---------------------------------------------------------------------------

mod csv_target {
    use super::*;
    use pglab::auth::{import, password, users};

    pub const PIECES: &[&str] = &[
        "alice",
        "bob.smith",
        "c_d-e",
        "Zoë",
        "x",
        "a",
        "-lead",
        ".dot",
        "ALICE",
        "username",
        "Username",
        "\"quoted\"",
        "\"",
        ",",
        ";",
        "\t",
        ",secret-password",
        ",short",
        ",pass,with,commas",
        ";  spaced password  ",
        "\n",
        "\r\n",
        "\r",
        "\u{feff}",
        "# comment",
        " ",
        "é",
        "😀",
        "\0",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ];

    /// The whole property: accepted rows all have valid, distinct usernames
    /// and valid passwords, in line order; a refusal names a line.
    pub fn check(csv: &str) {
        match import::parse(csv) {
            Ok(rows) => {
                assert!(!rows.is_empty(), "{csv:?}");
                let lines = csv.lines().count();
                let mut last = 0;
                let mut seen = std::collections::HashSet::new();
                for (line, name, pass) in &rows {
                    assert!(*line > last && *line <= lines, "{csv:?}: line {line}");
                    last = *line;
                    let valid = users::parse_username(name)
                        .unwrap_or_else(|e| panic!("{csv:?}: accepted {name:?}: {e}"));
                    assert_eq!(&valid, name, "{csv:?}");
                    assert!(
                        seen.insert(name.to_ascii_lowercase()),
                        "{csv:?}: {name} twice"
                    );
                    if let Some(p) = pass {
                        assert!(password::validate(p).is_ok(), "{csv:?}: password {p:?}");
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("line ") || msg.contains("no usernames"),
                    "{csv:?}: {msg}"
                );
            }
        }
    }

    #[test]
    fn csv_corpus() {
        for (path, text) in corpus("csv") {
            eprintln!("{}", path.display());
            check(&text);
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn csv_random_bytes(csv in lossy_text(200)) {
            check(&csv);
        }

        #[test]
        fn csv_pieces(csv in pieces(PIECES, 30)) {
            check(&csv);
        }

        #[test]
        fn csv_mutated_seeds(csv in mutated(seeds("csv", &[]), PIECES)) {
            check(&csv);
        }
    }
}
