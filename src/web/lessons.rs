//! Lesson pages and course files.
//!
//! - `GET /sections/{slug}`: a section rendered as a lesson (table of
//!   contents, lesson, docked sandbox panel and console), served from bytes
//!   prepared once per content change (`course::prepared`): gzip when the
//!   browser takes it, an ETag, and 304 for a matching `If-None-Match`;
//! - `GET /files/{*path}`: a file of the curriculum root. Markdown (solution
//!   pages) is rendered as a page; other files are shown highlighted, or as
//!   plain text with `?raw=1` (what "Run this file in my sandbox" fetches).
//!   Paths leaving the content dir are refused with 400.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::AppState;
use crate::course::highlight::{self, Lang};
use crate::course::prepared::{OnDisk, Prepared};
use crate::course::render::TocEntry;
use crate::course::{ContentError, Page, SectionSummary};
use crate::web::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sections/{slug}", get(section))
        .route("/files/{*path}", get(file))
}

/// The lesson layout, for sections and for course files.
#[derive(Template)]
#[template(path = "lesson.html")]
struct LessonPage<'a> {
    /// Shown in the window title and the side bar.
    title: &'a str,
    /// The section number, when the page is a section.
    number: Option<u32>,
    /// The section the page belongs to (itself, or the section of a lab file).
    home: Option<&'a SectionSummary>,
    /// The path of a course file (for the breadcrumb), `None` for sections.
    file: Option<&'a str>,
    body: &'a str,
    toc: &'a [TocEntry],
    prev: Option<&'a SectionSummary>,
    next: Option<&'a SectionSummary>,
    exercise_count: usize,
}

fn html_response(page: &LessonPage<'_>) -> Result<Response, AppError> {
    let html = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(Html(html).into_response())
}

/// Answers a prepared page (`web::prepared`): 304 when the browser has this
/// version, else the gzip bytes (when accepted) or the plain ones.
/// `no-cache`: browsers revalidate every time, so authors' edits show on
/// reload.
fn prepared_response(prepared: &Prepared, headers: &HeaderMap) -> Response {
    super::prepared::respond(
        prepared,
        headers,
        HeaderValue::from_static("text/html; charset=utf-8"),
        HeaderValue::from_static("no-cache"),
    )
}

fn content_error(err: ContentError) -> Result<Response, AppError> {
    match err {
        ContentError::NotFound => Ok(super::pages::not_found_response()),
        ContentError::Refused => Err(AppError::BadRequest(err.to_string())),
        ContentError::Io(p, e) if e.kind() == std::io::ErrorKind::InvalidData => Err(
            AppError::BadRequest(format!("{} is not a text file", p.display())),
        ),
        ContentError::Io(..) => Err(AppError::Internal(err.into())),
    }
}

async fn section(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let course = state.course.clone();
    // An unchanged page is served on one lstat of its file.
    if let Some(prepared) = course.prepared.unchanged(&slug) {
        return Ok(prepared_response(&prepared, &headers));
    }
    let plain_name = !slug.contains(['/', '\\']) && !slug.starts_with('.');
    let on_disk = plain_name
        .then(|| OnDisk::of(&course.dir().join(format!("{slug}.md"))))
        .flatten();
    let page: Arc<Page> = match course.section_page(&slug) {
        Ok(p) => p,
        Err(e) => return content_error(e),
    };
    let prepared = course.prepared.get_or_prepare(&slug, &page, on_disk, || {
        let (prev, next) = course.neighbours(&slug);
        let home = course.sections.iter().find(|s| s.slug == slug);
        LessonPage {
            title: &page.section.title,
            number: page.section.number,
            home,
            file: None,
            body: &page.rendered.html,
            toc: &page.rendered.toc,
            prev,
            next,
            exercise_count: page.section.exercises.len(),
        }
        .render()
        .map_err(|e| AppError::Internal(e.into()))
    })?;
    Ok(prepared_response(&prepared, &headers))
}

#[derive(Deserialize)]
struct FileQuery {
    raw: Option<String>,
}

async fn file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(query): Query<FileQuery>,
) -> Result<Response, AppError> {
    let course = state.course.clone();
    // The section a lab file belongs to: practice/curriculum/<slug>/...
    let home = path
        .split('/')
        .nth(2)
        .and_then(|slug| course.sections.iter().find(|s| s.slug == slug));
    if query.raw.is_some() {
        return match course.read_file(&path) {
            Ok(text) => Ok((
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                text,
            )
                .into_response()),
            Err(e) => content_error(e),
        };
    }
    let name = path.rsplit('/').next().unwrap_or(&path);
    if path.ends_with(".md") {
        let page = match course.page(&path) {
            Ok(p) => p,
            Err(e) => return content_error(e),
        };
        let title = if page.section.title.is_empty() {
            name
        } else {
            &page.section.title
        };
        return html_response(&LessonPage {
            title,
            number: None,
            home,
            file: Some(&path),
            body: &page.rendered.html,
            toc: &page.rendered.toc,
            prev: None,
            next: None,
            exercise_count: page.section.exercises.len(),
        });
    }
    let text = match course.read_file(&path) {
        Ok(t) => t,
        Err(e) => return content_error(e),
    };
    let body = code_file_html(&path, &text);
    html_response(&LessonPage {
        title: name,
        number: None,
        home,
        file: Some(&path),
        body: &body,
        toc: &[],
        prev: None,
        next: None,
        exercise_count: 0,
    })
}

/// A lab file shown whole: highlighted by its extension, with a Run button
/// for SQL files.
fn code_file_html(path: &str, text: &str) -> String {
    let ext = path.rsplit('.').next().unwrap_or("");
    let lang = match ext {
        "sql" => Some(Lang::Sql),
        "sh" | "bash" => Some(Lang::Bash),
        "py" => Some(Lang::Python),
        _ => None,
    };
    let mut html = String::with_capacity(text.len() * 2);
    let mut escaped_path = String::new();
    highlight::escape_into(&mut escaped_path, path);
    html.push_str("<h1 class=\"lesson-title file-title\"><code>");
    html.push_str(&escaped_path);
    html.push_str("</code></h1>\n<p class=\"file-actions\">");
    if lang == Some(Lang::Sql) {
        html.push_str(&format!(
            "<button class=\"btn primary run-file\" type=\"button\" data-run-file=\"{escaped_path}\">▶ Run this file in my sandbox</button> "
        ));
    }
    html.push_str(&format!(
        "<a class=\"btn\" href=\"/files/{escaped_path}?raw=1\">Plain text</a></p>\n"
    ));
    html.push_str("<div class=\"code-block\"><pre class=\"code\"><code>");
    match lang {
        Some(lang) => html.push_str(&highlight::highlight(text, lang)),
        None => highlight::escape_into(&mut html, text),
    }
    html.push_str("</code></pre></div>\n");
    html
}
