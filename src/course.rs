//! The course: the section markdown files of the content dir (the curriculum
//! root), their lab files, and their rendered pages.
//!
//! - [`markdown`]: the one place that sets pulldown-cmark's options;
//! - [`model`]: what a section file means (parts, exercises, lab files, next);
//! - [`render`] and [`highlight`]: markdown to lesson HTML;
//! - [`checks`]: the exercise checks sidecar and running its checks;
//! - [`sandbox_check`]: checks of the learner's running container (`kind = "sandbox"`);
//! - [`content_check`]: `pglab content check`, the course testing itself;
//! - [`play`]: its play of every sql block of a section, after the lab scripts;
//! - [`scratch`]: a throw-away PostgreSQL for `content check --run`;
//! - [`prepared`]: whole pages as bytes to send (gzip and ETag made once).
//!
//! Rendered pages are cached in memory per file and re-rendered when the
//! file's modification time or size changes, so authors see edits on reload.

pub mod checks;
pub mod content_check;
pub mod highlight;
pub mod markdown;
pub mod model;
pub mod play;
pub mod prepared;
pub mod render;
pub mod sandbox_check;
pub mod scratch;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use model::Section;
use render::Rendered;

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

/// A rendered markdown page (a section or a lab file such as a solution).
#[derive(Debug)]
pub struct Page {
    /// The file's path relative to the curriculum root.
    pub path: String,
    /// What the page means in the curriculum format.
    pub section: Section,
    /// Its HTML body and table of contents.
    pub rendered: Rendered,
    stamp: Stamp,
}

/// What must change for a cached page to be re-rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Why a content file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The path tries to leave the content dir (or is otherwise malformed).
    #[error("this path is not inside the course folder")]
    Refused,
    #[error("no such course file")]
    NotFound,
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The sections of the content dir, in order, and a cache of rendered pages.
#[derive(Debug, Default)]
pub struct Course {
    /// Sections found when the course was loaded, ordered by number.
    pub sections: Vec<SectionSummary>,
    dir: PathBuf,
    cache: RwLock<HashMap<String, Arc<Page>>>,
    /// The cached pages laid out, compressed and tagged for serving.
    pub prepared: prepared::PreparedPages,
}

impl Course {
    /// Lists `NN-name.md` files and reads their `# SECTION NN — Title` line.
    pub fn load(dir: &Path) -> Self {
        Self {
            sections: list_sections(dir),
            dir: dir.to_path_buf(),
            cache: RwLock::default(),
            prepared: prepared::PreparedPages::default(),
        }
    }

    /// The curriculum root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sections before and after `slug` in the listing.
    pub fn neighbours(&self, slug: &str) -> (Option<&SectionSummary>, Option<&SectionSummary>) {
        let Some(i) = self.sections.iter().position(|s| s.slug == slug) else {
            return (None, None);
        };
        (
            i.checked_sub(1).and_then(|p| self.sections.get(p)),
            self.sections.get(i + 1),
        )
    }

    /// The rendered section `slug` (a file stem like `14-postgresql-production-labs`).
    pub fn section_page(&self, slug: &str) -> Result<Arc<Page>, ContentError> {
        let file = format!("{slug}.md");
        if slug.contains(['/', '\\']) || !render::is_section_file(&file) {
            return Err(ContentError::NotFound);
        }
        self.page(&file)
    }

    /// The rendered markdown file at `rel` (relative to the curriculum root).
    pub fn page(&self, rel: &str) -> Result<Arc<Page>, ContentError> {
        let path = self.resolve(rel)?;
        let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        let stamp = Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        if let Some(page) = self.cache.read().ok().and_then(|c| c.get(rel).cloned())
            && page.stamp == stamp
        {
            return Ok(page);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let doc_dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        let page = Arc::new(Page {
            path: rel.to_string(),
            section: model::parse(&text),
            rendered: render::render(&text, doc_dir),
            stamp,
        });
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(rel.to_string(), page.clone());
        }
        Ok(page)
    }

    /// The text of the content file at `rel`.
    pub fn read_file(&self, rel: &str) -> Result<String, ContentError> {
        let path = self.resolve(rel)?;
        std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))
    }

    /// Maps a path relative to the curriculum root to a file inside it,
    /// refusing absolute paths, `..`, hidden components and symlinks that
    /// lead outside the root.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, ContentError> {
        let rel_path = Path::new(rel);
        let clean = !rel.is_empty()
            && !rel.contains(['\\', '\0'])
            && rel_path.components().all(|c| match c {
                Component::Normal(s) => !s.to_string_lossy().starts_with('.'),
                _ => false,
            });
        if !clean {
            return Err(ContentError::Refused);
        }
        let root = self
            .dir
            .canonicalize()
            .map_err(|e| io_error(&self.dir, e))?;
        // Any failure here comes from the path asked for (no such file, a
        // file used as a folder, a name too long for the file system...):
        // there is no such file.
        let Ok(full) = root.join(rel_path).canonicalize() else {
            return Err(ContentError::NotFound);
        };
        if !full.starts_with(&root) {
            return Err(ContentError::Refused);
        }
        if !full.is_file() {
            return Err(ContentError::NotFound);
        }
        Ok(full)
    }
}

fn io_error(path: &Path, err: std::io::Error) -> ContentError {
    if err.kind() == std::io::ErrorKind::NotFound {
        ContentError::NotFound
    } else {
        ContentError::Io(path.to_path_buf(), err)
    }
}

/// The section files of `dir`, ordered by number then slug.
pub fn list_sections(dir: &Path) -> Vec<SectionSummary> {
    let mut sections = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sections;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
            continue;
        };
        if !render::is_section_file(name) {
            continue;
        }
        let slug = name.trim_end_matches(".md");
        let Some(number) = slug.split('-').next().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let title = text
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .map(|h| {
                model::split_dash(h)
                    .map_or(h, |(_, t)| t)
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| slug.to_string());
        sections.push(SectionSummary {
            number,
            slug: slug.to_string(),
            title,
        });
    }
    sections.sort_by(|a, b| (a.number, &a.slug).cmp(&(b.number, &b.slug)));
    sections
}
