//! Keeps the admission line across pglab restarts: the store's
//! `admission_line` table holds who waits for a place, first first, and
//! when each joined. A keeper task writes it whenever the line's members
//! or order change; at start-up [`resume`] reads it back, puts everyone at
//! their place again (with their first join time, so instructors still see
//! how long they wait) and goes on with each learner's start, detached as
//! [`super::line`] does ([`line::go_on`]), so a place that frees goes to the
//! next in line as if pglab had never stopped. Until a restored learner's
//! start joins, nobody behind them tries for a place and a start request of
//! theirs answers their place (no second start); a start that fails before
//! it joins gives the place up.
//!
//! A learner whose page does not come back is let go by the line's usual
//! rule (no listener and no question for [`super::line::ABANDONED`]), and
//! an entry whose start never joins again is forgotten after the line's
//! grace period. Only what decides a place is kept (members and order);
//! tries and "away" marks are the running server's.

use std::sync::Arc;

use super::admission::Admission;
use super::line;
use super::{LearnerId, Provisioner};
use crate::store::Store;
use crate::store::writer::{Script, Value};

/// Reads the kept line back into `sandbox`'s admission line, goes on with
/// each waiting learner's start, and keeps the table current from now on.
/// Returns how many learners were put back. Nothing for a backend that
/// does not queue.
pub async fn resume(sandbox: &Arc<dyn Provisioner>, store: &Store) -> anyhow::Result<usize> {
    if !sandbox.admission().enabled() {
        return Ok(0);
    }
    let kept: Vec<(LearnerId, i64)> = sqlx::query_as(
        "select learner_id, joined_at from admission_line order by position, joined_at",
    )
    .fetch_all(store.pool())
    .await?;
    tracing::debug!(learners = kept.len(), "admission line read from the store");
    sandbox.admission().restore(&kept);
    if !kept.is_empty() {
        tracing::info!(
            learners = kept.len(),
            "the admission line is back as it was before the restart"
        );
    }
    for &(learner, _) in &kept {
        let start = line::go_on(sandbox, learner);
        let sandbox = Arc::clone(sandbox);
        tokio::spawn(async move {
            match start.await {
                Ok(Ok(_)) => tracing::debug!(learner, "started after the restart"),
                Ok(Err(err)) => {
                    tracing::info!(learner, error = %err, "a start kept in line did not go on");
                }
                Err(err) => tracing::warn!(learner, error = %err, "a start kept in line stopped"),
            }
            // A start that failed before it joined must not hold the place.
            sandbox.admission().drop_restored(learner);
        });
    }
    let restored = kept.len();
    spawn_keeper(Arc::clone(sandbox), store.clone(), kept);
    Ok(restored)
}

/// Writes the line to the store each time its members or order change
/// (not on every try: those do not move anyone). Ends when the server does.
fn spawn_keeper(sandbox: Arc<dyn Provisioner>, store: Store, written: Vec<(LearnerId, i64)>) {
    tokio::spawn(async move { keep(sandbox.admission(), &store, written).await });
}

/// The keeper's loop over `admission`'s changes; `written` is what the
/// table holds now.
async fn keep(admission: &Admission, store: &Store, written: Vec<(LearnerId, i64)>) {
    let mut changes = admission.changes();
    let mut written = Some(written);
    // No lingering before a write (a stop right after a join would lose
    // it): changes that come while a write is on its way are taken together
    // by the next one.
    while changes.changed().await.is_ok() {
        changes.borrow_and_update();
        let now = members(admission);
        if written.as_ref() == Some(&now) {
            continue;
        }
        match store.writer().run_script(script(&now)).await {
            Ok(_) => {
                tracing::debug!(learners = now.len(), "admission line kept in the store");
                written = Some(now);
            }
            Err(err) => {
                // Written again at the next change.
                tracing::warn!(error = %err, "could not keep the admission line in the store");
                written = None;
            }
        }
    }
}

/// Writes the line as it is now: at a graceful stop, so a change the
/// keeper had not written yet is not lost.
pub async fn flush(sandbox: &dyn Provisioner, store: &Store) {
    let admission = sandbox.admission();
    if !admission.enabled() {
        return;
    }
    let now = members(admission);
    if let Err(err) = store.writer().run_script(script(&now)).await {
        tracing::warn!(error = %err, "could not keep the admission line in the store");
    }
}

/// Who is in line, first first, with the time each joined.
fn members(admission: &Admission) -> Vec<(LearnerId, i64)> {
    admission
        .waiting()
        .iter()
        .map(|w| (w.learner, w.since))
        .collect()
}

/// The statements that make the table hold `waiting` (first first).
fn script(waiting: &[(LearnerId, i64)]) -> Script {
    let mut script = Script::default();
    script.push("delete from admission_line", Vec::new());
    for (i, &(learner, since)) in waiting.iter().enumerate() {
        script.push(
            "insert into admission_line (learner_id, position, joined_at) values (?, ?, ?)",
            vec![
                Value::Integer(learner),
                Value::Integer(i as i64 + 1),
                Value::Integer(since),
            ],
        );
    }
    script
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// A fresh store with learner accounts of these names; their ids.
    async fn store_with_learners(names: &[&str]) -> (tempfile::TempDir, Store, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("pglab.db")).await.unwrap();
        let mut ids = Vec::new();
        for name in names {
            let id: i64 = sqlx::query_scalar(
                "insert into users (username, role) values (?, 'learner') returning id",
            )
            .bind(name)
            .fetch_one(store.pool())
            .await
            .unwrap();
            ids.push(id);
        }
        (dir, store, ids)
    }

    #[tokio::test]
    async fn the_script_writes_the_line_first_first_and_replaces_what_was_kept() {
        let (_dir, store, ids) = store_with_learners(&["a", "b", "c"]).await;
        let read = || async {
            sqlx::query_as::<_, (i64, i64, i64)>(
                "select learner_id, position, joined_at from admission_line order by position",
            )
            .fetch_all(store.pool())
            .await
            .unwrap()
        };
        let line = [(ids[2], 10), (ids[0], 20), (ids[1], 30)];
        store.writer().run_script(script(&line)).await.unwrap();
        assert_eq!(
            read().await,
            vec![(ids[2], 1, 10), (ids[0], 2, 20), (ids[1], 3, 30)]
        );
        store
            .writer()
            .run_script(script(&line[1..2]))
            .await
            .unwrap();
        assert_eq!(read().await, vec![(ids[0], 1, 20)]);
        // A learner removed leaves the line with their account.
        sqlx::query("delete from users where id = ?")
            .bind(ids[0])
            .execute(store.pool())
            .await
            .unwrap();
        assert!(read().await.is_empty());
    }

    #[tokio::test]
    async fn the_keeper_follows_joins_and_leaves_and_a_restore_reads_them_back() {
        let (_dir, store, ids) = store_with_learners(&["a", "b"]).await;
        let admission = Arc::new(Admission::default());
        let keeper = tokio::spawn({
            let (admission, store) = (admission.clone(), store.clone());
            async move { keep(&admission, &store, Vec::new()).await }
        });
        let kept = || async {
            sqlx::query_as::<_, (i64, i64)>(
                "select learner_id, position from admission_line order by position",
            )
            .fetch_all(store.pool())
            .await
            .unwrap()
        };
        let until = |want: Vec<(i64, i64)>| async move {
            let by = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let got = kept().await;
                if got == want || std::time::Instant::now() > by {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        // Two waiting learners (an admit that finds no place keeps them in).
        let waits: Vec<_> = ids
            .iter()
            .map(|&id| {
                let admission = admission.clone();
                tokio::spawn(async move {
                    admission
                        .admit(id, |_| {}, || async { Ok::<Option<()>, ()>(None) })
                        .await
                })
            })
            .collect();
        assert_eq!(until(vec![(ids[0], 1), (ids[1], 2)]).await.len(), 2);
        // The first leaves: the table follows.
        assert!(admission.cancel(ids[0]));
        assert_eq!(until(vec![(ids[1], 1)]).await, vec![(ids[1], 1)]);
        // Read back as a restart would.
        let read: Vec<(i64, i64)> =
            sqlx::query_as("select learner_id, joined_at from admission_line order by position")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let fresh = Admission::default();
        fresh.restore(&read);
        assert_eq!(fresh.position(ids[1]), Some(1));
        keeper.abort();
        for w in waits {
            w.abort();
        }
    }
}
