//! Accounts of people who sign in through the provider: found by issuer and
//! subject (`external_identities`), made on the first sign-in, kept in step
//! with the provider's role and classroom claims, and signed in with the
//! same kind of session as a password.
//!
//! Such accounts have no password: the password sign-in refuses them like an
//! unknown user. A username the provider suggests that is already taken gets
//! a `-2`, `-3`... suffix; accounts are never linked by username.

use sqlx::{Sqlite, SqlitePool, Transaction};

use super::claims::{Person, candidate};
use super::pending::{self, Flow, Join};
use super::{OidcError, Outcome};
use crate::auth::sessions::{self, Kind};
use crate::auth::users::{Role, User};
use crate::auth::{AuthError, classrooms, now};

/// Tries per new account to find a free username.
const NAME_TRIES: usize = 50;

/// Signs in the person of a verified callback: the linked account, or a new
/// one, or (a new learner in no classroom) a wait for a join code.
pub async fn sign_in(
    pool: &SqlitePool,
    session_ttl: crate::auth::sessions::Lifetimes,
    person: Person,
    flow: Flow,
    browser_key: &str,
) -> Result<Outcome, OidcError> {
    let mut tx = pool.begin().await?;
    let user = match linked(&mut tx, &person).await? {
        Some(user) => {
            let user = keep_in_step(&mut tx, user, &person).await?;
            for id in claimed_classrooms(&mut tx, &person.classrooms).await? {
                classrooms::add_member(&mut tx, id, user.id).await?;
            }
            user
        }
        None => {
            let role = role_of(&person);
            let mut rooms = claimed_classrooms(&mut tx, &person.classrooms).await?;
            if rooms.is_empty()
                && let Some(code) = flow.code.as_deref().filter(|c| !c.trim().is_empty())
            {
                // A join code from the sign-up link: used when it works, else asked again.
                if let Ok(room) = classrooms::by_open_code(pool, code).await {
                    rooms.push(room.id);
                }
            }
            if role == Role::Learner && rooms.is_empty() {
                drop(tx);
                let join = Join {
                    person,
                    next: flow.next,
                    code: flow.code,
                };
                let join_key = pending::put_join(pool, browser_key, &join).await?;
                return Ok(Outcome::NeedsJoinCode { join_key });
            }
            create(&mut tx, &person, role, &rooms).await?
        }
    };
    tx.commit().await?;
    let session = sessions::create(pool, user.id, Kind::Cookie, session_ttl).await?;
    tracing::info!(user = %user.username, issuer = %person.issuer, "signed in through OpenID Connect");
    Ok(Outcome::SignedIn {
        user,
        session,
        next: flow.next,
    })
}

/// Makes the account of a sign-in that waited for its join code.
pub async fn join(
    pool: &SqlitePool,
    session_ttl: crate::auth::sessions::Lifetimes,
    join_key: &str,
    browser_key: Option<&str>,
    join_code: &str,
) -> Result<Outcome, OidcError> {
    let join = pending::peek_join(pool, join_key, browser_key).await?;
    let room = classrooms::by_open_code(pool, join_code).await?;
    let mut tx = pool.begin().await?;
    if !pending::finish_join(&mut tx, join_key).await? {
        return Err(OidcError::UnknownState);
    }
    // Signed in meanwhile in another tab: that account, now in this classroom too.
    let user = match linked(&mut tx, &join.person).await? {
        Some(user) => user,
        None => create(&mut tx, &join.person, role_of(&join.person), &[]).await?,
    };
    classrooms::add_member(&mut tx, room.id, user.id).await?;
    tx.commit().await?;
    let session = sessions::create(pool, user.id, Kind::Cookie, session_ttl).await?;
    tracing::info!(user = %user.username, classroom = room.id, "joined a classroom through OpenID Connect");
    Ok(Outcome::SignedIn {
        user,
        session,
        next: join.next,
    })
}

fn role_of(person: &Person) -> Role {
    if person.instructor == Some(true) {
        Role::Instructor
    } else {
        Role::Learner
    }
}

/// The account linked to the person's issuer and subject.
async fn linked(
    tx: &mut Transaction<'_, Sqlite>,
    person: &Person,
) -> Result<Option<User>, OidcError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "select u.id, u.username, u.role from external_identities e
         join users u on u.id = e.user_id where e.issuer = ? and e.subject = ?",
    )
    .bind(&person.issuer)
    .bind(&person.subject)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(id, username, role)| User {
        id,
        username,
        role: Role::from_db(&role),
    }))
}

/// Notes the sign-in and, with an instructor claim configured, sets the
/// role the provider says (ending the user's other sessions when it changes,
/// so a removed instructor loses the role at once).
async fn keep_in_step(
    tx: &mut Transaction<'_, Sqlite>,
    mut user: User,
    person: &Person,
) -> Result<User, OidcError> {
    sqlx::query(
        "update external_identities set last_login_at = ? where issuer = ? and subject = ?",
    )
    .bind(now())
    .bind(&person.issuer)
    .bind(&person.subject)
    .execute(&mut **tx)
    .await?;
    if person.instructor.is_some() {
        let role = role_of(person);
        if role != user.role {
            sqlx::query("update users set role = ? where id = ?")
                .bind(role.as_str())
                .bind(user.id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("delete from sessions where user_id = ?")
                .bind(user.id)
                .execute(&mut **tx)
                .await?;
            sessions::forget_user(user.id);
            tracing::info!(user = %user.username, role = role.as_str(), "role changed by the provider's claim");
            user.role = role;
        }
    }
    Ok(user)
}

/// Classrooms the claim values name: an open classroom's join code, or the
/// name of exactly one classroom (the provider's word is trusted for names;
/// a join code still needs its classroom open, as at sign-up).
async fn claimed_classrooms(
    tx: &mut Transaction<'_, Sqlite>,
    values: &[String],
) -> Result<Vec<i64>, OidcError> {
    let mut ids = Vec::new();
    for value in values {
        let code = classrooms::normalize_code(value);
        let by_code: Option<i64> =
            sqlx::query_scalar("select id from classrooms where join_code = ? and is_open = 1")
                .bind(&code)
                .fetch_optional(&mut **tx)
                .await?;
        let id = match by_code {
            Some(id) => Some(id),
            None => {
                let named: Vec<i64> =
                    sqlx::query_scalar("select id from classrooms where lower(name) = lower(?)")
                        .bind(value.trim())
                        .fetch_all(&mut **tx)
                        .await?;
                if named.len() > 1 {
                    tracing::warn!(classroom = %value, "classroom claim names several classrooms; ignored");
                }
                (named.len() == 1).then(|| named[0])
            }
        };
        if let Some(id) = id
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A new account linked to the person, in `rooms`, under the first free
/// username from their claim.
async fn create(
    tx: &mut Transaction<'_, Sqlite>,
    person: &Person,
    role: Role,
    rooms: &[i64],
) -> Result<User, OidcError> {
    let mut user = None;
    for n in 1..=NAME_TRIES {
        let name = candidate(&person.username_base, n);
        let id: Option<i64> = sqlx::query_scalar(
            "insert into users (username, password_hash, role) values (?, null, ?)
             on conflict (username) do nothing returning id",
        )
        .bind(&name)
        .bind(role.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(id) = id {
            user = Some(User {
                id,
                username: name,
                role,
            });
            break;
        }
    }
    let user = user.ok_or_else(|| {
        AuthError::Taken(format!(
            "no free username near {:?}; ask an instructor to rename an account",
            person.username_base
        ))
    })?;
    sqlx::query("insert into external_identities (issuer, subject, user_id) values (?, ?, ?)")
        .bind(&person.issuer)
        .bind(&person.subject)
        .bind(user.id)
        .execute(&mut **tx)
        .await?;
    for &room in rooms {
        classrooms::add_member(tx, room, user.id).await?;
    }
    tracing::info!(user = %user.username, role = role.as_str(), issuer = %person.issuer, "account made on first OpenID Connect sign-in");
    Ok(user)
}
