//! Users: usernames and roles, creating accounts and changing passwords.
//! The `users` table comes from the foundation (`migrations/0001_init.sql`).

use serde::Serialize;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{AuthError, password};

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Learner,
    Instructor,
}

impl Role {
    /// The value kept in `users.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Learner => "learner",
            Self::Instructor => "instructor",
        }
    }

    /// Reads `users.role`; anything unknown is the least privileged role.
    pub fn from_db(s: &str) -> Self {
        if s == "instructor" {
            Self::Instructor
        } else {
            Self::Learner
        }
    }
}

/// A user as the rest of the app sees them.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// Shortest and longest usernames.
pub const USERNAME_MIN: usize = 2;
pub const USERNAME_MAX: usize = 32;

/// Checks a username: 2–32 ASCII letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit. ASCII only, so that look-alike characters cannot
/// impersonate another learner in the instructor's views. Returns it trimmed.
pub fn parse_username(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(AuthError::Invalid(format!(
            "the username must have {USERNAME_MIN} to {USERNAME_MAX} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(AuthError::Invalid(
            "the username may contain only letters a-z, digits and . _ -".into(),
        ));
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(AuthError::Invalid(
            "the username must start with a letter or a digit".into(),
        ));
    }
    Ok(name.to_string())
}

/// Validates and creates a user with an argon2 hash of `password`; with
/// `classroom`, also makes them a member. 409-worthy `Taken` for a used name
/// (usernames are case-insensitive).
pub async fn create(
    pool: &SqlitePool,
    username: &str,
    password: &str,
    role: Role,
    classroom: Option<i64>,
) -> Result<User, AuthError> {
    let username = parse_username(username)?;
    password::validate(password)?;
    let phc = password::hash(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let user = insert_hashed(&mut tx, &username, &phc, role).await?;
    if let Some(classroom) = classroom {
        super::classrooms::add_member(&mut tx, classroom, user.id).await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Inserts a user whose name was validated and password hashed.
pub async fn insert_hashed(
    tx: &mut Transaction<'_, Sqlite>,
    username: &str,
    phc: &str,
    role: Role,
) -> Result<User, AuthError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "insert into users (username, password_hash, role) values (?, ?, ?)
         on conflict (username) do nothing returning id",
    )
    .bind(username)
    .bind(phc)
    .bind(role.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some(id) => Ok(User {
            id,
            username: username.to_string(),
            role,
        }),
        None => Err(AuthError::Taken(format!(
            "the username {username} is taken; choose another"
        ))),
    }
}

/// A user by id.
pub async fn by_id(pool: &SqlitePool, id: i64) -> Result<Option<User>, AuthError> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("select id, username, role from users where id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id, username, role)| User {
        id,
        username,
        role: Role::from_db(&role),
    }))
}

/// A user and their stored password hash, by (case-insensitive) name.
pub async fn with_hash(
    pool: &SqlitePool,
    username: &str,
) -> Result<Option<(User, Option<String>)>, AuthError> {
    let row: Option<(i64, String, String, Option<String>)> =
        sqlx::query_as("select id, username, role, password_hash from users where username = ?")
            .bind(username.trim())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id, username, role, phc)| {
        (
            User {
                id,
                username,
                role: Role::from_db(&role),
            },
            phc,
        )
    }))
}

/// Sets a new password and ends every session and token of the user, so an
/// old password's sessions stop working at once.
pub async fn set_password(
    pool: &SqlitePool,
    user_id: i64,
    password: &str,
) -> Result<(), AuthError> {
    password::validate(password)?;
    let phc = password::hash(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let changed = sqlx::query("update users set password_hash = ? where id = ?")
        .bind(&phc)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(AuthError::NotFound("no such user".into()));
    }
    sqlx::query("delete from sessions where user_id = ?")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    super::sessions::forget_user(user_id);
    Ok(())
}

/// Whether any instructor exists (else the setup link is offered).
pub async fn has_instructor(pool: &SqlitePool) -> Result<bool, AuthError> {
    let n: i64 = sqlx::query_scalar("select count(*) from users where role = 'instructor'")
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(parse_username("  ada.l_2-x ").unwrap(), "ada.l_2-x");
        for bad in [
            "a",
            "",
            "-ada",
            "ada lovelace",
            "adä",
            "a/b",
            &"x".repeat(33),
        ] {
            assert!(parse_username(bad).is_err(), "{bad:?} refused");
        }
    }
}
