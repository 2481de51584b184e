//! What the sandbox terminal finds besides PostgreSQL: the course's lab files,
//! read-only, at the same relative paths as in the lesson, and pglab's
//! `docker` command (`sandbox-image/docker-shim.sh`), so that the section's
//! commands work as printed from the section's folder:
//!
//! ```text
//! cd practice/curriculum/14-postgresql-production-labs
//! docker compose exec -T postgres psql -U labuser -d labdb < scripts/schema.sql
//! docker compose exec postgres pg_dump -U labuser labdb > backup.sql
//! ```
//!
//! The lab files are every regular file in the content dir's sub-folders
//! (not the section files at its top, nothing hidden, no symlinks), within
//! [`MAX_FILES`] and [`MAX_BYTES`]. Each backend keeps one read-only copy
//! (owned by root when pglab runs as root; files 0444, folders 0555) and the
//! learner's home mirrors the tree: a folder that holds files directly (say
//! `scripts/`) is a symlink to the read-only copy, every folder above it is a
//! real, writable folder of the learner's. So `backup.sql` can be written
//! beside `scripts/`, while `scripts/schema.sql` can be neither changed nor
//! removed. The mirror is refreshed each time a terminal opens (a file
//! removed from the course stays in a running container's copy until it is
//! re-created).
//!
//! - Docker (`docker/exec.rs`): the copy is a tar archive extracted into the
//!   container at [`CONTAINER_ROOT`] (the engine's archive upload, so it works
//!   wherever pglab runs), with the shim at `/srv/pglab/bin/docker` for
//!   images that do not carry one; the shell builds the mirror
//!   ([`LabFiles::mirror_script`]).
//! - Local (`local/terminal.rs`): the copy and the mirror are written
//!   directly ([`LabFiles::install_copy`], one copy per version of the
//!   files shared by all learners, and [`LabFiles::install_mirror`]).

use std::io;
use std::path::{Path, PathBuf};

/// pglab's `docker` command for the terminal (also installed by the image build).
pub const DOCKER_SHIM: &str = include_str!("../../sandbox-image/docker-shim.sh");
/// Where the Docker backend puts pglab's files in a container (root-owned).
pub const CONTAINER_ROOT: &str = "/srv/pglab";
/// Most lab files copied.
pub const MAX_FILES: usize = 2000;
/// Most bytes of lab files copied; files past it are left out.
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Deepest folder copied, below the content dir.
const MAX_DEPTH: usize = 8;

/// The lab files of a course, read into memory.
#[derive(Clone, Debug, Default)]
pub struct LabFiles {
    /// Folders, relative to the content dir, parents before children.
    dirs: Vec<String>,
    /// Files (path relative to the content dir, bytes).
    files: Vec<(String, Vec<u8>)>,
    /// Files left out by the limits.
    pub left_out: usize,
}

impl LabFiles {
    /// Reads the lab files of `content_dir` (an unreadable folder gives none).
    pub fn collect(content_dir: &Path) -> Self {
        let mut out = Self::default();
        let mut bytes = 0u64;
        walk(content_dir, "", 0, &mut out, &mut bytes);
        out.dirs.sort();
        out.files.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files as text (path relative to the content dir, text), for the
    /// console's `\i`.
    pub fn texts(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .map(|(p, b)| (p.clone(), String::from_utf8_lossy(b).into_owned()))
            .collect()
    }

    /// Paths of the files, relative to the content dir.
    pub fn file_paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(p, _)| p.as_str())
    }

    /// The learner's home layout: `(real, linked)` folders. A linked folder
    /// holds files directly and becomes a symlink to the read-only copy;
    /// real folders are the ones above it.
    pub fn layout(&self) -> (Vec<&str>, Vec<&str>) {
        let mut real = Vec::new();
        let mut linked: Vec<&str> = Vec::new();
        for dir in &self.dirs {
            if linked.iter().any(|l| is_under(dir, l)) {
                continue;
            }
            let holds_files = self
                .files
                .iter()
                .any(|(f, _)| parent(f) == Some(dir.as_str()));
            if holds_files {
                linked.push(dir);
            } else {
                real.push(dir.as_str());
            }
        }
        (real, linked)
    }

    /// A tar archive (for the engine's archive upload at `/`) of the
    /// read-only copy under `srv/pglab/course/` and the shim at
    /// `srv/pglab/bin/docker`, all owned by root.
    pub fn container_tar(&self) -> io::Result<Vec<u8>> {
        let root = CONTAINER_ROOT.trim_start_matches('/');
        let mut tar = tar::Builder::new(Vec::new());
        let now = crate::sandbox::unix_now().max(0) as u64;
        let dir = |tar: &mut tar::Builder<Vec<u8>>, path: &str| {
            let mut h = header(tar::EntryType::Directory, 0o555, 0, now);
            tar.append_data(&mut h, path, io::empty())
        };
        dir(&mut tar, root)?;
        dir(&mut tar, &format!("{root}/bin"))?;
        dir(&mut tar, &format!("{root}/course"))?;
        for d in &self.dirs {
            dir(&mut tar, &format!("{root}/course/{d}"))?;
        }
        for (path, bytes) in &self.files {
            let mut h = header(tar::EntryType::Regular, 0o444, bytes.len() as u64, now);
            tar.append_data(&mut h, format!("{root}/course/{path}"), bytes.as_slice())?;
        }
        let shim = DOCKER_SHIM.as_bytes();
        let mut h = header(tar::EntryType::Regular, 0o755, shim.len() as u64, now);
        tar.append_data(&mut h, format!("{root}/bin/docker"), shim)?;
        tar.into_inner()
    }

    /// Shell commands, run in the learner's home, that build the mirror of
    /// the copy at `copy` (a folder of the container).
    pub fn mirror_script(&self, copy: &str) -> String {
        let (real, linked) = self.layout();
        let mut s = String::new();
        for d in real {
            s.push_str(&format!("mkdir -p {} 2>/dev/null; ", sh_quote(d)));
        }
        for d in linked {
            let link = sh_quote(d);
            let target = sh_quote(&format!("{copy}/{d}"));
            s.push_str(&format!(
                "if [ -L {link} ] || [ ! -e {link} ]; then ln -sfn {target} {link}; fi; "
            ));
        }
        s
    }

    /// A short hash of the files (names and bytes): names a copy.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for d in &self.dirs {
            h.update(b"d\0");
            h.update(d.as_bytes());
            h.update(b"\0");
        }
        for (path, bytes) in &self.files {
            h.update(b"f\0");
            h.update(path.as_bytes());
            h.update(b"\0");
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The read-only copy in `root` (`root/course-<digest>`), written once
    /// per version of the files (in a temporary folder, then renamed into
    /// place, so that a terminal never sees half a copy); older copies are
    /// removed. Returns the copy's folder.
    pub fn install_copy(&self, root: &Path) -> io::Result<PathBuf> {
        let name = format!("course-{}", self.digest());
        let copy = root.join(&name);
        if !copy.is_dir() {
            std::fs::create_dir_all(root)?;
            let temp = root.join(format!(".{name}-{:08x}", rand::random::<u32>()));
            let written = self
                .write_copy(&temp)
                .and_then(|()| std::fs::rename(&temp, &copy));
            if let Err(e) = written {
                let _ = remove_read_only(&temp);
                // Another terminal may have put the same copy in place.
                if !copy.is_dir() {
                    return Err(e);
                }
            }
        }
        for entry in std::fs::read_dir(root)?.flatten() {
            let other = entry.file_name();
            let other = other.to_string_lossy();
            if other.starts_with("course-") && other != name {
                let _ = remove_read_only(&entry.path());
            }
        }
        Ok(copy)
    }

    /// The files at `dir` (new), read-only.
    fn write_copy(&self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(dir)?;
        for d in &self.dirs {
            std::fs::create_dir_all(dir.join(d))?;
        }
        for (path, bytes) in &self.files {
            let file = dir.join(path);
            std::fs::write(&file, bytes)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444))?;
        }
        // Children before parents: a 0555 folder takes no new entries.
        for d in self.dirs.iter().rev() {
            std::fs::set_permissions(dir.join(d), std::fs::Permissions::from_mode(0o555))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
    }

    /// The mirror in `home` of the copy at `copy`: real folders and links
    /// that belong to `owner` (uid, gid) when given. A link of an older
    /// copy is replaced; something the learner made in a link's place is
    /// kept.
    pub fn install_mirror(
        &self,
        copy: &Path,
        home: &Path,
        owner: Option<(u32, u32)>,
    ) -> io::Result<()> {
        let own = |p: &Path| match owner {
            Some((uid, gid)) => std::os::unix::fs::lchown(p, Some(uid), Some(gid)),
            None => Ok(()),
        };
        let (real, linked) = self.layout();
        for d in real {
            let path = home.join(d);
            std::fs::create_dir_all(&path)?;
            own(&path)?;
        }
        for d in linked {
            let link = home.join(d);
            match std::fs::symlink_metadata(&link) {
                Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(&link)?,
                Ok(_) => continue,
                Err(_) => {}
            }
            if let Some(p) = link.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::os::unix::fs::symlink(copy.join(d), &link)?;
            own(&link)?;
        }
        Ok(())
    }
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut LabFiles, bytes: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // symlink_metadata: a link is neither followed nor copied.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            out.dirs.push(path.clone());
            walk(&entry.path(), &path, depth + 1, out, bytes);
        } else if meta.is_file() && depth > 0 {
            // Files at the top are the section files, not lab files.
            if out.files.len() >= MAX_FILES || *bytes + meta.len() > MAX_BYTES {
                out.left_out += 1;
                continue;
            }
            match std::fs::read(entry.path()) {
                Ok(data) => {
                    *bytes += data.len() as u64;
                    out.files.push((path, data));
                }
                Err(_) => out.left_out += 1,
            }
        }
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `s` in single quotes for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Removes a tree whose folders may be read-only (an earlier copy).
fn remove_read_only(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    let dirs: Vec<PathBuf> = std::fs::read_dir(path)?
        .flatten()
        .map(|e| e.path())
        .collect();
    for p in dirs {
        remove_read_only(&p)?;
    }
    std::fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("14-x.md"), "# SECTION 14 — X\n").unwrap();
        let scripts = root.join("practice/curriculum/14-x/scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(scripts.join("schema.sql"), "select 1;\n").unwrap();
        std::fs::create_dir_all(root.join("practice/curriculum/14-x/solutions/deep")).unwrap();
        std::fs::write(root.join("practice/curriculum/14-x/solutions/a.md"), "a").unwrap();
        std::fs::write(
            root.join("practice/curriculum/14-x/solutions/deep/b.md"),
            "b",
        )
        .unwrap();
        std::fs::write(root.join("practice/.hidden"), "no").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", scripts.join("passwd.sql")).unwrap();
        dir
    }

    #[test]
    fn lab_files_are_those_of_the_sub_folders_without_links_or_hidden_files() {
        let dir = course();
        let files = LabFiles::collect(dir.path());
        let paths: Vec<&str> = files.file_paths().collect();
        assert_eq!(
            paths,
            [
                "practice/curriculum/14-x/scripts/schema.sql",
                "practice/curriculum/14-x/solutions/a.md",
                "practice/curriculum/14-x/solutions/deep/b.md",
            ]
        );
        let (real, linked) = files.layout();
        assert_eq!(
            real,
            [
                "practice",
                "practice/curriculum",
                "practice/curriculum/14-x"
            ]
        );
        assert_eq!(
            linked,
            [
                "practice/curriculum/14-x/scripts",
                "practice/curriculum/14-x/solutions"
            ]
        );
    }

    #[test]
    fn the_container_archive_is_root_owned_and_read_only() {
        let dir = course();
        let bytes = LabFiles::collect(dir.path()).container_tar().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.uid().unwrap(), 0);
            let path = entry.path().unwrap().display().to_string();
            let mode = h.mode().unwrap();
            if path.ends_with("bin/docker") {
                assert_eq!(mode, 0o755);
            } else {
                assert_eq!(mode & 0o222, 0, "{path} is writable");
            }
            seen.push(path);
        }
        assert!(
            seen.contains(&"srv/pglab/course/practice/curriculum/14-x/scripts/schema.sql".into())
        );
        assert!(seen.contains(&"srv/pglab/bin/docker".into()));
    }

    #[test]
    fn the_mirror_script_quotes_and_links() {
        let dir = course();
        let s = LabFiles::collect(dir.path()).mirror_script("/srv/pglab/course");
        assert!(s.contains("mkdir -p 'practice/curriculum/14-x'"), "{s}");
        assert!(
            s.contains("ln -sfn '/srv/pglab/course/practice/curriculum/14-x/scripts' 'practice/curriculum/14-x/scripts'"),
            "{s}"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn install_writes_a_read_only_copy_and_a_writable_mirror_twice() {
        let dir = course();
        let files = LabFiles::collect(dir.path());
        let out = tempfile::tempdir().unwrap();
        let (root, home) = (out.path().join("labs"), out.path().join("home"));
        for _ in 0..2 {
            let copy = files.install_copy(&root).unwrap();
            files.install_mirror(&copy, &home, None).unwrap();
        }
        // A new version of the files replaces the copy; the links follow.
        std::fs::write(
            dir.path().join("practice/curriculum/14-x/scripts/seed.sql"),
            "select 2;\n",
        )
        .unwrap();
        let newer = LabFiles::collect(dir.path());
        let copy = newer.install_copy(&root).unwrap();
        newer.install_mirror(&copy, &home, None).unwrap();
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            1,
            "the older copy is gone"
        );
        let section = home.join("practice/curriculum/14-x");
        assert_eq!(
            std::fs::read_to_string(section.join("scripts/schema.sql")).unwrap(),
            "select 1;\n"
        );
        assert_eq!(
            std::fs::read_to_string(section.join("scripts/seed.sql")).unwrap(),
            "select 2;\n"
        );
        std::fs::write(section.join("backup.sql"), "dump").unwrap();
        assert!(
            std::fs::symlink_metadata(section.join("scripts"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(section.join("scripts/schema.sql"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o222, 0);
        remove_read_only(out.path()).unwrap();
    }
}
