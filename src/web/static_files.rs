//! `/static/...`: the static folder (stylesheets, scripts, the editor
//! bundle, the icon), served from bytes prepared once per version of each
//! file (`course::prepared::Prepared`: a strong ETag, gzip made once) and
//! answered by `web::prepared` (304 for a matching `If-None-Match`, gzip
//! when accepted, `Vary: Accept-Encoding`); `Cache-Control: public,
//! max-age=3600`. `web::vendor` serves its node_modules files through the
//! same [`PreparedFiles`].
//!
//! Every file of the folder is prepared at start, in the background
//! ([`PreparedFiles::prepare_all`]). A file already prepared costs one `lstat` (its stamp: mtime, size,
//! inode) and a copy of a `Bytes` handle. A changed file (an edit, `npm run
//! build` making the bundle again) is read, hashed and compressed again on
//! its next request, on a blocking thread. Where before every request
//! opened the file and the compression layer gzipped it again (the 432 KB
//! editor bundle, ~10 ms of CPU each time).
//!
//! Only plain names are looked up: segments of ASCII letters, digits, `.`,
//! `-`, `_` and `@`, none starting with `.` (so no `..`, no hidden files, no
//! percent-encoding), and the file must lie inside the folder once symlinks
//! are resolved. Anything else, a folder, or a missing or unreadable file is
//! the same JSON 404; methods other than GET and HEAD are 405.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::course::prepared::{FileStamp, Prepared};
use crate::web::AppError;

/// How long browsers may keep a static file without asking again.
pub const CACHE_CONTROL: &str = "public, max-age=3600";

/// Files larger than this are not served (the largest, the editor bundle,
/// is under 1 MiB): a prepared file is held in memory twice (plain, gzip).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The router nested at `/static` (it sees paths without the prefix). The
/// folder's files are prepared in the background from the start, so not
/// even the first learner of a class waits for the editor bundle's gzip.
pub fn router() -> Router {
    let files = Arc::new(PreparedFiles::new(static_dir()));
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let files = files.clone();
        runtime.spawn_blocking(move || {
            let n = files.prepare_all();
            tracing::debug!(files = n, "static files prepared");
        });
    }
    Router::new().fallback(serve).with_state(files)
}

/// `static/` next to the binary's sources in development, or `PGLAB_STATIC_DIR`.
pub fn static_dir() -> PathBuf {
    std::env::var_os("PGLAB_STATIC_DIR")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/static").into())
}

async fn serve(
    State(files): State<Arc<PreparedFiles>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut res = StatusCode::METHOD_NOT_ALLOWED.into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return res;
    }
    match files.get(uri.path().trim_start_matches('/')).await {
        Some(file) => file.respond(&headers),
        None => AppError::NotFound("no such file".into()).into_response(),
    }
}

/// A prepared file and how to send it.
#[derive(Clone, Debug)]
pub struct File {
    pub prepared: Arc<Prepared>,
    pub content_type: HeaderValue,
}

impl File {
    /// The answer to a GET of this file (see `web::prepared::respond`).
    pub fn respond(&self, headers: &HeaderMap) -> Response {
        super::prepared::respond(
            &self.prepared,
            headers,
            self.content_type.clone(),
            HeaderValue::from_static(CACHE_CONTROL),
        )
    }
}

/// A prepared file, and the canonical path and stamp it was read from.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    stamp: FileStamp,
    file: File,
}

/// The files of one folder, each prepared on its first request and again
/// when it changed. Holds only files that were found, so it is bounded by
/// the folder.
#[derive(Debug)]
pub struct PreparedFiles {
    root: PathBuf,
    map: RwLock<HashMap<String, Entry>>,
}

impl PreparedFiles {
    /// Files under `root` (it need not exist yet).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            map: RwLock::default(),
        }
    }

    /// The file at `rel` (`css/pglab.css`), prepared, or `None` when there
    /// is no such plain file inside the folder.
    pub async fn get(self: &Arc<Self>, rel: &str) -> Option<File> {
        if !is_plain_path(rel) {
            return None;
        }
        if let Some(file) = self.unchanged(rel) {
            return Some(file);
        }
        let (files, rel) = (self.clone(), rel.to_string());
        tokio::task::spawn_blocking(move || files.prepare(&rel))
            .await
            .ok()
            .flatten()
    }

    /// Prepares every plain file of the folder (blocking; at most
    /// [`PREPARE_ALL_MAX`] of them, [`PREPARE_ALL_DEPTH`] folders deep);
    /// how many. What [`PreparedFiles::get`] would refuse is skipped.
    pub fn prepare_all(&self) -> usize {
        let mut found = Vec::new();
        collect_plain(&self.root, "", 0, &mut found);
        found
            .iter()
            .filter(|rel| self.prepare(rel).is_some())
            .count()
    }

    /// The prepared file when its stamp is still the one it was read with.
    fn unchanged(&self, rel: &str) -> Option<File> {
        let (path, stamp, file) = {
            let map = self.map.read().ok()?;
            let entry = map.get(rel)?;
            (entry.path.clone(), entry.stamp, entry.file.clone())
        };
        (FileStamp::of_canonical(&path) == Some(stamp)).then_some(file)
    }

    /// Reads and prepares `rel` (blocking). The stamp is taken before the
    /// read, so an edit made meanwhile shows as a change next time.
    fn prepare(&self, rel: &str) -> Option<File> {
        let found = self.read(rel);
        let Ok(mut map) = self.map.write() else {
            return found.map(|e| e.file);
        };
        match found {
            Some(entry) => {
                let file = entry.file.clone();
                map.insert(rel.to_string(), entry);
                Some(file)
            }
            None => {
                map.remove(rel);
                None
            }
        }
    }

    fn read(&self, rel: &str) -> Option<Entry> {
        let root = std::fs::canonicalize(&self.root).ok()?;
        let path = std::fs::canonicalize(root.join(rel)).ok()?;
        if !path.starts_with(&root) {
            return None;
        }
        let stamp = FileStamp::of_canonical(&path)?;
        let bytes = read_bounded(&path)?;
        let content_type = content_type(&path);
        Some(Entry {
            path,
            stamp,
            file: File {
                prepared: Arc::new(Prepared::new(bytes)),
                content_type,
            },
        })
    }
}

/// Most files [`PreparedFiles::prepare_all`] prepares at start.
const PREPARE_ALL_MAX: usize = 512;
/// Folders deep it looks.
const PREPARE_ALL_DEPTH: usize = 4;

/// The plain relative paths of the regular files under `dir` (symlinks not
/// followed), into `out`, up to [`PREPARE_ALL_MAX`].
fn collect_plain(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= PREPARE_ALL_MAX {
            return;
        }
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            continue;
        };
        let rel = format!("{prefix}{name}");
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !is_plain_path(&rel) {
            continue;
        }
        if kind.is_file() {
            out.push(rel);
        } else if kind.is_dir() && depth < PREPARE_ALL_DEPTH {
            collect_plain(&entry.path(), &format!("{rel}/"), depth + 1, out);
        }
    }
}

/// The file's bytes, or `None` (unreadable, or over [`MAX_FILE_BYTES`]).
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        tracing::warn!(path = %path.display(), "static file over 16 MiB: not served");
        return None;
    }
    Some(bytes)
}

/// The type by extension, as tower-http's `ServeDir` chose it before.
fn content_type(path: &Path) -> HeaderValue {
    mime_guess::from_path(path)
        .first_raw()
        .and_then(|m| HeaderValue::from_str(m).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
}

/// Whether `rel` is a relative path of plain names: non-empty segments of
/// ASCII letters, digits, `.`, `-`, `_` and `@` (npm's scoped packages),
/// none starting with `.`.
fn is_plain_path(rel: &str) -> bool {
    !rel.is_empty()
        && rel.len() <= 1024
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg.len() <= 255
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_plain_relative_paths() {
        for ok in [
            "css/pglab.css",
            "js/codemirror.js",
            "favicon.svg",
            "a-b_c.d/e",
            "@xterm/xterm/lib/xterm.js",
        ] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../Cargo.toml",
            "css/../../Cargo.toml",
            "css/..",
            ".",
            "css/.hidden",
            "css//pglab.css",
            "css/",
            "css\\..\\x",
            "%2e%2e/x",
            "a%00b",
            "caf\u{e9}.css",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
        assert!(!is_plain_path(&"a".repeat(300)));
        assert!(!is_plain_path(&"a/".repeat(600)));
    }

    #[test]
    fn content_types_by_extension() {
        let ty = |p: &str| content_type(Path::new(p));
        assert_eq!(ty("a.css"), "text/css");
        assert_eq!(ty("a.js"), "text/javascript");
        assert_eq!(ty("a.svg"), "image/svg+xml");
        assert_eq!(ty("a.unknown-ext"), "application/octet-stream");
    }

    /// Prepared once, served from memory while unchanged, prepared again
    /// after an edit, forgotten once deleted; nothing outside the folder,
    /// through a symlink neither.
    #[tokio::test]
    async fn prepares_once_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("css/a.css"), "a { color: red }\n".repeat(40)).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        let files = Arc::new(PreparedFiles::new(root.clone()));

        let first = files.get("css/a.css").await.unwrap();
        let again = files.get("css/a.css").await.unwrap();
        assert!(
            Arc::ptr_eq(&first.prepared, &again.prepared),
            "served from memory"
        );
        assert!(first.prepared.gzip.is_some());

        std::fs::write(root.join("css/a.css"), "b { color: blue }\n".repeat(41)).unwrap();
        let edited = files.get("css/a.css").await.unwrap();
        assert_ne!(edited.prepared.etag, first.prepared.etag);
        assert!(edited.prepared.body.starts_with(b"b { color: blue }"));

        std::fs::remove_file(root.join("css/a.css")).unwrap();
        assert!(files.get("css/a.css").await.is_none());
        assert!(files.map.read().unwrap().is_empty());

        assert!(
            files.get("leak.txt").await.is_none(),
            "symlink out of the folder"
        );
        assert!(files.get("css").await.is_none(), "a folder");
        assert!(files.get("../secret.txt").await.is_none());
        assert!(files.get("nothing.js").await.is_none());
        let none = Arc::new(PreparedFiles::new(dir.path().join("no-such-dir")));
        assert!(none.get("css/a.css").await.is_none());
        assert_eq!(none.prepare_all(), 0);
    }

    /// At start every plain file is prepared, nothing hidden, nothing
    /// through a symlink; a request then finds it prepared.
    #[tokio::test]
    async fn prepares_the_whole_folder_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        std::fs::create_dir_all(root.join("js/lib")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("js/app.js"), "let a = 1;\n".repeat(50)).unwrap();
        std::fs::write(root.join("js/lib/x.js"), "x").unwrap();
        std::fs::write(root.join("icon.svg"), "<svg/>").unwrap();
        std::fs::write(root.join(".git/config"), "secret").unwrap();
        std::fs::write(root.join("js/.env"), "secret").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("leak.txt")).unwrap();
        let files = Arc::new(PreparedFiles::new(root));
        assert_eq!(files.prepare_all(), 3);
        let mut prepared: Vec<String> = files.map.read().unwrap().keys().cloned().collect();
        prepared.sort();
        assert_eq!(prepared, ["icon.svg", "js/app.js", "js/lib/x.js"]);
        let before = files.map.read().unwrap()["js/app.js"].file.prepared.clone();
        let served = files.get("js/app.js").await.unwrap();
        assert!(Arc::ptr_eq(&before, &served.prepared));
    }
}
