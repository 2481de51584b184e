//! Sign-in rate limiting: failed attempts per account and per client address
//! within a window, counted in the store so that limits survive a restart.

use sqlx::SqlitePool;

use super::config::AuthConfig;
use super::{AuthError, now};

/// Refuses with `TooManyAttempts` when the account or the address has used up
/// its failures in the window.
pub async fn check(
    pool: &SqlitePool,
    config: &AuthConfig,
    username: &str,
    address: &str,
) -> Result<(), AuthError> {
    let since = now() - config.login_window_secs;
    let (by_name, by_address): (i64, i64) = sqlx::query_as(
        "select
           (select count(*) from login_attempts where username = ? and succeeded = 0 and at > ?),
           (select count(*) from login_attempts where address = ? and succeeded = 0 and at > ?)",
    )
    .bind(username.trim())
    .bind(since)
    .bind(address)
    .bind(since)
    .fetch_one(pool)
    .await?;
    if by_name >= config.login_failures_per_account
        || by_address >= config.login_failures_per_address
    {
        let minutes = (config.login_window_secs + 59) / 60;
        return Err(AuthError::TooManyAttempts(format!(
            "too many failed sign-ins; wait {minutes} minute{} and try again",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Records an attempt. A success clears the account's earlier failures, so
/// a learner who finally remembers their password starts afresh.
pub async fn record(
    pool: &SqlitePool,
    config: &AuthConfig,
    username: &str,
    address: &str,
    succeeded: bool,
) -> Result<(), AuthError> {
    let now = now();
    let mut tx = pool.begin().await?;
    sqlx::query("delete from login_attempts where at <= ?")
        .bind(now - config.login_window_secs)
        .execute(&mut *tx)
        .await?;
    if succeeded {
        sqlx::query("delete from login_attempts where username = ?")
            .bind(username.trim())
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "insert into login_attempts (username, address, succeeded, at) values (?, ?, ?, ?)",
    )
    .bind(username.trim())
    .bind(address)
    .bind(succeeded)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
