//! The renderer against fixtures of every construct (snapshot tests: run
//! with `UPDATE_SNAPSHOTS=1` to rewrite the expected `.html` files after a
//! deliberate change, then review the diff), plus the curriculum model on a
//! section written for the test and on our own section 14.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use pglab::course::model::{self, ExerciseKind, FileRefKind};
use pglab::course::render;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/course")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

#[test]
fn rendered_html_matches_snapshots() {
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for md in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(md).unwrap();
        let out = render::render(&text, "");
        let mut actual = out.html.clone();
        actual.push_str("<!-- toc\n");
        for e in &out.toc {
            actual.push_str(&format!(
                "{} #{} {} {:?}\n",
                e.level, e.id, e.text, e.exercise
            ));
        }
        actual.push_str("-->\n");
        let expected_path = md.with_extension("html");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
        } else {
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if expected != actual {
                mismatches.push(format!(
                    "{} differs from {} (UPDATE_SNAPSHOTS=1 rewrites it)\n--- actual ---\n{actual}",
                    md.display(),
                    expected_path.display()
                ));
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "fixtures missing");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_construct_renders() {
    let out = render::render(&fixture("constructs.md"), "");
    let html = &out.html;
    // Tables (wrapped), strikethrough, task lists, explicit anchors.
    assert!(html.contains("<div class=\"table-wrap\"><table>"), "{html}");
    assert!(html.contains("<del>struck</del>"));
    assert!(html.contains("type=\"checkbox\""));
    assert!(html.contains("<h2 id=\"lists\">"), "{html}");
    // Same title twice: unique anchors.
    assert!(
        html.contains("id=\"table\"") && html.contains("id=\"table-2\""),
        "{html}"
    );
    // Highlighted languages; only sql gets a Run button.
    assert!(html.contains("<span class=\"tok-kw\">SELECT</span>"));
    assert!(
        html.contains("<span class=\"tok-var\">$PGDATABASE</span>"),
        "{html}"
    );
    assert!(html.contains("<span class=\"tok-kw\">def</span>"));
    assert_eq!(html.matches("data-run-sql").count(), 1);
    // Diagrams verbatim.
    assert!(
        html.contains("<pre class=\"diagram\"><code>┌────┐   ┌────┐\n│ A  │──►│ B  │\n"),
        "{html}"
    );
    assert!(html.contains("<pre class=\"code lang-text\">"));
    // Links between sections and to solution pages.
    assert!(html.contains("href=\"/sections/15-elasticsearch-practice\""));
    assert!(html.contains("href=\"/sections/15-elasticsearch-practice#part-b\""));
    assert!(html.contains("href=\"/files/practice/curriculum/14-x/solutions/benchmark.md\""));
    assert!(html.contains("href=\"https://www.postgresql.org/\""));
    assert!(html.contains("href=\"#lists\""));
    assert!(html.contains("marker¹"));
}

#[test]
fn exercise_cards_file_references_and_run_buttons() {
    let out = render::render(&fixture("exercise.md"), "");
    let html = &out.html;
    assert!(
        html.contains(
            "<section class=\"exercise-card\" id=\"exercise-14-b-1\" data-exercise=\"14.B.1\">"
        ),
        "{html}"
    );
    assert!(html.contains("<span class=\"badge\" data-exercise-status=\"14.B.1\">"));
    assert!(html.contains("data-check-exercise=\"14.B.1\""));
    assert!(
        html.contains("data-exercise=\"14.E\""),
        "the scenario is a card too: {html}"
    );
    // The Run button inside the card carries the exercise; outside it does not.
    assert!(html.contains("data-run-sql data-exercise=\"14.B.1\""));
    assert_eq!(html.matches("data-run-sql").count(), 2);
    // Every lab file is a link; .sql files get the sandbox button.
    for path in [
        "practice/curriculum/14-x/scripts/setup.sql",
        "practice/curriculum/14-x/scripts/schema.sql",
        "practice/curriculum/14-x/data/seed.csv",
        "practice/curriculum/14-x/solutions/answers.md",
    ] {
        assert!(
            html.contains(&format!(
                "<a href=\"/files/{path}\"><code>{path}</code></a>"
            )),
            "{path}: {html}"
        );
    }
    assert_eq!(html.matches("data-run-file=").count(), 2, "{html}");
    assert!(html.contains(
        "data-run-file=\"practice/curriculum/14-x/scripts/setup.sql\" data-exercise=\"14.B.1\""
    ));
    // The H4 stays inside the card; the concept heading closes it.
    let card_end = html.find("</section>").unwrap();
    assert!(html.find("Still in the card").unwrap() < card_end);
    assert!(html.find("id=\"concepts-not-an-exercise\"").unwrap() > card_end);
    assert_eq!(
        html.matches("<section class=\"exercise-card\"").count(),
        html.matches("</section>").count()
    );
    assert!(html.contains("href=\"/sections/15-elasticsearch-practice\""));
}

#[test]
fn raw_html_is_escaped() {
    let out = render::render(&fixture("raw_html.md"), "");
    let html = &out.html;
    for bad in ["<script", "<img", "<b>", "<em>", "<div onclick"] {
        assert!(!html.contains(bad), "{bad} got through: {html}");
    }
    assert!(html.contains("&lt;script&gt;alert("), "{html}");
}

#[test]
fn a_section_that_is_not_about_postgresql_renders_with_its_exercises() {
    let text = fixture("15-elasticsearch-practice.md");
    let section = model::parse(&text);
    assert_eq!(section.number, Some(15));
    assert_eq!(section.title, "Elasticsearch Practice");
    let ids: Vec<_> = section.exercises.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["15.B.1", "15.B.2", "15.C.1"]);
    assert_eq!(section.exercises[1].part, Some('B'));
    assert_eq!(section.exercises[1].files.len(), 2);
    let letters: Vec<_> = section.parts.iter().map(|p| p.letter).collect();
    assert_eq!(letters, [Some('A'), Some('B'), Some('C'), None]);
    assert_eq!(
        section.concepts,
        ["Inverted Indexes — Search in One Lookup"]
    );
    assert_eq!(section.next.unwrap().file, "16-redis-practice.md");
    let out = render::render(&text, "");
    assert_eq!(out.html.matches("class=\"exercise-card\"").count(), 3);
    assert!(!out.html.contains("data-run-sql"), "no SQL, no Run button");
    assert!(
        !out.html.contains("data-run-file"),
        "no .sql file, no sandbox button"
    );
    assert!(out.html.contains("<pre class=\"diagram\">"));
}

#[test]
fn section_14_has_every_exercise_and_lab_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    let text = std::fs::read_to_string(dir.join("14-postgresql-production-labs.md")).unwrap();
    let section = model::parse(&text);
    assert_eq!(section.number, Some(14));
    let ids: Vec<_> = section.exercises.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "14.B.1", "14.B.2", "14.B.3", "14.C.1", "14.C.2", "14.C.3", "14.C.4", "14.D.1",
            "14.D.2", "14.D.3", "14.D.4", "14.E"
        ]
    );
    assert_eq!(
        section.exercises.last().unwrap().kind,
        ExerciseKind::Scenario
    );
    let letters: Vec<_> = section.parts.iter().map(|p| p.letter).collect();
    assert_eq!(
        letters,
        [Some('A'), Some('B'), Some('C'), Some('D'), Some('E'), None]
    );
    assert_eq!(section.parts.last().unwrap().title, "Key Takeaways");
    for f in &section.files {
        assert!(dir.join(&f.path).is_file(), "missing {}", f.path);
    }
    let solutions = section
        .files
        .iter()
        .filter(|f| f.kind == FileRefKind::Solution)
        .count();
    assert_eq!(solutions, 2);
    assert_eq!(section.next.unwrap().file, "15-elasticsearch-practice.md");
}
