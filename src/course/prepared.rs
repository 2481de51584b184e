//! Bytes prepared for serving: the whole HTML document of a cached page (its
//! layout rendered once by the web layer), compressed once, with an ETag.
//! [`Prepared`] and [`FileStamp`] also serve the static files
//! (`web::static_files`), prepared once per version of each file.
//!
//! A prepared page belongs to one [`Page`]: when the page is re-rendered (its
//! file changed), the next request prepares it again. Lesson pages are the
//! same for every reader (per-learner parts are fetched by the page), so a
//! request costs a map lookup and a copy of prepared bytes, and a reload with
//! `If-None-Match` costs nothing at all. [`PreparedPages::unchanged`] finds
//! the bytes of a page whose file has not changed with one `lstat`, before
//! the page itself is looked up.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::Page;

/// A page's (or a file's) bytes, ready to send.
#[derive(Debug)]
pub struct Prepared {
    /// A strong validator of the bytes: `"` + 16 hex digits of their SHA-256 + `"`.
    pub etag: String,
    /// The content as is (a page: its HTML, UTF-8).
    pub body: bytes::Bytes,
    /// The same, gzip-compressed (level 6, as tower-http's default); `None`
    /// when that is not smaller (a tiny or an already compressed file).
    pub gzip: Option<bytes::Bytes>,
}

impl Prepared {
    /// Hashes and compresses `body` (once: a 432 KB script takes ~10 ms).
    pub fn new(body: impl Into<bytes::Bytes>) -> Self {
        let body: bytes::Bytes = body.into();
        let digest = Sha256::digest(&body);
        let etag = format!(
            "\"{}\"",
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::new(6));
        // Writing into a Vec cannot fail.
        let gzip = gz
            .write_all(&body)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let gzip = (!gzip.is_empty() && gzip.len() < body.len()).then(|| gzip.into());
        Self { etag, body, gzip }
    }

    /// Whether an `If-None-Match` header value names this version.
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.trim() == "*"
            || if_none_match
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == self.etag)
    }
}

/// What a file looked like when its page was prepared: a change of any of
/// these (an edit, a replacement, a symlink put in its place) means the
/// page must be looked up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl FileStamp {
    /// The stamp of the regular file at `path` itself (symlinks not
    /// followed), or `None`: one `lstat`.
    pub fn of_canonical(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path).ok()?;
        meta.is_file().then(|| Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }
}

/// A page's file as found on disk: its canonical path and stamp. Take it
/// *before* looking the page up, so that an edit made meanwhile shows as a
/// change on the next request rather than being stamped as seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnDisk {
    path: PathBuf,
    stamp: FileStamp,
}

impl OnDisk {
    /// `file` as it is now, or `None` (no such regular file).
    pub fn of(file: &Path) -> Option<Self> {
        let path = std::fs::canonicalize(file).ok()?;
        let stamp = FileStamp::of_canonical(&path)?;
        Some(Self { path, stamp })
    }
}

/// A prepared page, the page it was made from, and its file (canonical
/// path and stamp) for [`PreparedPages::unchanged`].
type Entry = (Arc<Page>, Arc<Prepared>, Option<OnDisk>);

/// Prepared pages by key (a section slug, a file path).
#[derive(Debug, Default)]
pub struct PreparedPages {
    map: RwLock<HashMap<String, Entry>>,
}

impl PreparedPages {
    /// The prepared bytes under `key` when its file is still the one it was
    /// prepared from: one `lstat` of the file's canonical path, against the
    /// path checks, stats and render-cache lookup of `Course::page`, so a
    /// reader of an unchanged page costs the server little more than
    /// `/healthz` does. `None`: look the page up (and [`get_or_prepare`]).
    ///
    /// [`get_or_prepare`]: PreparedPages::get_or_prepare
    pub fn unchanged(&self, key: &str) -> Option<Arc<Prepared>> {
        let (path, stamp, prepared) = {
            let map = self.map.read().ok()?;
            let (_, prepared, file) = map.get(key)?;
            let file = file.as_ref()?;
            (file.path.clone(), file.stamp, prepared.clone())
        };
        (FileStamp::of_canonical(&path) == Some(stamp)).then_some(prepared)
    }

    /// The prepared bytes of `page` under `key`, made with `render` (the
    /// whole document) when the page is new or has changed since;
    /// `on_disk` is its file as found before the page was looked up.
    pub fn get_or_prepare<E>(
        &self,
        key: &str,
        page: &Arc<Page>,
        on_disk: Option<OnDisk>,
        render: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<Prepared>, E> {
        if let Some((made_from, prepared, seen)) =
            self.map.read().ok().and_then(|m| m.get(key).cloned())
            && Arc::ptr_eq(&made_from, page)
        {
            if seen != on_disk
                && let Ok(mut map) = self.map.write()
            {
                map.insert(key.to_string(), (page.clone(), prepared.clone(), on_disk));
            }
            return Ok(prepared);
        }
        let prepared = Arc::new(Prepared::new(render()?));
        if let Ok(mut map) = self.map.write() {
            map.insert(key.to_string(), (page.clone(), prepared.clone(), on_disk));
        }
        Ok(prepared)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn etag_gzip_and_if_none_match() {
        let p = Prepared::new("<p>hello</p>".repeat(100));
        assert_eq!(p.etag.len(), 18);
        let gzip = p.gzip.as_ref().unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &p.body[..]);
        assert!(gzip.len() < p.body.len() / 4);
        assert!(p.matches(&p.etag));
        assert!(p.matches(&format!("\"x\", W/{}", p.etag)));
        assert!(p.matches("*"));
        assert!(!p.matches("\"0000000000000000\""));
        let q = Prepared::new("<p>other</p>");
        assert_ne!(p.etag, q.etag);
        // Gzip of a few bytes is longer than they are: not kept.
        assert!(q.gzip.is_none());
        assert!(Prepared::new(Vec::new()).gzip.is_none());
    }
}
