//! Sign-ins under way (`oidc_pending`), kept server-side rather than in a
//! signed cookie: nothing to sign, nothing a copied cookie could replay, and
//! "used once" is one `delete ... returning`.
//!
//! Each row is found by the SHA-256 of its key (the `state` sent to the
//! provider, or a random join key) and is bound to the browser that started
//! it by the SHA-256 of that browser's `pglab_oidc` cookie: a callback URL
//! mailed to someone else (login CSRF) finds a row that is not theirs.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use super::OidcError;
use super::claims::Person;
use crate::auth::{now, token};

/// How long a redirect to the provider may take before its state is refused.
pub const FLOW_TTL_SECS: i64 = 600;
/// How long a verified new identity waits for its join code.
pub const JOIN_TTL_SECS: i64 = 900;

/// A redirect to the provider under way.
#[derive(Debug, Serialize, Deserialize)]
pub struct Flow {
    pub nonce: String,
    pub pkce_verifier: String,
    /// Sent again with the code exchange, which must use the same.
    pub redirect_uri: String,
    /// Where to go once signed in (already checked to be local).
    pub next: String,
    /// A join code from the sign-up link the person came from.
    pub code: Option<String>,
}

/// A verified new learner waiting for a join code.
#[derive(Debug, Serialize, Deserialize)]
pub struct Join {
    pub person: Person,
    pub next: String,
    pub code: Option<String>,
}

async fn put(
    pool: &SqlitePool,
    key: &str,
    browser_key: &str,
    kind: &str,
    data: String,
    ttl: i64,
) -> Result<(), OidcError> {
    let now = now();
    // The table stays small without a background task.
    sqlx::query("delete from oidc_pending where expires_at <= ?")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query(
        "insert into oidc_pending (key_hash, browser_hash, kind, data, expires_at)
         values (?, ?, ?, ?, ?)",
    )
    .bind(token::hash(key))
    .bind(token::hash(browser_key))
    .bind(kind)
    .bind(data)
    .bind(now + ttl)
    .execute(pool)
    .await?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, OidcError> {
    serde_json::to_string(value).map_err(|e| OidcError::Auth(anyhow::Error::from(e).into()))
}

fn from_json<T: for<'de> Deserialize<'de>>(data: &str) -> Result<T, OidcError> {
    serde_json::from_str(data).map_err(|e| OidcError::Auth(anyhow::Error::from(e).into()))
}

/// Whether the row's browser hash is this browser's cookie.
fn same_browser(stored: &[u8], browser_key: Option<&str>) -> bool {
    browser_key.is_some_and(|k| token::constant_time_eq(stored, &token::hash(k)))
}

/// Keeps a redirect to the provider under its `state`.
pub async fn put_flow(
    pool: &SqlitePool,
    state: &str,
    browser_key: &str,
    flow: &Flow,
) -> Result<(), OidcError> {
    put(
        pool,
        state,
        browser_key,
        "flow",
        to_json(flow)?,
        FLOW_TTL_SECS,
    )
    .await
}

/// Takes the redirect under `state`: deleted whatever happens next, so a
/// state works once. Unknown, expired, used or another browser's: `UnknownState`.
pub async fn take_flow(
    pool: &SqlitePool,
    state: &str,
    browser_key: Option<&str>,
) -> Result<Flow, OidcError> {
    let row: Option<(Vec<u8>, String, i64)> = sqlx::query_as(
        "delete from oidc_pending where key_hash = ? and kind = 'flow'
         returning browser_hash, data, expires_at",
    )
    .bind(token::hash(state))
    .fetch_optional(pool)
    .await?;
    match row {
        Some((browser, data, expires_at)) if expires_at > now() => {
            if !same_browser(&browser, browser_key) {
                tracing::info!(
                    "OpenID Connect callback from another browser than the one that started it"
                );
                return Err(OidcError::UnknownState);
            }
            from_json(&data)
        }
        _ => Err(OidcError::UnknownState),
    }
}

/// Keeps a verified new identity until its join code comes; returns its key.
pub async fn put_join(
    pool: &SqlitePool,
    browser_key: &str,
    join: &Join,
) -> Result<String, OidcError> {
    let key = super::new_key();
    put(
        pool,
        &key,
        browser_key,
        "join",
        to_json(join)?,
        JOIN_TTL_SECS,
    )
    .await?;
    Ok(key)
}

/// The identity waiting under `key`, left in place (a wrong join code may be
/// corrected).
pub async fn peek_join(
    pool: &SqlitePool,
    key: &str,
    browser_key: Option<&str>,
) -> Result<Join, OidcError> {
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(
        "select browser_hash, data from oidc_pending
         where key_hash = ? and kind = 'join' and expires_at > ?",
    )
    .bind(token::hash(key))
    .bind(now())
    .fetch_optional(pool)
    .await?;
    match row {
        Some((browser, data)) if same_browser(&browser, browser_key) => from_json(&data),
        _ => Err(OidcError::UnknownState),
    }
}

/// Ends the wait under `key` inside the transaction that made the account;
/// false when another request finished it first.
pub async fn finish_join(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &str,
) -> Result<bool, OidcError> {
    let done = sqlx::query("delete from oidc_pending where key_hash = ? and kind = 'join'")
        .bind(token::hash(key))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(done == 1)
}
