//! The audit log of instructor actions: password resets, sandbox stops and
//! resets, join-code rotation, opening and closing sign-up, CSV imports,
//! assigning instructors and signing a learner out everywhere. One row per
//! action in `audit_log` (migration 0008), written after the action succeeded.
//!
//! Instructors see the entries of the classrooms they manage, of the learners
//! in them, and their own; administrators see all ([`list_for`]). [`to_csv`]
//! gives the CSV export (formula-safe, like the progress matrix's).

use serde::Serialize;
use sqlx::SqlitePool;

use super::AuthError;

/// What an instructor did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    PasswordReset,
    SandboxStop,
    SandboxReset,
    JoinCodeRotated,
    ClassroomOpened,
    ClassroomClosed,
    LearnersImported,
    InstructorAssigned,
    SignedOutEverywhere,
}

impl Action {
    /// The name kept in `audit_log.action` and shown in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::SandboxStop => "sandbox_stop",
            Self::SandboxReset => "sandbox_reset",
            Self::JoinCodeRotated => "join_code_rotated",
            Self::ClassroomOpened => "classroom_opened",
            Self::ClassroomClosed => "classroom_closed",
            Self::LearnersImported => "learners_imported",
            Self::InstructorAssigned => "instructor_assigned",
            Self::SignedOutEverywhere => "signed_out_everywhere",
        }
    }
}

/// One action to record.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub actor_id: i64,
    pub actor: &'a str,
    pub action: Action,
    pub classroom: Option<i64>,
    /// The user acted on, with their username.
    pub target: Option<(i64, &'a str)>,
    pub detail: &'a str,
}

/// A recorded action, as instructors see it.
#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub classroom_id: Option<i64>,
    pub target_id: Option<i64>,
    pub target: String,
    pub detail: String,
}

/// Records an action. A failure to write is logged and returned: callers
/// record after the action, so the action itself has happened.
pub async fn record(pool: &SqlitePool, entry: Entry<'_>) -> Result<(), AuthError> {
    let (target_id, target) = entry.target.unzip();
    sqlx::query(
        "insert into audit_log (at, actor_id, actor, action, classroom_id, target_id, target, detail)
         values (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(super::now())
    .bind(entry.actor_id)
    .bind(entry.actor)
    .bind(entry.action.as_str())
    .bind(entry.classroom)
    .bind(target_id)
    .bind(target.unwrap_or(""))
    .bind(entry.detail)
    .execute(pool)
    .await
    .inspect_err(|err| tracing::error!(%err, action = entry.action.as_str(), "audit log write failed"))?;
    tracing::info!(
        actor = entry.actor,
        action = entry.action.as_str(),
        classroom = entry.classroom,
        target = target.unwrap_or(""),
        "instructor action"
    );
    Ok(())
}

type Row = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    String,
);

/// The newest `limit` entries `instructor` may see, newest first.
pub async fn list_for(
    pool: &SqlitePool,
    instructor: i64,
    limit: i64,
) -> Result<Vec<Recorded>, AuthError> {
    let rows: Vec<Row> = sqlx::query_as(
        "select a.id, a.at, a.actor, a.action, a.classroom_id, a.target_id, a.target, a.detail
         from audit_log a
         where exists (select 1 from users u where u.id = ?1 and u.role = 'instructor' and u.is_admin = 1)
            or a.actor_id = ?1
            or a.classroom_id in (select classroom_id from classroom_instructors where user_id = ?1)
            or a.target_id in (select m.user_id from classroom_members m
                               join classroom_instructors i on i.classroom_id = m.classroom_id
                               where i.user_id = ?1)
         order by a.id desc limit ?2",
    )
    .bind(instructor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, actor, action, classroom_id, target_id, target, detail)| Recorded {
                id,
                at,
                actor,
                action,
                classroom_id,
                target_id,
                target,
                detail,
            },
        )
        .collect())
}

/// The entries as CSV: `id,at,actor,action,classroom_id,target_id,target,detail`.
pub fn to_csv(entries: &[Recorded]) -> String {
    use crate::progress::matrix::csv_field;
    let mut out = String::from("id,at,actor,action,classroom_id,target_id,target,detail\n");
    for e in entries {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            e.id,
            e.at,
            csv_field(&e.actor),
            csv_field(&e.action),
            opt(e.classroom_id),
            opt(e.target_id),
            csv_field(&e.target),
            csv_field(&e.detail),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_formula_safe() {
        let e = Recorded {
            id: 1,
            at: 2,
            actor: "=cmd".into(),
            action: Action::PasswordReset.as_str().into(),
            classroom_id: None,
            target_id: Some(3),
            target: "a,b".into(),
            detail: String::new(),
        };
        assert_eq!(
            to_csv(&[e]),
            "id,at,actor,action,classroom_id,target_id,target,detail\n1,2,'=cmd,password_reset,,3,\"a,b\",\n"
        );
    }
}
