//! The data dir lock: `<data-dir>/pglab.pid`, holding the pid of the process
//! that owns the data dir, under an advisory lock (`flock`) for as long as
//! that process lives.
//!
//! A running server holds it, so a second server on the same data dir and a
//! `pglab restore` under a running server are refused. The kernel drops the
//! lock when the process dies, even on SIGKILL, so a stale file never blocks
//! a start: only the lock counts, the pid in the file is for the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error("{} is locked by another pglab process{}", .path.display(), .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: PathBuf, pid: Option<u32> },
    /// The lock file could not be opened or written.
    #[error("cannot use the lock file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// The lock file of a data dir.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("pglab.pid")
    }

    /// Takes the lock of `data_dir` (which must exist) without waiting, and
    /// writes our pid into the lock file.
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let path = Self::path_in(data_dir);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // No truncate on open: the file may belong to a live server whose pid
        // we want to report.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::InUse {
                    pid: text.trim().parse().ok(),
                    path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let pid = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        match DataDirLock::acquire(dir.path()) {
            Err(LockError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
