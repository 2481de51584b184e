//! The test harness's own PostgreSQL starts, answers and is private to its test.

mod common;

use sqlx::{Connection, Row};

#[tokio::test]
async fn temp_pg_starts_and_answers_on_its_socket() {
    let pg = common::pg::TempPg::start();
    let mut conn = sqlx::PgConnection::connect_with(&pg.options())
        .await
        .unwrap();
    let row = sqlx::query(
        "select current_user::text, current_database()::text, current_setting('listen_addresses')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "labuser");
    assert_eq!(row.get::<String, _>(1), "labdb");
    assert_eq!(row.get::<String, _>(2), "", "no TCP listener");
}
