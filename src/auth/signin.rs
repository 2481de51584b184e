//! Signing in: rate limit, password check, session. The one path used by the
//! sign-in page, `POST /api/login` and the benchmark.

use sqlx::SqlitePool;

use super::config::AuthConfig;
use super::sessions::{self, Kind, NewSession};
use super::users::{self, User};
use super::{AuthError, password, ratelimit};

/// Checks the credentials of `username` from `address` and, when right,
/// opens a session of `kind`. Unknown users and wrong passwords get the same
/// `WrongCredentials` after the same argon2 work.
pub async fn sign_in(
    pool: &SqlitePool,
    config: &AuthConfig,
    username: &str,
    password_given: &str,
    address: &str,
    kind: Kind,
) -> Result<(User, NewSession), AuthError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 64 || password_given.len() > 4 * password::MAX_LEN {
        return Err(AuthError::WrongCredentials);
    }
    ratelimit::check(pool, config, username, address).await?;
    let found = users::with_hash(pool, username).await?;
    let (user, phc) = match found {
        Some((user, phc)) => (Some(user), phc),
        None => (None, None),
    };
    let ok = password::verify(password_given.to_string(), phc).await?;
    ratelimit::record(pool, config, username, address, ok).await?;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(%address, "failed sign-in");
        return Err(AuthError::WrongCredentials);
    };
    sessions::purge_expired(pool).await?;
    let session = sessions::create(pool, user.id, kind, config.lifetimes()).await?;
    tracing::info!(user = %user.username, "signed in");
    Ok((user, session))
}
