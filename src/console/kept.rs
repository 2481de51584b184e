//! The whole of what the console cut for the browser: when a statement
//! returned more rows than the row cap or values longer than the value cap,
//! its every row, uncut, is kept here for a while so that the learner can
//! ask for it ("show all") as psql would have printed it.
//!
//! Memory stays bounded: what one run may keep is capped by the console's
//! `--console-keep-bytes` (per learner as well), and the whole server's by
//! `--console-keep-total-bytes`; past either, the oldest kept results go
//! first. Kept results also expire ([`KEEP_FOR`]). Each belongs to the
//! learner whose run made it: another learner's id finds nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sandbox::LearnerId;

/// How long a kept result stays available.
pub const KEEP_FOR: Duration = Duration::from_secs(30 * 60);

/// Every row of one statement, values uncut (`None` is SQL NULL).
#[derive(Clone, Debug, Default)]
pub struct FullRows {
    pub rows: Vec<Vec<Option<String>>>,
}

impl FullRows {
    /// Bytes this result holds (values plus a little per row).
    pub fn bytes(&self) -> usize {
        self.rows.iter().map(|r| row_bytes(r)).sum()
    }
}

/// Bytes one row counts for in the keep budgets: its values and what
/// holding them costs (the row's vector, each value's slot and allocation),
/// so that a budget bounds the memory of many short rows too.
pub fn row_bytes(row: &[Option<String>]) -> usize {
    row.iter().flatten().map(String::len).sum::<usize>() + 24 + 40 * row.len()
}

/// One page of a kept result.
#[derive(Debug, Serialize)]
pub struct Page {
    pub offset: usize,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows of the statement in all.
    pub total_rows: usize,
    /// Where the next page starts, `None` after the last row.
    pub next_offset: Option<usize>,
}

struct Entry {
    learner: LearnerId,
    rows: Arc<FullRows>,
    bytes: usize,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, usize), Entry>,
    /// Keys, oldest first.
    order: VecDeque<(String, usize)>,
    bytes: usize,
    by_learner: HashMap<LearnerId, usize>,
}

impl Inner {
    fn remove(&mut self, key: &(String, usize)) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.bytes;
            if let Some(b) = self.by_learner.get_mut(&e.learner) {
                *b -= e.bytes;
                if *b == 0 {
                    self.by_learner.remove(&e.learner);
                }
            }
        }
    }
}

/// The server's kept results.
pub struct Kept {
    per_learner: usize,
    total: usize,
    inner: Mutex<Inner>,
}

impl Kept {
    /// Keeps at most `per_learner` bytes for each learner and `total` for
    /// the server (0 keeps nothing).
    pub fn new(per_learner: usize, total: usize) -> Self {
        Self {
            per_learner: per_learner.min(total),
            total,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Bytes one run may keep (what a learner may hold at once).
    pub fn run_budget(&self) -> usize {
        self.per_learner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps statement `index` of run `run` for `learner`, making room by
    /// dropping the oldest kept results (the learner's own first). False
    /// when it is larger than a learner may keep.
    pub fn keep(&self, learner: LearnerId, run: &str, index: usize, rows: FullRows) -> bool {
        let bytes = rows.bytes();
        if bytes > self.per_learner {
            return false;
        }
        let key = (run.to_string(), index);
        let mut inner = self.lock();
        inner.remove(&key);
        while inner.by_learner.get(&learner).copied().unwrap_or(0) + bytes > self.per_learner {
            let Some(pos) = inner
                .order
                .iter()
                .position(|k| inner.entries.get(k).is_some_and(|e| e.learner == learner))
            else {
                break;
            };
            if let Some(old) = inner.order.remove(pos) {
                inner.remove(&old);
            }
        }
        while inner.bytes + bytes > self.total {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.remove(&old);
        }
        inner.order.retain(|k| k != &key);
        inner.order.push_back(key.clone());
        inner.bytes += bytes;
        *inner.by_learner.entry(learner).or_default() += bytes;
        inner.entries.insert(
            key,
            Entry {
                learner,
                rows: Arc::new(rows),
                bytes,
                at: Instant::now(),
            },
        );
        true
    }

    /// Rows `offset..` of a kept result of `learner`'s: at most `limit`
    /// rows and about `max_bytes` of values (always at least one row).
    /// `None` when nothing is kept under that name for this learner.
    pub fn page(
        &self,
        learner: LearnerId,
        run: &str,
        index: usize,
        offset: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Option<Page> {
        let rows = {
            let inner = self.lock();
            let e = inner.entries.get(&(run.to_string(), index))?;
            if e.learner != learner || e.at.elapsed() > KEEP_FOR {
                return None;
            }
            e.rows.clone()
        };
        let total_rows = rows.rows.len();
        let start = offset.min(total_rows);
        let mut out = Vec::new();
        let mut bytes = 0;
        for row in rows.rows[start..].iter().take(limit.max(1)) {
            if !out.is_empty() && bytes + row_bytes(row) > max_bytes {
                break;
            }
            bytes += row_bytes(row);
            out.push(row.clone());
        }
        let end = start + out.len();
        Some(Page {
            offset: start,
            rows: out,
            total_rows,
            next_offset: (end < total_rows).then_some(end),
        })
    }

    /// Drops what expired.
    pub fn sweep(&self) {
        let mut inner = self.lock();
        let old: Vec<(String, usize)> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.at.elapsed() > KEEP_FOR)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            inner.remove(k);
        }
        inner.order.retain(|k| !old.contains(k));
    }

    /// Bytes kept in all.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, width: usize) -> FullRows {
        FullRows {
            rows: (0..n)
                .map(|i| vec![Some(format!("{i:0width$}")), None])
                .collect(),
        }
    }

    #[test]
    fn pages_follow_offsets_and_byte_caps() {
        let kept = Kept::new(1 << 20, 1 << 20);
        assert!(kept.keep(1, "r", 0, rows(25, 10)));
        let p = kept.page(1, "r", 0, 0, 10, 1 << 20).unwrap();
        assert_eq!(p.rows.len(), 10);
        assert_eq!(p.next_offset, Some(10));
        assert_eq!(p.rows[3][0].as_deref(), Some("0000000003"));
        assert_eq!(p.rows[3][1], None);
        let p = kept.page(1, "r", 0, 20, 10, 1 << 20).unwrap();
        assert_eq!((p.rows.len(), p.next_offset), (5, None));
        // A byte cap smaller than one row still gives one.
        let p = kept.page(1, "r", 0, 0, 10, 1).unwrap();
        assert_eq!((p.rows.len(), p.next_offset), (1, Some(1)));
        // Past the end: empty, no next page.
        let p = kept.page(1, "r", 0, 99, 10, 1 << 20).unwrap();
        assert!(p.rows.is_empty() && p.next_offset.is_none());
    }

    #[test]
    fn another_learner_finds_nothing() {
        let kept = Kept::new(1 << 20, 1 << 20);
        kept.keep(1, "r", 0, rows(3, 4));
        assert!(kept.page(2, "r", 0, 0, 10, 1 << 20).is_none());
        assert!(kept.page(1, "r", 1, 0, 10, 1 << 20).is_none());
        assert!(kept.page(1, "other", 0, 0, 10, 1 << 20).is_none());
    }

    #[test]
    fn budgets_drop_the_oldest_first() {
        let one = rows(10, 100).bytes();
        let kept = Kept::new(2 * one, 3 * one);
        assert!(kept.keep(1, "a", 0, rows(10, 100)));
        assert!(kept.keep(1, "b", 0, rows(10, 100)));
        // The learner's third pushes out their first.
        assert!(kept.keep(1, "c", 0, rows(10, 100)));
        assert!(kept.page(1, "a", 0, 0, 1, 1).is_none());
        assert!(kept.page(1, "b", 0, 0, 1, 1).is_some());
        // Another learner's push the server past its total: the oldest goes.
        assert!(kept.keep(2, "d", 0, rows(10, 100)));
        assert!(kept.keep(2, "e", 0, rows(10, 100)));
        assert!(kept.page(1, "b", 0, 0, 1, 1).is_none());
        assert!(kept.page(1, "c", 0, 0, 1, 1).is_some());
        assert_eq!(kept.bytes(), 3 * one);
        // Too large for any learner: refused, nothing dropped.
        assert!(!kept.keep(3, "f", 0, rows(30, 100)));
        assert_eq!(kept.bytes(), 3 * one);
        // Nothing kept at all with a zero budget.
        let none = Kept::new(0, 0);
        assert!(!none.keep(1, "a", 0, rows(1, 1)));
    }
}
