//! Classrooms: a name, a join code learners sign up with (rotatable, can be
//! closed), the members, and the instructors who manage it.
//!
//! Scoping: an instructor manages the classrooms they created or were
//! assigned to (`classroom_instructors`), and the learners who are members of
//! those; an administrator instructor (`users.is_admin`: the one made by the
//! setup link, `pglab user add --instructor --admin`, and every instructor
//! from before scoping existed) manages all of them. [`manages`] and
//! [`manages_learner`] answer `false` for ids that do not exist, so callers
//! give the same answer for "not yours" and "no such id".

use serde::Serialize;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{AuthError, token};

/// Upper-case letters and digits that read unambiguously off a projector.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Length of a join code (32^8 ≈ 10^12 codes).
const CODE_LEN: usize = 8;

/// A classroom as instructors see it.
#[derive(Clone, Debug, Serialize)]
pub struct Classroom {
    pub id: i64,
    pub name: String,
    pub join_code: String,
    pub open: bool,
    pub members: i64,
    pub created_at: i64,
}

/// A member of a classroom.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub joined_at: i64,
}

/// Normalizes a code as typed: trimmed, upper case, spaces and dashes dropped.
pub fn normalize_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_code() -> String {
    token::random_string(CODE_ALPHABET, CODE_LEN)
}

fn parse_name(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AuthError::Invalid(
            "the classroom name must have 1 to 100 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// Creates an open classroom with a fresh join code.
pub async fn create(
    pool: &SqlitePool,
    name: &str,
    created_by: i64,
) -> Result<Classroom, AuthError> {
    let name = parse_name(name)?;
    // A clash of random codes is astronomically rare; retry rather than fail.
    for _ in 0..5 {
        let code = new_code();
        let id: Option<i64> = sqlx::query_scalar(
            "insert into classrooms (name, join_code, created_by) values (?, ?, ?)
             on conflict (join_code) do nothing returning id",
        )
        .bind(&name)
        .bind(&code)
        .bind(created_by)
        .fetch_optional(pool)
        .await?;
        if let Some(id) = id {
            sqlx::query(
                "insert or ignore into classroom_instructors (classroom_id, user_id) values (?, ?)",
            )
            .bind(id)
            .bind(created_by)
            .execute(pool)
            .await?;
            return get(pool, id).await;
        }
    }
    Err(AuthError::Internal(anyhow::anyhow!(
        "no free join code after 5 tries"
    )))
}

const SELECT: &str = "select c.id, c.name, c.join_code, c.is_open, c.created_at,
       (select count(*) from classroom_members m where m.classroom_id = c.id)
     from classrooms c";

type Row = (i64, String, String, bool, i64, i64);

fn from_row((id, name, join_code, open, created_at, members): Row) -> Classroom {
    Classroom {
        id,
        name,
        join_code,
        open,
        members,
        created_at,
    }
}

/// Every classroom, newest first.
pub async fn list(pool: &SqlitePool) -> Result<Vec<Classroom>, AuthError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} order by c.id desc"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Whether `user` is an administrator instructor (manages every classroom).
pub async fn is_admin(pool: &SqlitePool, user: i64) -> Result<bool, AuthError> {
    let admin: Option<bool> =
        sqlx::query_scalar("select is_admin from users where id = ? and role = 'instructor'")
            .bind(user)
            .fetch_optional(pool)
            .await?;
    Ok(admin.unwrap_or(false))
}

/// Makes an instructor an administrator, or not.
pub async fn set_admin(pool: &SqlitePool, user: i64, admin: bool) -> Result<(), AuthError> {
    let done = sqlx::query("update users set is_admin = ? where id = ? and role = 'instructor'")
        .bind(admin)
        .bind(user)
        .execute(pool)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(AuthError::NotFound("no such instructor".into()));
    }
    Ok(())
}

/// The classrooms `instructor` manages, newest first.
pub async fn list_for(pool: &SqlitePool, instructor: i64) -> Result<Vec<Classroom>, AuthError> {
    if is_admin(pool, instructor).await? {
        return list(pool).await;
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where exists (select 1 from classroom_instructors i
                               where i.classroom_id = c.id and i.user_id = ?)
         order by c.id desc"
    ))
    .bind(instructor)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Whether `instructor` manages classroom `id`; `false` when it does not exist.
pub async fn manages(pool: &SqlitePool, instructor: i64, id: i64) -> Result<bool, AuthError> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from classrooms c where c.id = ?1 and (
             exists (select 1 from users u where u.id = ?2 and u.role = 'instructor' and u.is_admin = 1)
             or exists (select 1 from classroom_instructors i
                        where i.classroom_id = c.id and i.user_id = ?2))",
    )
    .bind(id)
    .bind(instructor)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Whether `instructor` manages learner `learner` (a member of one of their
/// classrooms, or any learner for an administrator); `false` for an id that
/// is not a learner.
pub async fn manages_learner(
    pool: &SqlitePool,
    instructor: i64,
    learner: i64,
) -> Result<bool, AuthError> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from users l where l.id = ?1 and l.role = 'learner' and (
             exists (select 1 from users u where u.id = ?2 and u.role = 'instructor' and u.is_admin = 1)
             or exists (select 1 from classroom_members m
                        join classroom_instructors i on i.classroom_id = m.classroom_id
                        where m.user_id = l.id and i.user_id = ?2))",
    )
    .bind(learner)
    .bind(instructor)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Assigns instructor `username` to classroom `id` (no-op when already).
pub async fn assign(pool: &SqlitePool, id: i64, username: &str) -> Result<i64, AuthError> {
    get(pool, id).await?;
    let user: Option<i64> =
        sqlx::query_scalar("select id from users where username = ? and role = 'instructor'")
            .bind(username.trim())
            .fetch_optional(pool)
            .await?;
    let user =
        user.ok_or_else(|| AuthError::NotFound(format!("no instructor {}", username.trim())))?;
    sqlx::query(
        "insert or ignore into classroom_instructors (classroom_id, user_id) values (?, ?)",
    )
    .bind(id)
    .bind(user)
    .execute(pool)
    .await?;
    Ok(user)
}

/// The usernames of the instructors assigned to classroom `id`.
pub async fn instructors(pool: &SqlitePool, id: i64) -> Result<Vec<String>, AuthError> {
    Ok(sqlx::query_scalar(
        "select u.username from classroom_instructors i join users u on u.id = i.user_id
         where i.classroom_id = ? order by u.username",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// One classroom, or `NotFound`.
pub async fn get(pool: &SqlitePool, id: i64) -> Result<Classroom, AuthError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where c.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(from_row)
        .ok_or_else(|| AuthError::NotFound(format!("no classroom {id}")))
}

/// Gives the classroom a new join code; the old one stops working at once.
pub async fn rotate_code(pool: &SqlitePool, id: i64) -> Result<Classroom, AuthError> {
    get(pool, id).await?;
    for _ in 0..5 {
        let done = sqlx::query("update or ignore classrooms set join_code = ? where id = ?")
            .bind(new_code())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
        if done == 1 {
            return get(pool, id).await;
        }
    }
    Err(AuthError::Internal(anyhow::anyhow!(
        "no free join code after 5 tries"
    )))
}

/// Opens or closes sign-up with the classroom's code.
pub async fn set_open(pool: &SqlitePool, id: i64, open: bool) -> Result<Classroom, AuthError> {
    let done = sqlx::query("update classrooms set is_open = ? where id = ?")
        .bind(open)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(AuthError::NotFound(format!("no classroom {id}")));
    }
    get(pool, id).await
}

/// The open classroom a join code belongs to: `Invalid` for an unknown code,
/// `Refused` for a closed classroom.
pub async fn by_open_code(pool: &SqlitePool, code: &str) -> Result<Classroom, AuthError> {
    let code = normalize_code(code);
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where c.join_code = ?"))
        .bind(&code)
        .fetch_optional(pool)
        .await?;
    match row.map(from_row) {
        None => Err(AuthError::Invalid(
            "this join code is not valid; check it with your instructor".into(),
        )),
        Some(c) if !c.open => Err(AuthError::Refused(
            "this classroom is closed to new sign-ups; ask your instructor".into(),
        )),
        Some(c) => Ok(c),
    }
}

/// Adds a user to a classroom (no-op when already a member).
pub async fn add_member(
    tx: &mut Transaction<'_, Sqlite>,
    classroom: i64,
    user: i64,
) -> Result<(), AuthError> {
    let exists: Option<i64> = sqlx::query_scalar("select id from classrooms where id = ?")
        .bind(classroom)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_none() {
        return Err(AuthError::NotFound(format!("no classroom {classroom}")));
    }
    sqlx::query("insert or ignore into classroom_members (classroom_id, user_id) values (?, ?)")
        .bind(classroom)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The members of a classroom, by username.
pub async fn members(pool: &SqlitePool, id: i64) -> Result<Vec<Member>, AuthError> {
    get(pool, id).await?;
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "select u.id, u.username, u.role, m.joined_at
         from classroom_members m join users u on u.id = m.user_id
         where m.classroom_id = ? order by u.username",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, username, role, joined_at)| Member {
            id,
            username,
            role,
            joined_at,
        })
        .collect())
}

/// Whether `user` is a learner in any classroom (instructors reset only those).
pub async fn is_learner_member(pool: &SqlitePool, user: i64) -> Result<bool, AuthError> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from classroom_members m join users u on u.id = m.user_id
         where m.user_id = ? and u.role = 'learner'",
    )
    .bind(user)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert_eq!(
            normalize_code(&format!(" {}-{} ", &c[..4].to_lowercase(), &c[4..])),
            c
        );
    }
}
