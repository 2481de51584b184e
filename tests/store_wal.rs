//! The store's WAL stays bounded under steady writes (a real SQLite file in
//! WAL mode, opened by `Store::open` with its migrations): passive
//! checkpoints between writes copy the WAL back but never let it start
//! over, so it grows; the checkpointer's truncation past its limit empties
//! it and loses nothing.

#![allow(clippy::unwrap_used)]

use pglab::store::{Store, checkpoint};

#[tokio::test]
async fn the_wal_is_truncated_past_its_limit_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pglab.db");
    let wal = dir.path().join("pglab.db-wal");
    let store = Store::open(&db).await.unwrap();
    let pool = store.pool();
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    // Steady writes with a passive checkpoint after each batch, as the
    // checkpointer runs them under a class's load.
    let mut sizes = Vec::new();
    for batch in 0..20 {
        for i in 0..50 {
            sqlx::query("insert into settings (key, value) values (?, ?)")
                .bind(format!("k{batch}-{i}"))
                .bind("x".repeat(500))
                .execute(pool)
                .await
                .unwrap();
        }
        checkpoint(pool, &wal, u64::MAX).await.unwrap();
        sizes.push(wal_size());
    }
    assert!(
        sizes.last().unwrap() > &(256 << 10) && sizes.windows(2).all(|w| w[1] >= w[0]),
        "passive checkpoints alone let the WAL grow: {sizes:?}"
    );

    // Under the limit: still passive, the file stays.
    let before = wal_size();
    checkpoint(pool, &wal, before).await.unwrap();
    assert_eq!(wal_size(), before);
    // Past it: truncated, every row still there.
    checkpoint(pool, &wal, 64 << 10).await.unwrap();
    assert_eq!(wal_size(), 0, "truncated");
    let n: i64 = sqlx::query_scalar("select count(*) from settings where key like 'k%'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 1000);
    // Writing goes on after it.
    sqlx::query("insert into settings (key, value) values ('after', 'y')")
        .execute(pool)
        .await
        .unwrap();
    assert!(wal_size() > 0);
}
