//! Value types and parsers that the settings of every area share: yes/no
//! switches and secrets (given inline or as a file, as Docker secrets are).
//! A leaf: it imports nothing of the crate, so `config` and the areas'
//! settings (`auth`, `console`, `sandbox`, ...) can all use it without
//! importing each other.

use std::path::{Path, PathBuf};

/// A yes/no setting; empty (`PGLAB_X=` from a compose file) means no.
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "off" | "0" => Ok(false),
        "true" | "yes" | "on" | "1" => Ok(true),
        other => Err(format!("{other:?} is not true/false (yes/no, on/off, 1/0)")),
    }
}

/// A secret setting: compared in constant time, never printed by `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Whether `candidate` is the secret, in time that does not depend on
    /// where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Secret {
    /// The secret itself, for the one place that must send it on.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// An empty secret (`PGLAB_METRICS_SECRET=`) is no secret: it opens nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the secret file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret file {0} is empty")]
    Empty(PathBuf),
}

impl Secret {
    /// The secret held by the file at `path`, without its line end (files
    /// made with `echo` end with one; `docker secret create` keeps it).
    pub fn from_file(path: &Path) -> Result<Self, SecretFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(SecretFileError::Empty(path.to_path_buf()));
        }
        Ok(Self(secret.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_loses_its_line_end_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "  s3cr et \n").unwrap();
        let secret = Secret::from_file(&path).unwrap();
        assert_eq!(secret.expose(), "  s3cr et ");
        assert!(secret.matches("  s3cr et "));
        assert!(!secret.matches("s3cr et"));
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = Secret::from_file(&missing).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("missing"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = Secret::from_file(&empty).unwrap_err().to_string();
        assert!(e.contains("is empty") && e.contains("empty"), "{e}");
    }

    #[test]
    fn switches_read_compose_style_values() {
        assert_eq!(parse_switch(""), Ok(false));
        assert_eq!(parse_switch(" Yes "), Ok(true));
        assert!(parse_switch("maybe").is_err());
    }
}
