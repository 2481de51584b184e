//! The learner's own PostgreSQL server log, live: one follower task per
//! learner reads the backend's log stream ([`Provisioner::log_follow`]: the
//! container's output through the engine, or the cluster's `server.log`),
//! numbers each line, classifies its level and keeps the last
//! [`RING_LINES`] in memory (older ones are dropped), and hands new lines to
//! every subscriber (the SSE route) as they come.
//!
//! A follower starts on the first request for a learner's log and ends when
//! nobody has asked for it for [`IDLE`] and no stream is open; the next
//! request starts a new one that resumes after the last line it kept (the
//! backend's cursor), so a gap is filled from the source, not lost.
//! Nothing here takes a learner id from a request: the web layer passes the
//! signed-in learner's.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use tokio::sync::broadcast;

use super::{LearnerId, Provisioner};

/// Lines kept per learner; older ones are dropped.
pub const RING_LINES: usize = 5000;
/// Longest line kept (longer ones are cut, with a mark).
const MAX_LINE: usize = 8 * 1024;
/// How long a follower runs with nobody asking.
const IDLE: Duration = Duration::from_secs(120);
/// Lines asked of the backend when a follower starts.
pub const TAIL: usize = RING_LINES;

/// One physical line of the backend's log, with where it ends (an opaque
/// cursor: the engine's timestamp, or a byte offset in `server.log`).
#[derive(Clone, Debug)]
pub struct RawLogLine {
    pub cursor: String,
    pub text: String,
}

/// A backend's log stream: lines in order, until the server stops (Docker)
/// or for as long as it is read (local).
pub type LogStream = BoxStream<'static, RawLogLine>;

/// One line as the API answers it.
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    /// 1, 2, 3... per learner, for `?since=`.
    pub seq: u64,
    /// Unix milliseconds at which pglab read it.
    pub time: i64,
    /// "log", "error", "warning", "fatal", "panic", "notice", "info",
    /// "debug"; DETAIL, HINT, STATEMENT and continuation lines carry the
    /// level of the message they belong to.
    pub level: &'static str,
    pub text: String,
}

/// The severities PostgreSQL writes after its line prefix, and our names.
const LEVELS: [(&str, &str); 12] = [
    ("PANIC:", "panic"),
    ("FATAL:", "fatal"),
    ("ERROR:", "error"),
    ("WARNING:", "warning"),
    ("NOTICE:", "notice"),
    ("INFO:", "info"),
    ("LOG:", "log"),
    ("DEBUG1:", "debug"),
    ("DEBUG2:", "debug"),
    ("DEBUG3:", "debug"),
    ("DEBUG4:", "debug"),
    ("DEBUG5:", "debug"),
];
/// Parts of a message on their own line: they take the message's level.
const PARTS: [&str; 6] = [
    "DETAIL:",
    "HINT:",
    "STATEMENT:",
    "CONTEXT:",
    "QUERY:",
    "LOCATION:",
];

/// The level of a line, given the level of the line before it.
pub fn classify(text: &str, previous: &'static str) -> &'static str {
    if text.starts_with([' ', '\t']) {
        return previous;
    }
    // The earliest severity word followed by two spaces wins (the prefix
    // `%m [%p] ` comes first; the message text may contain such words).
    let mut best: Option<(usize, &'static str)> = None;
    for (word, name) in LEVELS {
        if let Some(at) = text.find(&format!("{word}  "))
            && best.is_none_or(|(b, _)| at < b)
        {
            best = Some((at, name));
        }
    }
    for word in PARTS {
        if let Some(at) = text.find(&format!("{word}  "))
            && best.is_none_or(|(b, _)| at < b)
        {
            best = Some((at, previous));
        }
    }
    best.map_or("log", |(_, level)| level)
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    next_seq: u64,
    level: &'static str,
    /// The backend cursor of the last line kept.
    cursor: Option<String>,
}

/// One learner's log: the ring and the live feed.
pub struct LearnerLog {
    ring: std::sync::Mutex<Ring>,
    tx: broadcast::Sender<LogLine>,
    /// Unix seconds of the last request.
    touched: AtomicI64,
    following: AtomicBool,
}

impl LearnerLog {
    fn new() -> Self {
        Self {
            ring: std::sync::Mutex::new(Ring {
                next_seq: 1,
                level: "log",
                ..Default::default()
            }),
            tx: broadcast::channel(1024).0,
            touched: AtomicI64::new(super::unix_now()),
            following: AtomicBool::new(false),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines with a sequence number above `seq`, oldest first (at most the
    /// ring's).
    pub fn since(&self, seq: u64) -> Vec<LogLine> {
        self.ring()
            .lines
            .iter()
            .filter(|l| l.seq > seq)
            .cloned()
            .collect()
    }

    /// The live feed of new lines; subscribe before reading [`Self::since`]
    /// and skip what it already gave, so that no line falls in between.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }

    /// Waits up to `limit` for a just-started follower's first lines.
    pub async fn wait_filled(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.ring().lines.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn push(&self, raw: RawLogLine) {
        let mut ring = self.ring();
        let mut text = raw.text;
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" …(cut)");
        }
        let level = classify(&text, ring.level);
        ring.level = level;
        let line = LogLine {
            seq: ring.next_seq,
            time: unix_millis(),
            level,
            text,
        };
        ring.next_seq += 1;
        ring.cursor = Some(raw.cursor);
        if ring.lines.len() == RING_LINES {
            ring.lines.pop_front();
        }
        ring.lines.push_back(line.clone());
        // Sent under the lock, so subscribers see lines in seq order.
        let _ = self.tx.send(line);
    }

    fn idle(&self) -> bool {
        self.tx.receiver_count() == 0
            && super::unix_now() - self.touched.load(Ordering::Relaxed) > IDLE.as_secs() as i64
    }
}

/// Every learner's log.
#[derive(Default)]
pub struct LogHub {
    learners: std::sync::Mutex<HashMap<LearnerId, Arc<LearnerLog>>>,
}

impl LogHub {
    /// The learner's log, with its follower running (started now if
    /// needed). Counts as a request for the idle timeout.
    pub fn open(&self, sandbox: &Arc<dyn Provisioner>, learner: LearnerId) -> Arc<LearnerLog> {
        let log = {
            let mut map = self.learners.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(learner)
                .or_insert_with(|| Arc::new(LearnerLog::new()))
                .clone()
        };
        log.touched.store(super::unix_now(), Ordering::Relaxed);
        if !log.following.swap(true, Ordering::AcqRel) {
            tokio::spawn(follow(sandbox.clone(), learner, log.clone()));
        }
        log
    }
}

/// Reads the backend's stream into the learner's ring until idle; a stream
/// that ends (the server stopped, the container was re-created) or cannot
/// open (no sandbox yet) is opened again a moment later.
async fn follow(sandbox: Arc<dyn Provisioner>, learner: LearnerId, log: Arc<LearnerLog>) {
    loop {
        follow_until_idle(&sandbox, learner, &log).await;
        log.following.store(false, Ordering::Release);
        // A request that came in while we stopped: carry on.
        if log.idle() || log.following.swap(true, Ordering::AcqRel) {
            break;
        }
    }
}

async fn follow_until_idle(sandbox: &Arc<dyn Provisioner>, learner: LearnerId, log: &LearnerLog) {
    let mut check = tokio::time::interval(Duration::from_secs(10));
    loop {
        if log.idle() {
            return;
        }
        let cursor = log.ring().cursor.clone();
        match sandbox.log_follow(learner, cursor, TAIL).await {
            Ok(mut stream) => loop {
                tokio::select! {
                    line = stream.next() => match line {
                        Some(raw) => log.push(raw),
                        None => break,
                    },
                    _ = check.tick() => if log.idle() { return },
                }
            },
            Err(err) => tracing::debug!(learner, %err, "sandbox log not readable yet"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Splits a growing byte buffer into complete lines, keeping the rest.
pub fn take_lines(buf: &mut Vec<u8>) -> Vec<String> {
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let rest = buf.split_off(end + 1);
    let done = std::mem::replace(buf, rest);
    String::from_utf8_lossy(&done)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_prefix_and_parts_inherit() {
        let e = "2026-12-03 06:00:00.123 UTC [57] ERROR:  deadlock detected";
        assert_eq!(classify(e, "log"), "error");
        let d = "2026-12-03 06:00:00.123 UTC [57] DETAIL:  Process 57 waits for ShareLock";
        assert_eq!(classify(d, "error"), "error");
        assert_eq!(classify("\tProcess 58: update t set", "error"), "error");
        let l = "2026-12-03 06:00:00.123 UTC [57] LOG:  statement: select 'ERROR:  x'";
        assert_eq!(classify(l, "error"), "log");
        assert_eq!(classify("pglab entrypoint: initdb", "error"), "log");
    }

    #[test]
    fn the_ring_keeps_the_last_lines_in_order() {
        let log = LearnerLog::new();
        for i in 0..RING_LINES + 10 {
            log.push(RawLogLine {
                cursor: i.to_string(),
                text: format!("line {i}"),
            });
        }
        let all = log.since(0);
        assert_eq!(all.len(), RING_LINES);
        assert_eq!(all[0].seq, 11);
        assert_eq!(all.last().map(|l| l.seq), Some(RING_LINES as u64 + 10));
        assert_eq!(log.since(RING_LINES as u64 + 8).len(), 2);
        assert_eq!(log.ring().cursor.as_deref(), Some("5009"));
    }

    #[test]
    fn partial_lines_wait_for_their_end() {
        let mut buf = b"one\ntwo\nthr".to_vec();
        assert_eq!(take_lines(&mut buf), ["one", "two"]);
        assert_eq!(buf, b"thr");
        buf.extend_from_slice(b"ee\n");
        assert_eq!(take_lines(&mut buf), ["three"]);
        assert!(buf.is_empty());
    }
}
