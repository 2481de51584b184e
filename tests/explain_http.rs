//! The plan pages and API over HTTP with the real server: the learner's list,
//! one plan's view, the comparison naming the scan that changed, and 404 for
//! plans that are not the learner's.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use pglab::explain::store::save_plan;
use pglab::store::Store;

const BEFORE: &str = include_str!("fixtures/plans/lab_seq_scan_analyze.json");
const AFTER: &str = include_str!("fixtures/plans/lab_after_index_analyze.json");

#[tokio::test]
async fn list_view_compare_and_isolation() {
    let server = TestServer::start();
    let http = common::signed_in_learner(&server, "learner").await;
    let empty: serde_json::Value = http
        .get(server.url("/api/plans"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty, serde_json::json!([]));

    let store = Store::open(&server.data_dir.join("pglab.db"))
        .await
        .unwrap();
    let pool = store.pool();
    let me: i64 = sqlx::query_scalar("select id from users where username = 'learner'")
        .fetch_one(pool)
        .await
        .unwrap();
    let other: i64 =
        sqlx::query_scalar("insert into users (username) values ('other') returning id")
            .fetch_one(pool)
            .await
            .unwrap();
    let lab = "explain (analyze, buffers) select id, title, created_at from tasks where status = 'todo' and priority = 'high' order by created_at desc limit 20";
    let a = save_plan(pool, me, lab, BEFORE).await.unwrap();
    let b = save_plan(pool, me, lab, AFTER).await.unwrap();
    let theirs = save_plan(pool, other, "explain select 'secret'", BEFORE)
        .await
        .unwrap();

    let list: Vec<serde_json::Value> = http
        .get(server.url("/api/plans"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = list.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [b, a]);
    assert_eq!(list[1]["total_ms"], 14.56);

    let view = http
        .get(server.url(&format!("/api/plans/{a}")))
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);
    let html = view.text().await.unwrap();
    assert_eq!(html.matches("<details class=\"pn").count(), 3);
    assert_eq!(html.matches("class=\"pn-bar-fill\"").count(), 3);
    assert!(html.contains("Seq Scan on tasks"));
    assert!(html.contains("possible missing index"), "finding listed");
    assert!(
        html.contains("href=\"#plan-node-2\""),
        "finding links to the Seq Scan"
    );
    assert!(
        html.contains("href=\"#plan-finding-0\""),
        "node marked with its finding"
    );
    assert!(html.contains("/static/css/plan.css") && html.contains("/static/js/plan.js"));
    assert!(html.contains("/static/js/api.js"), "extends base.html");

    let page = http.get(server.url("/plans")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("href=\"/api/plans/{a}\"")));
    assert!(
        !page.contains("secret"),
        "another learner's plan is not listed"
    );

    let cmp = http
        .get(server.url(&format!("/api/plans/compare?a={a}&b={b}")))
        .send()
        .await
        .unwrap();
    assert_eq!(cmp.status(), 200);
    let cmp = cmp.text().await.unwrap();
    assert!(
        cmp.contains("<code>Seq Scan on tasks</code> → <code>Bitmap Heap Scan on tasks using idx_tasks_status_priority</code>"),
        "{cmp}"
    );
    assert!(cmp.contains("faster"));
    assert!(cmp.contains("id=\"a-node-0\"") && cmp.contains("id=\"b-node-0\""));

    for url in [
        format!("/api/plans/{theirs}"),
        format!("/api/plans/compare?a={a}&b={theirs}"),
        format!("/api/plans/compare?a={theirs}&b={b}"),
        "/api/plans/999999".to_string(),
        "/api/plans/not-a-number".to_string(),
    ] {
        let res = http.get(server.url(&url)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{url}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("secret"), "{url}");
    }
    let res = http
        .get(server.url("/api/plans/compare?a=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
