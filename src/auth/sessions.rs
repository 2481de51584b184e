//! Sign-in sessions and bearer tokens, kept in the store.
//!
//! A small store of our own over sqlx rather than tower-sessions: we need one
//! row per session with a user id, a kind, a CSRF value and a sliding expiry,
//! looked up by a hash of the token; a generic key-value session layer would
//! add two crates, a serialized blob per request and still leave bearer tokens
//! and "end every session of this user" to us.
//!
//! The token leaves the server once (cookie or JSON) and the store keeps only
//! its SHA-256, so a copy of the store cannot be replayed.

use sqlx::SqlitePool;

use super::users::{Role, User};
use super::{AuthError, now, token};

/// How a session was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `pglab_session` cookie of a browser (needs CSRF on writes).
    Cookie,
    /// `Authorization: Bearer` of a script (no CSRF: browsers never add it by themselves).
    Bearer,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Bearer => "bearer",
        }
    }
}

/// A session just created: the secrets to hand out once.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// A valid session and whose it is.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: i64,
    pub user: User,
    pub kind: Kind,
    pub csrf: String,
}

/// Creates a session of `kind` for `user_id` that expires after `ttl` idle seconds.
pub async fn create(
    pool: &SqlitePool,
    user_id: i64,
    kind: Kind,
    ttl: i64,
) -> Result<NewSession, AuthError> {
    let new = NewSession {
        token: token::generate(),
        csrf: match kind {
            Kind::Cookie => token::generate(),
            Kind::Bearer => String::new(),
        },
    };
    let now = now();
    sqlx::query(
        "insert into sessions (token_hash, user_id, kind, csrf_token, created_at, last_seen_at, expires_at)
         values (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token::hash(&new.token))
    .bind(user_id)
    .bind(kind.as_str())
    .bind(&new.csrf)
    .bind(now)
    .bind(now)
    .bind(now + ttl)
    .execute(pool)
    .await?;
    Ok(new)
}

/// `(id, token_hash, csrf_token, last_seen_at, user id, username, role)`.
type SessionRow = (i64, Vec<u8>, String, i64, i64, String, String);

/// The live session of `kind` behind `token`, sliding its expiry forward.
/// Expired and unknown tokens are `None`.
pub async fn resolve(
    pool: &SqlitePool,
    token: &str,
    kind: Kind,
    ttl: i64,
) -> Result<Option<Session>, AuthError> {
    // Anything but our own 64-hex-digit tokens is refused before the store.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hash = token::hash(token);
    let now = now();
    let row: Option<SessionRow> = sqlx::query_as(
        "select s.id, s.token_hash, s.csrf_token, s.last_seen_at, u.id, u.username, u.role
         from sessions s join users u on u.id = s.user_id
         where s.token_hash = ? and s.kind = ? and s.expires_at > ?",
    )
    .bind(&hash)
    .bind(kind.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some((id, stored, csrf, last_seen, user_id, username, role)) = row else {
        return Ok(None);
    };
    // The lookup was by hash; compare again without a timing side channel.
    if !token::constant_time_eq(&stored, &hash) {
        return Ok(None);
    }
    // Slide the expiry, but write at most about once a minute per session.
    if now - last_seen >= (ttl / 8).clamp(1, 60) {
        sqlx::query("update sessions set last_seen_at = ?, expires_at = ? where id = ?")
            .bind(now)
            .bind(now + ttl)
            .bind(id)
            .execute(pool)
            .await?;
    }
    Ok(Some(Session {
        id,
        user: User {
            id: user_id,
            username,
            role: Role::from_db(&role),
        },
        kind,
        csrf,
    }))
}

/// Ends one session (sign-out).
pub async fn delete(pool: &SqlitePool, session_id: i64) -> Result<(), AuthError> {
    sqlx::query("delete from sessions where id = ?")
        .bind(session_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Drops sessions past their expiry; called on each sign-in, which keeps the
/// table small without a background task.
pub async fn purge_expired(pool: &SqlitePool) -> Result<(), AuthError> {
    sqlx::query("delete from sessions where expires_at <= ?")
        .bind(now())
        .execute(pool)
        .await?;
    Ok(())
}
