//! The classroom matrix: learners × exercises, with totals, last activity and
//! stuck flags. Built with two queries whatever the class size (the stuck
//! rules read one condensed row per learner), so 200 learners × 30
//! exercises stays fast.

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

#[derive(sqlx::FromRow)]
struct MemberActivity {
    user_id: i64,
    #[sqlx(flatten)]
    activity: Activity,
}

#[derive(sqlx::FromRow)]
struct Cell {
    user_id: i64,
    exercise_id: String,
    status: String,
    last_activity_at: i64,
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
    let cells: Vec<Cell> = sqlx::query_as(
        "select user_id, exercise_id, status, last_activity_at from exercise_progress
         where user_id in (select value from json_each(?))",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let activities: Vec<MemberActivity> = sqlx::query_as(
        "select user_id, last_activity_at, working_since, repeated_error from learner_activity
         where user_id in (select value from json_each(?))",
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
    for cell in &cells {
        let Some(row) = rows.get_mut(&cell.user_id) else {
            continue;
        };
        row.last_activity_at = row.last_activity_at.max(Some(cell.last_activity_at));
        if let Some(&i) = column.get(cell.exercise_id.as_str()) {
            row.cells[i] = Status::parse(&cell.status);
        }
    }
    for a in activities {
        if let Some(row) = rows.get_mut(&a.user_id) {
            row.stuck = stuck_reason(&a.activity, now);
            row.last_activity_at = row.last_activity_at.max(Some(a.activity.last_activity_at));
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
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("ann"), "ann");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }
}
