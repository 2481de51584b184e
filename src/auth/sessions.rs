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
//!
//! Resolved sessions are kept in memory for [`CACHE_TTL`] (every request
//! resolves its session: the store round trip was the biggest cost of a
//! warm `POST /api/sql` after the statement itself). Signing out, and
//! anything that ends a user's sessions, drops them from the cache at once;
//! only a change made by another process (the `pglab user` CLI on the same
//! store) waits out the TTL.
//!
//! Lifetimes ([`Lifetimes`]): a session ends after `idle` seconds unused
//! (each use slides `expires_at` forward) and in any case `absolute` seconds
//! after it was created: the slide never moves `expires_at` past
//! `created_at + absolute`, and resolving checks both.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

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

/// How long sessions live, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Unused for this long, a session ends (sliding).
    pub idle: i64,
    /// This long after sign-in, a session ends however much it is used.
    pub absolute: i64,
}

impl Lifetimes {
    /// The expiry of a session created at `created_at` and used at `now`.
    fn expiry(self, created_at: i64, now: i64) -> i64 {
        (now + self.idle).min(created_at + self.absolute)
    }
}

/// Creates a session of `kind` for `user_id` with `life`'s lifetimes.
pub async fn create(
    pool: &SqlitePool,
    user_id: i64,
    kind: Kind,
    life: Lifetimes,
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
    .bind(life.expiry(now, now))
    .execute(pool)
    .await?;
    Ok(new)
}

/// How long a resolved session is believed without asking the store.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most sessions kept; past it the cache starts over (a classroom has far fewer).
const CACHE_MAX: usize = 20_000;

/// Resolved sessions by token hash, with when they were resolved and when
/// the store must next be asked (the sooner of its expiry and the next
/// slide of the expiry, unix seconds).
type CacheMap = HashMap<Vec<u8>, (Session, Instant, i64)>;

static CACHE: LazyLock<Mutex<CacheMap>> = LazyLock::new(Mutex::default);

fn cached(hash: &[u8], kind: Kind, now: i64) -> Option<Session> {
    let cache = CACHE.lock().ok()?;
    let (session, at, ask_again_at) = cache.get(hash)?;
    (session.kind == kind && at.elapsed() < CACHE_TTL && *ask_again_at > now)
        .then(|| session.clone())
}

fn remember(hash: Vec<u8>, session: &Session, ask_again_at: i64) {
    if let Ok(mut cache) = CACHE.lock() {
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (session.clone(), Instant::now(), ask_again_at));
    }
}

/// How often a used session's expiry is slid forward in the store: about
/// once a minute, more often for short lifetimes.
fn slide_every(ttl: i64) -> i64 {
    (ttl / 8).clamp(1, 60)
}

/// Drops the cached sessions that `pred` picks.
fn forget(pred: impl Fn(&Session) -> bool) {
    if let Ok(mut cache) = CACHE.lock() {
        cache.retain(|_, (s, _, _)| !pred(s));
    }
}

/// Drops every cached session of `user_id` (their sessions were ended in
/// the store, e.g. by a password reset).
pub fn forget_user(user_id: i64) {
    forget(|s| s.user.id == user_id);
}

/// `(id, token_hash, csrf_token, created_at, last_seen_at, expires_at, user id, username, role)`.
type SessionRow = (i64, Vec<u8>, String, i64, i64, i64, i64, String, String);

/// The live session of `kind` behind `token`, sliding its expiry forward.
/// Expired and unknown tokens are `None`.
pub async fn resolve(
    pool: &SqlitePool,
    token: &str,
    kind: Kind,
    life: Lifetimes,
) -> Result<Option<Session>, AuthError> {
    let ttl = life.idle;
    // Anything but our own 64-hex-digit tokens is refused before the store.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hash = token::hash(token);
    let now = now();
    if let Some(session) = cached(&hash, kind, now) {
        return Ok(Some(session));
    }
    let row: Option<SessionRow> = sqlx::query_as(
        "select s.id, s.token_hash, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                u.id, u.username, u.role
         from sessions s join users u on u.id = s.user_id
         where s.token_hash = ? and s.kind = ? and s.expires_at > ? and s.created_at > ?",
    )
    .bind(&hash)
    .bind(kind.as_str())
    .bind(now)
    .bind(now - life.absolute)
    .fetch_optional(pool)
    .await?;
    let Some((id, stored, csrf, created_at, last_seen, mut expires_at, user_id, username, role)) =
        row
    else {
        return Ok(None);
    };
    // The lookup was by hash; compare again without a timing side channel.
    if !token::constant_time_eq(&stored, &hash) {
        return Ok(None);
    }
    // Slide the expiry, but write at most about once a minute per session.
    let mut last_seen = last_seen;
    if now - last_seen >= slide_every(ttl) {
        expires_at = life.expiry(created_at, now);
        sqlx::query("update sessions set last_seen_at = ?, expires_at = ? where id = ?")
            .bind(now)
            .bind(expires_at)
            .bind(id)
            .execute(pool)
            .await?;
        last_seen = now;
    }
    let session = Session {
        id,
        user: User {
            id: user_id,
            username,
            role: Role::from_db(&role),
        },
        kind,
        csrf,
    };
    // Asked again when the next slide is due, so that a session in use
    // never expires for lack of a write.
    remember(hash, &session, expires_at.min(last_seen + slide_every(ttl)));
    Ok(Some(session))
}

/// Ends one session (sign-out).
pub async fn delete(pool: &SqlitePool, session_id: i64) -> Result<(), AuthError> {
    // Forgotten first: a request racing the sign-out must not see it cached.
    forget(|s| s.id == session_id);
    sqlx::query("delete from sessions where id = ?")
        .bind(session_id)
        .execute(pool)
        .await?;
    forget(|s| s.id == session_id);
    Ok(())
}

/// Ends every session and bearer token of `user_id` ("sign out
/// everywhere"); returns how many there were. The cache forgets them before
/// and after the delete, so no request still sees one afterwards.
pub async fn delete_all_of(pool: &SqlitePool, user_id: i64) -> Result<u64, AuthError> {
    forget_user(user_id);
    let n = sqlx::query("delete from sessions where user_id = ?")
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected();
    forget_user(user_id);
    Ok(n)
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
