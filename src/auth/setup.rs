//! The first instructor: while the store has no instructor, each start makes a
//! one-time link `/setup/<token>` (printed on stdout and in the log) that
//! creates one. The link dies when used, when a newer one is made, after 24
//! hours, or as soon as any instructor exists (e.g. made with `pglab user add`).
//! The instructor it makes is an administrator (sees every classroom).

use sqlx::SqlitePool;

use super::users::{self, Role, User};
use super::{AuthError, now, token};

/// How long a setup link works.
const LIFETIME_SECS: i64 = 24 * 3600;

/// When no instructor exists, makes a fresh setup token (invalidating older
/// ones) and returns it; otherwise `None`.
pub async fn issue_if_needed(pool: &SqlitePool) -> Result<Option<String>, AuthError> {
    if users::has_instructor(pool).await? {
        return Ok(None);
    }
    let token = token::generate();
    let mut tx = pool.begin().await?;
    sqlx::query("delete from setup_tokens")
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into setup_tokens (token_hash, expires_at) values (?, ?)")
        .bind(token::hash(&token))
        .bind(now() + LIFETIME_SECS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Whether `token` is a live setup link (checked before showing the form).
pub async fn is_valid(pool: &SqlitePool, token: &str) -> Result<bool, AuthError> {
    if users::has_instructor(pool).await? {
        return Ok(false);
    }
    let found: Option<i64> = sqlx::query_scalar(
        "select 1 from setup_tokens where token_hash = ? and used_at is null and expires_at > ?",
    )
    .bind(token::hash(token))
    .bind(now())
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Uses the link: creates the first instructor and spends the token, in one
/// transaction so two tabs cannot both use it.
pub async fn complete(
    pool: &SqlitePool,
    token: &str,
    username: &str,
    password: &str,
) -> Result<User, AuthError> {
    let username = users::parse_username(username)?;
    super::password::validate(password)?;
    let phc = super::password::hash(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let spent = sqlx::query(
        "update setup_tokens set used_at = ? where token_hash = ? and used_at is null and expires_at > ?
           and not exists (select 1 from users where role = 'instructor')",
    )
    .bind(now())
    .bind(token::hash(token))
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if spent != 1 {
        return Err(AuthError::Refused(
            "this setup link was already used or has expired; sign in, or restart pglab for a new link".into(),
        ));
    }
    let user = users::insert_hashed(&mut tx, &username, &phc, Role::Instructor).await?;
    // The first instructor administers the server: sees every classroom.
    sqlx::query("update users set is_admin = 1 where id = ?")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user = %user.username, "first instructor created through the setup link");
    Ok(user)
}

/// At start: while no instructor exists, makes the one-time setup link (at
/// `public_url` when set, else the bound address), logs it and returns it for
/// the caller to print on stdout (`startup` does; this module does not
/// depend on it).
pub async fn announce(
    pool: &SqlitePool,
    public_url: Option<&str>,
    addr: std::net::SocketAddr,
) -> Option<String> {
    match issue_if_needed(pool).await {
        Ok(Some(token)) => {
            let base = public_url
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("http://{addr}"));
            let link = format!("{base}/setup/{token}");
            tracing::info!(%link, "no instructor yet: open the one-time setup link to create the first one");
            Some(link)
        }
        Ok(None) => None,
        Err(err) => {
            tracing::error!(error = %err, "could not make the first-instructor setup link");
            None
        }
    }
}
