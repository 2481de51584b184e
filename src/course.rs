//! The course: section markdown files found in the content dir.

use std::path::Path;

/// One course section, as listed on the home page.
#[derive(Clone, Debug)]
pub struct SectionSummary {
    /// The section number, e.g. 14.
    pub number: u32,
    /// The file stem, used in URLs: `14-postgresql-production-labs`.
    pub slug: String,
    /// The title after the em dash of the H1: `PostgreSQL Production Labs`.
    pub title: String,
}

/// The sections of the content dir, in order.
#[derive(Clone, Debug, Default)]
pub struct Course {
    pub sections: Vec<SectionSummary>,
}

impl Course {
    /// Lists `NN-name.md` files and reads their `# SECTION NN — Title` line.
    pub fn load(dir: &Path) -> Self {
        let mut sections = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Self::default();
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let Some(slug) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Some(number) = slug.split('-').next().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let title = text
                .lines()
                .find_map(|l| l.strip_prefix("# "))
                .map(|h| h.split_once('—').map_or(h, |(_, t)| t).trim().to_string())
                .unwrap_or_else(|| slug.to_string());
            sections.push(SectionSummary {
                number,
                slug: slug.to_string(),
                title,
            });
        }
        sections.sort_by_key(|s| s.number);
        Self { sections }
    }
}
