//! The plan store keeps each learner's last 50 plans and never shows one
//! learner's plans to another.

#![allow(clippy::unwrap_used)]

use pglab::explain::store::{KEEP, get_plan, list_plans, save_plan};
use pglab::store::Store;

const BEFORE: &str = include_str!("fixtures/plans/lab_seq_scan_analyze.json");

async fn user(store: &Store, name: &str) -> i64 {
    sqlx::query_scalar("insert into users (username) values (?) returning id")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn keeps_the_last_50_per_learner_and_isolates_learners() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("pglab.db")).await.unwrap();
    let pool = store.pool();
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;

    let bob_plan = save_plan(pool, bob, "explain select 2", BEFORE)
        .await
        .unwrap();
    let mut ann_ids = Vec::new();
    for i in 0..(KEEP + 5) {
        let sql = format!("explain analyze select {i}");
        ann_ids.push(save_plan(pool, ann, &sql, BEFORE).await.unwrap());
    }

    let ann_list = list_plans(pool, ann).await.unwrap();
    assert_eq!(ann_list.len(), KEEP as usize);
    assert_eq!(ann_list[0].id, *ann_ids.last().unwrap(), "newest first");
    assert_eq!(
        ann_list[0].sql,
        format!("explain analyze select {}", KEEP + 4)
    );
    assert_eq!(ann_list[0].total_ms, Some(14.56));
    // The five oldest are gone; Bob's plan was not touched by Ann's cleanup.
    for old in &ann_ids[..5] {
        assert!(get_plan(pool, ann, *old).await.unwrap().is_none());
    }
    let bob_list = list_plans(pool, bob).await.unwrap();
    assert_eq!(bob_list.len(), 1);
    assert_eq!(bob_list[0].id, bob_plan);

    // Nobody reads another learner's plan, even knowing its id.
    assert!(get_plan(pool, ann, bob_plan).await.unwrap().is_none());
    assert!(get_plan(pool, bob, ann_ids[10]).await.unwrap().is_none());
    let own = get_plan(pool, bob, bob_plan).await.unwrap().unwrap();
    assert_eq!(own.plan_json, BEFORE);

    // A plan that does not parse is still kept (without a total), so the
    // learner sees it failed rather than losing it.
    let odd = save_plan(pool, bob, "explain x", "not json").await.unwrap();
    assert_eq!(
        get_plan(pool, bob, odd).await.unwrap().unwrap().total_ms,
        None
    );
    // An absurdly large one is refused.
    let huge = "x".repeat(pglab::explain::store::MAX_JSON_BYTES + 1);
    assert!(save_plan(pool, bob, "explain x", &huge).await.is_err());
}
