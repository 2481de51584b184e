//! Finding the PostgreSQL binaries and the OS user that runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PostgreSQL binaries the local backend uses, and their version.
#[derive(Clone, Debug)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    /// e.g. "15.13".
    pub version: String,
}

impl PgBinaries {
    /// Finds them through, in order: the configured folder
    /// (`--pg-bindir`/`PGLAB_PG_BINDIR`), `pg_config --bindir`, `initdb` on
    /// PATH, then the newest `/usr/lib/postgresql/*/bin`.
    pub fn find(configured: Option<&Path>) -> Result<Self, String> {
        let bindir = match configured {
            Some(dir) => {
                if !dir.join("initdb").is_file() {
                    return Err(format!(
                        "--pg-bindir {} has no initdb: point it at PostgreSQL's bin folder",
                        dir.display()
                    ));
                }
                dir.to_path_buf()
            }
            None => Self::discover().ok_or_else(|| {
                "no PostgreSQL binaries found (tried pg_config --bindir, PATH and /usr/lib/postgresql/*/bin): install postgresql-15 or pass --pg-bindir".to_string()
            })?,
        };
        let out = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {}/postgres: {e}", bindir.display()))?;
        // "postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)"
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .nth(2)
            .unwrap_or("unknown")
            .to_string();
        Ok(Self { bindir, version })
    }

    fn discover() -> Option<PathBuf> {
        let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_initdb(&dir) {
                return Some(dir);
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let initdb = dir.join("initdb");
                if initdb.is_file() {
                    // Debian links /usr/local/bin/initdb to the real bin dir:
                    // resolve it so that postgres and pg_ctl come along.
                    let real = std::fs::canonicalize(&initdb).ok()?;
                    let parent = real.parent()?.to_path_buf();
                    if has_initdb(&parent) {
                        return Some(parent);
                    }
                }
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse().ok()?;
                Some((major, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_initdb(dir))
            .collect();
        versions.sort();
        versions.pop().map(|(_, dir)| dir)
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// PostgreSQL refuses to run as root: when pglab runs as root, clusters run
/// as this OS user (`postgres`), found in /etc/passwd.
#[derive(Clone, Copy, Debug)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// `Some` when pglab runs as root (and so must switch user), `None` else.
pub fn server_user() -> Result<Option<RunAs>, String> {
    let me = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX);
    if me != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            let uid = f[2]
                .parse()
                .map_err(|_| "bad uid of postgres in /etc/passwd")?;
            let gid = f[3]
                .parse()
                .map_err(|_| "bad gid of postgres in /etc/passwd")?;
            return Ok(Some(RunAs { uid, gid }));
        }
    }
    Err("pglab runs as root and PostgreSQL refuses to: create a `postgres` OS user (Debian's postgresql package does) or run pglab as another user".into())
}
