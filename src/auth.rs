//! Accounts: users and roles, passwords, sessions and bearer tokens,
//! classrooms and their join codes, the first instructor's one-time setup
//! link, bulk creation from CSV, sign-in rate limiting, per-classroom
//! instructor scoping, the audit log of instructor actions, and single
//! sign-on through an OpenID provider (`oidc`).
//!
//! Everything here works on the store and knows nothing of HTTP; `web::auth`,
//! `web::identity` and `web::classrooms` are thin over it. Secrets are kept
//! only as hashes: passwords as argon2id PHC strings, tokens as SHA-256.

pub mod audit;
pub mod classrooms;
pub mod config;
pub mod import;
pub mod oidc;
pub mod password;
pub mod ratelimit;
pub mod sessions;
pub mod setup;
pub mod signin;
pub mod token;
pub mod users;

pub use config::AuthConfig;
pub use users::{Role, User};

/// Seconds since the unix epoch, the time unit of every accounts table.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A refusal worded for the person signing in or managing accounts; the web
/// layer maps each kind to its status code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that can never work (bad username, short password, bad CSV).
    #[error("{0}")]
    Invalid(String),
    /// Wrong username or password; deliberately says no more.
    #[error("wrong username or password")]
    WrongCredentials,
    /// Too many failed sign-ins.
    #[error("{0}")]
    TooManyAttempts(String),
    /// The join code exists but the classroom is closed, or the setup link was used.
    #[error("{0}")]
    Refused(String),
    /// The username is taken.
    #[error("{0}")]
    Taken(String),
    /// No such classroom, user or link.
    #[error("{0}")]
    NotFound(String),
    /// Our own failure (store, hashing task).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}
