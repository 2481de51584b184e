//! Keeping the plans a learner runs (table `plans`, migration 0005): the last
//! [`KEEP`] per learner, older ones deleted as new ones arrive. Every query
//! filters on the learner, so nobody reads another learner's plans.

use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use crate::sandbox::LearnerId;

/// Plans kept per learner.
pub const KEEP: i64 = 50;
/// Largest plan JSON kept (a plan of thousands of nodes is still far below).
pub const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;
/// Longest SQL text kept with a plan.
const MAX_SQL_CHARS: usize = 20_000;

/// A stored plan without its JSON, for lists.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PlanSummary {
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    pub sql: String,
    /// Execution time (ANALYZE) or `null` for estimate-only plans.
    pub total_ms: Option<f64>,
}

/// A stored plan.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredPlan {
    pub id: i64,
    pub created_at: i64,
    pub sql: String,
    pub plan_json: String,
    pub total_ms: Option<f64>,
}

/// A plan to keep, checked and measured, as a store job holds it.
#[derive(Clone, Debug)]
pub struct NewPlan {
    learner: LearnerId,
    sql: String,
    json: String,
    total_ms: Option<f64>,
}

impl NewPlan {
    /// Checks the plan's size and reads its total time; `json` is the
    /// `FORMAT JSON` output.
    pub fn new(learner: LearnerId, sql: &str, json: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            json.len() <= MAX_JSON_BYTES,
            "plan too large to keep ({} bytes)",
            json.len()
        );
        let total_ms = super::Plan::parse(json).ok().and_then(|p| {
            p.execution_time
                .or_else(|| p.root().fields.actual_total_time)
        });
        Ok(Self {
            learner,
            sql: sql.chars().take(MAX_SQL_CHARS).collect(),
            json: json.to_string(),
            total_ms,
        })
    }

    /// Writes the plan inside the caller's transaction (the console's runs
    /// do it through the store's writer) and drops the learner's plans
    /// beyond the last [`KEEP`]. Returns the new plan's id.
    pub async fn apply(&self, conn: &mut SqliteConnection) -> sqlx::Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "insert into plans (learner_id, sql, plan_json, total_ms) values (?, ?, ?, ?) returning id",
        )
        .bind(self.learner)
        .bind(&self.sql)
        .bind(&self.json)
        .bind(self.total_ms)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(
            "delete from plans where learner_id = ?1 and id not in
               (select id from plans where learner_id = ?1 order by id desc limit ?2)",
        )
        .bind(self.learner)
        .bind(KEEP)
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }
}

/// Keeps a plan the learner ran in a transaction of its own (tools and
/// tests; the console goes through the store's writer with [`NewPlan`]).
/// Returns the new plan's id.
pub async fn save_plan(
    pool: &SqlitePool,
    learner: LearnerId,
    sql: &str,
    json: &str,
) -> anyhow::Result<i64> {
    let plan = NewPlan::new(learner, sql, json)?;
    let mut tx = pool.begin().await?;
    let id = plan.apply(&mut tx).await?;
    tx.commit().await?;
    Ok(id)
}

/// The learner's plans, newest first.
pub async fn list_plans(pool: &SqlitePool, learner: LearnerId) -> sqlx::Result<Vec<PlanSummary>> {
    sqlx::query_as(
        "select id, created_at, substr(sql, 1, 500) as sql, total_ms
           from plans where learner_id = ? order by id desc",
    )
    .bind(learner)
    .fetch_all(pool)
    .await
}

/// One of the learner's plans; `None` when it does not exist or is someone
/// else's (callers answer 404 either way).
pub async fn get_plan(
    pool: &SqlitePool,
    learner: LearnerId,
    id: i64,
) -> sqlx::Result<Option<StoredPlan>> {
    sqlx::query_as(
        "select id, created_at, sql, plan_json, total_ms from plans where id = ? and learner_id = ?",
    )
    .bind(id)
    .bind(learner)
    .fetch_optional(pool)
    .await
}
