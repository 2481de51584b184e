//! The classroom matrix: learners × exercises, with totals, last activity and
//! stuck flags. Built with one query whatever the class size, returning one
//! condensed row per learner (their cells, and the stuck rules' activity
//! row), so 200 learners × 30 exercises stays fast.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::SqlitePool;

use super::Status;
use super::stuck::{Activity, stuck_reason};

/// One exercise column.
#[derive(Clone, Debug, Serialize)]
pub struct ExerciseColumn {
    pub id: String,
    pub title: String,
}

/// A learner of the classroom.
#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
}

/// One learner's row.
#[derive(Clone, Debug, Serialize)]
pub struct LearnerRow {
    pub user_id: i64,
    pub username: String,
    /// One status per exercise column, in column order.
    pub cells: Vec<Status>,
    pub passed: usize,
    pub last_activity_at: Option<i64>,
    pub stuck: Option<String>,
}

/// The whole matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    pub exercises: Vec<ExerciseColumn>,
    pub learners: Vec<LearnerRow>,
    /// Learners who passed each exercise, in column order.
    pub passed_per_exercise: Vec<usize>,
}

/// One learner's stored progress, condensed by the store: their cells as
/// `<status letter><exercise id>` joined by `\x1f` (`P` passed, `I` in
/// progress), the newest cell's time, and their stuck rules' activity row.
/// One row per learner rather than one per cell: sqlx hands SQLite rows
/// over one at a time from its worker thread, and at 200 × 30 the per-row
/// cost was most of the matrix's time.
#[derive(sqlx::FromRow)]
struct Condensed {
    user_id: i64,
    cells: Option<String>,
    cells_at: Option<i64>,
    last_activity_at: Option<i64>,
    working_since: Option<i64>,
    repeated_error: Option<String>,
}

/// Builds the matrix for `members` over `exercises` at time `now`.
pub async fn build(
    pool: &SqlitePool,
    members: &[Member],
    exercises: &[ExerciseColumn],
    now: i64,
) -> sqlx::Result<Matrix> {
    let ids = serde_json::to_string(&members.iter().map(|m| m.user_id).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into());
    let condensed: Vec<Condensed> = sqlx::query_as(
        "with ids as (select distinct value as user_id from json_each(?1)),
              cells as (
                  select user_id, max(last_activity_at) as cells_at,
                         group_concat(case status when 'passed' then 'P' when 'in_progress' then 'I'
                                      else 'N' end || exercise_id, char(31)) as cells
                  from exercise_progress where user_id in (select user_id from ids)
                  group by user_id)
         select ids.user_id, c.cells, c.cells_at,
                a.last_activity_at, a.working_since, a.repeated_error
         from ids left join cells c on c.user_id = ids.user_id
                  left join learner_activity a on a.user_id = ids.user_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;

    let column: HashMap<&str, usize> = exercises
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let mut rows: HashMap<i64, LearnerRow> = members
        .iter()
        .map(|m| {
            (
                m.user_id,
                LearnerRow {
                    user_id: m.user_id,
                    username: m.username.clone(),
                    cells: vec![Status::NotStarted; exercises.len()],
                    passed: 0,
                    last_activity_at: None,
                    stuck: None,
                },
            )
        })
        .collect();
    for c in condensed {
        let Some(row) = rows.get_mut(&c.user_id) else {
            continue;
        };
        row.last_activity_at = c.cells_at;
        for cell in c.cells.as_deref().unwrap_or("").split('\x1f') {
            let status = match cell.as_bytes().first() {
                Some(b'P') => Status::Passed,
                Some(b'I') => Status::InProgress,
                _ => continue,
            };
            if let Some(&i) = column.get(&cell[1..]) {
                row.cells[i] = status;
            }
        }
        if let (Some(last_activity_at), Some(working_since)) = (c.last_activity_at, c.working_since)
        {
            let activity = Activity {
                last_activity_at,
                working_since,
                repeated_error: c.repeated_error,
            };
            row.stuck = stuck_reason(&activity, now);
            row.last_activity_at = row.last_activity_at.max(Some(last_activity_at));
        }
    }
    let mut passed_per_exercise = vec![0; exercises.len()];
    let mut learners: Vec<LearnerRow> = members
        .iter()
        .filter_map(|m| rows.remove(&m.user_id))
        .collect();
    for row in &mut learners {
        for (i, status) in row.cells.iter().enumerate() {
            if *status == Status::Passed {
                row.passed += 1;
                passed_per_exercise[i] += 1;
            }
        }
    }
    Ok(Matrix {
        exercises: exercises.to_vec(),
        learners,
        passed_per_exercise,
    })
}

/// The matrix as CSV: `username,passed,<exercise ids...>` then one row each.
pub fn to_csv(matrix: &Matrix) -> String {
    let mut out = String::from("username,passed,last_activity_at,stuck");
    for e in &matrix.exercises {
        out.push(',');
        out.push_str(&csv_field(&e.id));
    }
    out.push('\n');
    for row in &matrix.learners {
        out.push_str(&csv_field(&row.username));
        out.push_str(&format!(",{}", row.passed));
        out.push_str(&format!(
            ",{}",
            row.last_activity_at
                .map(|t| t.to_string())
                .unwrap_or_default()
        ));
        out.push(',');
        out.push_str(&csv_field(row.stuck.as_deref().unwrap_or("")));
        for status in &row.cells {
            out.push(',');
            out.push_str(status.label());
        }
        out.push('\n');
    }
    out
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas (a
/// username like `=HYPERLINK(...)` must stay text when an instructor opens the
/// export).
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The condensed query puts every stored cell in its column, ignores
    /// cells of exercises the course no longer has, and reads the stuck
    /// rules' row; a member with nothing stored gets an empty row.
    #[tokio::test]
    async fn cells_activity_and_members_without_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("pglab.db"))
            .await
            .unwrap();
        let pool = store.pool();
        for name in ["ann", "bob", "cy"] {
            sqlx::query("insert into users (username) values (?)")
                .bind(name)
                .execute(pool)
                .await
                .unwrap();
        }
        let now = 1_000_000;
        for (user, ex, status, at) in [
            (1, "1.B.1", "passed", now - 500),
            (1, "1.B.3", "in_progress", now - 100),
            (1, "9.Z.9", "passed", now - 50),
            (2, "1.B.2", "in_progress", now - 7000),
        ] {
            sqlx::query(
                "insert into exercise_progress (user_id, exercise_id, status, statements, attempts, last_activity_at)
                 values (?, ?, ?, 1, 1, ?)",
            )
            .bind(user)
            .bind(ex)
            .bind(status)
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
        }
        // Bob repeats an error in a long stretch of work.
        sqlx::query(
            "insert into learner_activity (user_id, last_activity_at, working_since, repeated_error)
             values (2, ?, ?, 'relation \"taks\" does not exist')",
        )
        .bind(now - 60)
        .bind(now - 4000)
        .execute(pool)
        .await
        .unwrap();
        let members: Vec<Member> = [(1, "ann"), (2, "bob"), (3, "cy")]
            .into_iter()
            .map(|(user_id, name)| Member {
                user_id,
                username: name.into(),
            })
            .collect();
        let exercises: Vec<ExerciseColumn> = ["1.B.1", "1.B.2", "1.B.3"]
            .into_iter()
            .map(|id| ExerciseColumn {
                id: id.into(),
                title: id.into(),
            })
            .collect();
        let m = build(pool, &members, &exercises, now).await.unwrap();
        use Status::*;
        let cells: Vec<&[Status]> = m.learners.iter().map(|r| &r.cells[..]).collect();
        assert_eq!(
            cells,
            [
                &[Passed, NotStarted, InProgress][..],
                &[NotStarted, InProgress, NotStarted][..],
                &[NotStarted, NotStarted, NotStarted][..],
            ]
        );
        let names: Vec<&str> = m.learners.iter().map(|r| r.username.as_str()).collect();
        assert_eq!(names, ["ann", "bob", "cy"]);
        assert_eq!(m.learners[0].passed, 1);
        assert_eq!(m.passed_per_exercise, [1, 0, 0]);
        // The newest cell counts, also one of an exercise not shown.
        assert_eq!(m.learners[0].last_activity_at, Some(now - 50));
        assert_eq!(m.learners[1].last_activity_at, Some(now - 60));
        assert_eq!(m.learners[2].last_activity_at, None);
        assert!(m.learners[0].stuck.is_none());
        assert!(m.learners[1].stuck.is_some(), "{:?}", m.learners[1].stuck);
        assert!(m.learners[2].stuck.is_none());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("ann"), "ann");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }
}
