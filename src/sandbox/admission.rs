//! The admission queue: when a start cannot get a place (every node at its
//! running cap, or the classroom's total cap reached), the learner waits in
//! a first-come line instead of failing, is told "the classroom is full:
//! you are number N in line" as the line moves, and starts by itself when a
//! place frees.
//!
//! - [`Line`] is the pure core (unit-tested below): FIFO order, positions,
//!   who may try for a place now, cancel, and learners who went away
//!   (their request dropped: page closed) keeping their place for a grace
//!   period, so a page reload does not send them to the back.
//! - [`Admission`] wraps it for async callers: [`Admission::admit`] runs a
//!   backend's own "take a place if there is one" step whenever it is this
//!   learner's turn, and backends call [`Admission::slot_freed`] when a
//!   sandbox stops or is removed. The learner at the head also retries
//!   every few seconds, which catches places that appear without an event
//!   (a node added, a capacity label raised).
//!
//! Whose turn: after a place may have freed (a new *round*), waiters try in
//! line order; a waiter may try once every attached waiter ahead of it has
//! tried in this round and found nothing. So a learner whose own node is
//! full does not hold up one behind who can go to another node, and no one
//! jumps ahead of a waiter who could use the place.
//!
//! It serves every backend through [`crate::sandbox::Provisioner::admission`];
//! the swarm backend uses it (its places are per node and in total).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::LearnerId;

/// How long a learner whose start request went away keeps their place.
pub const GRACE: Duration = Duration::from_secs(60);
/// How often the head of the line retries without an event.
const POLL: Duration = Duration::from_secs(3);

/// What a waiting learner is told.
pub fn full_message(position: usize) -> String {
    format!("the classroom is full: you are number {position} in line")
}

/// What an instructor is told of a waiting learner.
pub fn instructor_message(position: usize) -> String {
    format!("waiting for a place, number {position}")
}

/// One learner in line, as instructors see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub learner: LearnerId,
    /// 1-based place in the whole line.
    pub position: usize,
    /// Unix time they joined.
    pub since: i64,
    /// Their start request went away (page closed); they keep their place
    /// for [`GRACE`] and take it back by starting again.
    pub away: bool,
}

#[derive(Clone, Debug)]
struct Entry {
    learner: LearnerId,
    id: u64,
    since: i64,
    away_since: Option<Instant>,
    /// When the learner last showed they still wait (joined, asked for
    /// their sandbox's state, started again): a start nobody waits for any
    /// more is let go (see `sandbox::line`).
    seen: Instant,
    /// The round in which this waiter last tried and found no place.
    tried: Option<u64>,
    /// Put back after a restart, and its start (already on its way) has not
    /// joined yet: a start request meanwhile must not start a second one.
    restored: bool,
}

/// The line itself: FIFO entries and the current round.
#[derive(Debug, Default)]
pub struct Line {
    entries: VecDeque<Entry>,
    round: u64,
    next_id: u64,
}

impl Line {
    /// Puts the learner at the end of the line, or back at their place when
    /// they are in it already (a reload while away). Returns the entry's id.
    pub fn join(&mut self, learner: LearnerId, now_unix: i64) -> u64 {
        if let Some(e) = self.entries.iter_mut().find(|e| e.learner == learner) {
            e.away_since = None;
            e.tried = None;
            e.restored = false;
            e.seen = Instant::now();
            return e.id;
        }
        self.next_id += 1;
        self.entries.push_back(Entry {
            learner,
            id: self.next_id,
            since: now_unix,
            away_since: None,
            seen: Instant::now(),
            tried: None,
            restored: false,
        });
        self.next_id
    }

    /// Puts back a learner who was in line before a restart, at the end
    /// (callers restore first first), with the time they first joined. The
    /// entry is away until the start the caller sends on for them joins
    /// (then it keeps this place; if it never does, the entry expires like
    /// any away one), but counts as waiting for [`Line::attached_position`]
    /// meanwhile. Nothing when they are in line already.
    pub fn restore(&mut self, learner: LearnerId, since: i64, now: Instant) {
        if self.entries.iter().any(|e| e.learner == learner) {
            return;
        }
        self.next_id += 1;
        self.entries.push_back(Entry {
            learner,
            id: self.next_id,
            since,
            away_since: Some(now),
            seen: now,
            tried: None,
            restored: true,
        });
    }

    /// Takes the learner out of the line (admitted, cancelled, signed out).
    pub fn leave(&mut self, learner: LearnerId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.learner != learner);
        self.entries.len() != before
    }

    /// The entry's request went away: it keeps its place for a while.
    pub fn away(&mut self, id: u64, now: Instant) -> bool {
        match self.entries.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.away_since = Some(now);
                true
            }
            None => false,
        }
    }

    /// The learner showed they still wait (at `now`).
    pub fn seen(&mut self, learner: LearnerId, now: Instant) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.learner == learner) {
            e.seen = e.seen.max(now);
        }
    }

    /// How long since the learner last showed they wait, while a start of
    /// theirs waits in line (attached); None otherwise.
    pub fn unseen_for(&self, learner: LearnerId, now: Instant) -> Option<Duration> {
        self.entries
            .iter()
            .find(|e| e.learner == learner && e.away_since.is_none())
            .map(|e| now.saturating_duration_since(e.seen))
    }

    /// Removes entries away for longer than `grace`; returns how many.
    pub fn expire(&mut self, now: Instant, grace: Duration) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| e.away_since.is_none_or(|t| now.duration_since(t) < grace));
        before - self.entries.len()
    }

    /// Whether the entry is still in line.
    pub fn holds(&self, id: u64) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// The learner's 1-based place, if in line.
    pub fn position(&self, learner: LearnerId) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.learner == learner)
            .map(|i| i + 1)
    }

    /// The learner's 1-based place while a start of theirs waits in line
    /// (their entry is attached, not away) or is on its way to it (the
    /// entry restored after a restart).
    pub fn attached_position(&self, learner: LearnerId) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.learner == learner && (e.away_since.is_none() || e.restored))
            .map(|i| i + 1)
    }

    /// Whether it is the learner's turn to try for a place: present, not
    /// away, not tried yet in this round, and every attached waiter ahead
    /// tried in this round.
    pub fn may_try(&self, learner: LearnerId) -> bool {
        for e in &self.entries {
            if e.learner == learner {
                return e.away_since.is_none() && e.tried != Some(self.round);
            }
            // A restored entry's start is on its way: nobody behind goes
            // first (it joins within moments, or expires with the grace).
            if (e.away_since.is_none() || e.restored) && e.tried != Some(self.round) {
                return false;
            }
        }
        false
    }

    /// Removes the learner's restored entry whose start will not come (it
    /// failed before it joined); false when there is none.
    pub fn drop_restored(&mut self, learner: LearnerId) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|e| !(e.learner == learner && e.restored));
        self.entries.len() != before
    }

    /// Whether the learner is the first attached waiter (the one who retries
    /// on a timer).
    pub fn is_head(&self, learner: LearnerId) -> bool {
        self.entries
            .iter()
            .find(|e| e.away_since.is_none())
            .is_some_and(|e| e.learner == learner)
    }

    /// The learner tried in this round and found no place.
    pub fn tried(&mut self, learner: LearnerId) {
        let round = self.round;
        if let Some(e) = self.entries.iter_mut().find(|e| e.learner == learner) {
            e.tried = Some(round);
        }
    }

    /// A place may have freed: a new round of tries begins.
    pub fn slot_freed(&mut self) {
        self.round += 1;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Everyone in line, first first.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| Waiting {
                learner: e.learner,
                position: i + 1,
                since: e.since,
                away: e.away_since.is_some(),
            })
            .collect()
    }
}

/// How an admission ended without a place.
#[derive(Debug)]
pub enum Refused<E> {
    /// The learner left the line (cancel, sign-out).
    Left,
    /// The backend's own step failed.
    Failed(E),
}

/// The line, shared by a backend's starts.
pub struct Admission {
    enabled: bool,
    line: Mutex<Line>,
    changes: watch::Sender<u64>,
    grace: Duration,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(GRACE)
    }
}

impl Admission {
    /// A working line; away learners keep their place for `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            enabled: true,
            line: Mutex::new(Line::default()),
            changes: watch::channel(0).0,
            grace,
        }
    }

    /// The line of a backend that does not queue (always empty).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new(GRACE)
        }
    }

    /// Whether the backend queues starts (and so never stops a busy
    /// sandbox to make room).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Runs `f` on the line with expired entries removed, and tells the
    /// waiters when anything changed.
    fn with<R>(&self, f: impl FnOnce(&mut Line) -> (R, bool)) -> R {
        let (r, changed) = {
            let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
            let expired = line.expire(Instant::now(), self.grace) > 0;
            let (r, changed) = f(&mut line);
            (r, changed || expired)
        };
        if changed {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        r
    }

    /// A place may have freed (a sandbox stopped or removed): the waiters
    /// try again, first first.
    pub fn slot_freed(&self) {
        self.with(|l| {
            l.slot_freed();
            ((), true)
        });
    }

    /// Takes the learner out of the line; their waiting start ends with
    /// [`Refused::Left`]. False when they were not in line.
    pub fn cancel(&self, learner: LearnerId) -> bool {
        self.with(|l| {
            let left = l.leave(learner);
            (left, left)
        })
    }

    /// The learner's place in line, if waiting.
    pub fn position(&self, learner: LearnerId) -> Option<usize> {
        self.with(|l| (l.position(learner), false))
    }

    /// The learner's place while a start of theirs waits in line (not
    /// away): a new start request need not start again.
    pub fn waiting_position(&self, learner: LearnerId) -> Option<usize> {
        self.with(|l| (l.attached_position(learner), false))
    }

    /// The learner is still there (asked for their sandbox's state, or
    /// started again): a start of theirs in line is kept.
    pub fn seen(&self, learner: LearnerId) {
        self.with(|l| (l.seen(learner, Instant::now()), false))
    }

    /// How long since the learner last showed they wait, while a start of
    /// theirs waits in line.
    pub fn unseen_for(&self, learner: LearnerId) -> Option<Duration> {
        self.with(|l| (l.unseen_for(learner, Instant::now()), false))
    }

    /// Everyone in line, first first.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.with(|l| (l.waiting(), false))
    }

    /// Puts back, first first, the learners (with the Unix time they
    /// joined) who were in line before a restart: each keeps their place
    /// for the grace period, and a start of theirs takes it back.
    pub fn restore(&self, waiting: &[(LearnerId, i64)]) {
        let now = Instant::now();
        self.with(|l| {
            for &(learner, since) in waiting {
                l.restore(learner, since, now);
            }
            ((), !waiting.is_empty())
        });
    }

    /// Takes out a restored learner whose start failed before it joined
    /// (see [`Line::restore`]), so they do not hold up the line.
    pub fn drop_restored(&self, learner: LearnerId) {
        self.with(|l| {
            let dropped = l.drop_restored(learner);
            ((), dropped)
        });
    }

    /// Ticks whenever the line may have changed (who is in it, their
    /// places, their tries).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many are in line.
    pub fn len(&self) -> usize {
        self.with(|l| (l.len(), false))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gets the learner a place: joins the line, and whenever it is their
    /// turn runs `try_slot` (the backend's "take a place if there is one":
    /// `Ok(Some(..))` took it, `Ok(None)` found none). `report` hears the
    /// learner's place each time it changes while they wait, once a try of
    /// theirs found no place (waiting a moment for one's turn behind other
    /// starts is not waiting for a place: nobody is told "full"). Ends when
    /// `try_slot` takes a place or fails, or the learner leaves the line.
    /// Dropping the future (the request went away) leaves them in line,
    /// away, for the grace period.
    pub async fn admit<T, E, F, Fut>(
        &self,
        learner: LearnerId,
        mut report: impl FnMut(usize),
        mut try_slot: F,
    ) -> Result<T, Refused<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        if !self.enabled {
            return match try_slot().await {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Err(Refused::Left),
                Err(e) => Err(Refused::Failed(e)),
            };
        }
        let mut rx = self.changes.subscribe();
        let id = self.with(|l| (l.join(learner, super::unix_now()), true));
        let mut ticket = Ticket {
            admission: self,
            id,
            done: false,
        };
        let mut told = 0;
        let mut found_none = false;
        loop {
            rx.borrow_and_update();
            let (holds, turn, position) = self.with(|l| {
                (
                    (l.holds(id), l.may_try(learner), l.position(learner)),
                    false,
                )
            });
            if !holds {
                ticket.done = true;
                return Err(Refused::Left);
            }
            if turn {
                match try_slot().await {
                    Ok(Some(t)) => {
                        ticket.leave();
                        return Ok(t);
                    }
                    Ok(None) => {
                        found_none = true;
                        self.with(|l| {
                            l.tried(learner);
                            ((), true)
                        });
                    }
                    Err(e) => {
                        ticket.leave();
                        return Err(Refused::Failed(e));
                    }
                }
                continue;
            }
            if let Some(p) = position
                && found_none
                && p != told
            {
                report(p);
                told = p;
            }
            if tokio::time::timeout(POLL, rx.changed()).await.is_err()
                && self.with(|l| (l.is_head(learner), false))
            {
                self.slot_freed();
            }
        }
    }
}

/// A learner's entry while their `admit` runs; dropped early, the learner
/// is marked away (their place kept for the grace period).
struct Ticket<'a> {
    admission: &'a Admission,
    id: u64,
    done: bool,
}

impl Ticket<'_> {
    fn leave(&mut self) {
        let id = self.id;
        self.admission.with(|l| {
            let learner = l.entries.iter().find(|e| e.id == id).map(|e| e.learner);
            let left = learner.is_some_and(|learner| l.leave(learner));
            ((), left)
        });
        self.done = true;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            self.admission.with(|l| ((), l.away(id, Instant::now())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn first_come_first_placed_and_positions_move_up() {
        let mut line = Line::default();
        line.join(10, 0);
        line.join(11, 0);
        line.join(12, 0);
        assert_eq!(line.position(11), Some(2));
        assert!(line.may_try(10) && !line.may_try(11), "only the head tries");
        line.tried(10);
        assert!(
            line.may_try(11),
            "the next tries once the head found nothing"
        );
        assert!(!line.may_try(10), "no second try in one round");
        line.tried(11);
        line.tried(12);
        assert!(!line.may_try(10) && !line.may_try(12));
        line.slot_freed();
        assert!(
            line.may_try(10) && !line.may_try(11),
            "a new round: head first"
        );
        assert!(line.leave(10));
        assert_eq!(line.position(11), Some(1));
        assert_eq!(line.position(12), Some(2));
        assert_eq!(line.position(10), None);
        assert!(line.may_try(11));
    }

    #[test]
    fn a_restored_line_keeps_order_and_join_times_until_starts_take_it_back() {
        let mut line = Line::default();
        let t0 = Instant::now();
        line.restore(7, 100, t0);
        line.restore(8, 200, t0);
        line.restore(7, 300, t0);
        assert_eq!(line.len(), 2, "a learner is restored once");
        let w = line.waiting();
        assert_eq!(
            w.iter()
                .map(|w| (w.learner, w.position, w.since, w.away))
                .collect::<Vec<_>>(),
            vec![(7, 1, 100, true), (8, 2, 200, true)]
        );
        assert!(!line.may_try(7) && !line.may_try(8), "no start waits yet");
        assert_eq!(
            line.attached_position(8),
            Some(2),
            "but one is on its way: a start request meanwhile starts no second"
        );
        // A newcomer before any restored start came back still goes behind,
        // and does not try before them.
        line.join(9, 400);
        assert_eq!(line.position(9), Some(3));
        assert!(!line.may_try(9), "the restored go first");
        // The second's start comes back first: it takes its own place.
        line.join(8, 500);
        assert_eq!(line.attached_position(8), Some(2));
        assert!(line.is_head(8));
        assert!(!line.may_try(8), "the first's start is still on its way");
        line.join(7, 600);
        assert_eq!(line.position(7), Some(1));
        assert!(line.may_try(7) && line.is_head(7));
        assert_eq!(line.waiting()[0].since, 100, "joined when first in line");
        line.tried(7);
        line.tried(8);
        assert!(line.may_try(9), "once those ahead tried, the newcomer may");
        // A restored start that failed before joining frees its place.
        let mut line = Line::default();
        line.restore(7, 100, t0);
        line.join(9, 400);
        assert!(!line.may_try(9));
        assert!(line.drop_restored(7));
        assert!(line.may_try(9));
        line.join(7, 700);
        assert!(!line.drop_restored(7), "a joined entry is not dropped so");
        // One whose start never comes back is forgotten after the grace.
        let mut line = Line::default();
        line.restore(7, 100, t0);
        assert_eq!(line.expire(t0 + GRACE, GRACE), 1);
        assert!(line.is_empty());
    }

    #[test]
    fn rejoining_keeps_the_place_and_away_entries_expire() {
        let mut line = Line::default();
        let t0 = Instant::now();
        let a = line.join(1, 0);
        line.join(2, 0);
        line.join(3, 0);
        assert!(line.away(a, t0));
        assert!(line.may_try(2), "an away learner is skipped");
        assert!(!line.is_head(1) && line.is_head(2));
        assert_eq!(line.position(2), Some(2), "but keeps their place");
        assert_eq!(line.attached_position(1), None, "no start of theirs waits");
        assert_eq!(line.attached_position(2), Some(2));
        assert_eq!(line.join(1, 5), a, "a reload takes the same place back");
        assert_eq!(line.position(1), Some(1));
        assert_eq!(line.attached_position(1), Some(1));
        // Seen: only an attached entry counts how long since, and a late
        // report never moves the time back.
        let t1 = Instant::now() + Duration::from_secs(100);
        line.seen(1, t1);
        line.seen(1, t1 - Duration::from_secs(50));
        assert_eq!(
            line.unseen_for(1, t1 + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(line.unseen_for(9, t1), None, "not in line");
        assert!(line.may_try(1) && !line.may_try(2));
        line.away(a, t0);
        assert_eq!(line.unseen_for(1, t1), None, "away: no start waits");
        assert_eq!(line.expire(t0 + Duration::from_secs(30), GRACE), 0);
        assert_eq!(line.expire(t0 + GRACE, GRACE), 1);
        assert_eq!(line.position(2), Some(1));
        assert!(!line.holds(a));
        assert_eq!(
            line.waiting(),
            vec![
                Waiting {
                    learner: 2,
                    position: 1,
                    since: 0,
                    away: false
                },
                Waiting {
                    learner: 3,
                    position: 2,
                    since: 0,
                    away: false
                }
            ]
        );
    }

    /// A pool of `places` that `try_slot` takes from.
    fn taker(
        places: &Arc<AtomicUsize>,
    ) -> impl FnMut() -> std::future::Ready<Result<Option<()>, ()>> + use<> {
        let places = places.clone();
        move || {
            let got = places
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            std::future::ready(Ok(got.then_some(())))
        }
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not met within 2 s");
    }

    #[tokio::test]
    async fn waiters_are_told_their_number_and_woken_in_order() {
        let adm = Arc::new(Admission::default());
        let places = Arc::new(AtomicUsize::new(1));
        // The first takes the one place at once, without waiting.
        adm.admit(1, |_| panic!("no wait"), taker(&places))
            .await
            .unwrap();
        let told: Arc<Mutex<Vec<(i64, usize)>>> = Arc::default();
        let mut tasks = Vec::new();
        for learner in [2, 3] {
            let (a, told, places) = (adm.clone(), told.clone(), places.clone());
            tasks.push(tokio::spawn(async move {
                let t = told.clone();
                a.admit(
                    learner,
                    move |p| t.lock().unwrap().push((learner, p)),
                    taker(&places),
                )
                .await
            }));
            let adm = adm.clone();
            until(move || adm.position(learner).is_some()).await;
        }
        until(|| told.lock().unwrap().len() == 2).await;
        assert_eq!(*told.lock().unwrap(), vec![(2, 1), (3, 2)]);
        // A place frees: the first in line gets it, the next moves up.
        places.fetch_add(1, Ordering::SeqCst);
        adm.slot_freed();
        until(|| tasks[0].is_finished()).await;
        until(|| told.lock().unwrap().contains(&(3, 1))).await;
        assert!(!tasks[1].is_finished());
        assert_eq!(adm.position(3), Some(1));
        // Cancel ends the wait with Left and empties the line.
        assert!(adm.cancel(3));
        let left = tasks.pop().unwrap().await.unwrap();
        assert!(matches!(left, Err(Refused::Left)));
        assert!(tasks.pop().unwrap().await.unwrap().is_ok());
        assert!(adm.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_wait_keeps_the_place_until_the_grace_ends() {
        let adm = Arc::new(Admission::new(Duration::from_millis(300)));
        let none = || std::future::ready(Ok::<Option<()>, ()>(None));
        let waiter = {
            let adm = adm.clone();
            tokio::spawn(async move { adm.admit(7, |_| {}, none).await })
        };
        let other = {
            let adm = adm.clone();
            tokio::spawn(async move { adm.admit(8, |_| {}, none).await })
        };
        {
            let adm = adm.clone();
            until(move || adm.len() == 2).await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(adm.position(7), Some(1), "kept while away");
        assert!(adm.waiting()[0].away);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(adm.position(7), None, "gone after the grace");
        assert_eq!(adm.position(8), Some(1));
        adm.cancel(8);
        assert!(matches!(other.await.unwrap(), Err(Refused::Left)));
    }

    #[tokio::test]
    async fn waiting_for_ones_turn_behind_other_starts_is_not_told() {
        let adm = Arc::new(Admission::default());
        let places = Arc::new(AtomicUsize::new(3));
        let mut tasks = Vec::new();
        for learner in [1, 2, 3] {
            let (a, places) = (adm.clone(), places.clone());
            tasks.push(tokio::spawn(async move {
                let mut take = taker(&places);
                a.admit(
                    learner,
                    |p| panic!("told number {p} while places were free"),
                    move || {
                        let got = take();
                        async move {
                            // A try that takes a while (placing a service).
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            got.await
                        }
                    },
                )
                .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert!(adm.is_empty());
    }

    #[tokio::test]
    async fn a_failing_try_leaves_the_line_with_its_error() {
        let adm = Admission::default();
        let r: Result<(), _> = adm
            .admit(
                1,
                |_| {},
                || std::future::ready(Err::<Option<()>, _>("down")),
            )
            .await;
        assert!(matches!(r, Err(Refused::Failed("down"))));
        assert!(adm.is_empty());
    }
}
