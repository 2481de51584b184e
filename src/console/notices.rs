//! NOTICE and WARNING messages of learners' statements, with every field the
//! server sends.
//!
//! sqlx 0.8 keeps a NoticeResponse to itself (it only logs the message text),
//! so the console reads them off the wire instead: [`super::relay`] sits
//! between sqlx and the sandbox, and hands each NoticeResponse's body to
//! [`NoticeQueue::push_frame`], which decodes its fields ([`Notice::decode`])
//! into the connection's queue. Messages of one connection arrive in the
//! order the server sent them, and always before the ReadyForQuery that ends
//! their statement, so the runner clears the queue before a statement and
//! takes it after: each notice lands on the statement that caused it.
//!
//! Memory stays bounded whatever a statement raises: at most [`MAX_KEPT`]
//! notices and [`MAX_KEPT_BYTES`] of their text per statement are kept, the
//! rest counted and reported in one last notice.

use std::sync::Mutex;

use serde::Serialize;

/// Notices kept per statement (a loop of `RAISE NOTICE` may send millions).
pub const MAX_KEPT: usize = 10_000;
/// Bytes of notice text kept per statement.
pub const MAX_KEPT_BYTES: usize = 8 << 20;
/// Bytes of one NoticeResponse read (a longer one is cut there).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// One message the server sent while a statement ran: the fields of a
/// NoticeResponse (or a note of pglab's own, with only severity and
/// message).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `NOTICE`, `WARNING`, `INFO`, `DEBUG`, `LOG` (as the server words it).
    pub severity: String,
    /// The SQLSTATE (`00000`, `01000`...); empty for pglab's own notes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sqlstate: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// 1-based character position in the statement (psql's caret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// An internally generated query and the 1-based position in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_position: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_query: Option<String>,
    /// Where it was raised (the server's CONTEXT: a function, a DO block);
    /// psql prints it for errors only, unless `SHOW_CONTEXT` is `always`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The server's source location, `routine, file:line` (psql's verbose
    /// `LOCATION:` line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Notice {
    /// A note of pglab's own (no SQLSTATE, no other field).
    pub fn note(severity: &str, message: impl Into<String>) -> Self {
        Self {
            severity: severity.to_string(),
            message: message.into(),
            ..Self::default()
        }
    }

    /// Decodes the body of a NoticeResponse (after its type byte and
    /// length): fields of one code byte and a NUL-terminated string, ended
    /// by a NUL. Unknown codes are skipped, as the protocol asks; a body cut
    /// short keeps what it has. Text is UTF-8 (sqlx sets `client_encoding`).
    pub fn decode(body: &[u8]) -> Self {
        let mut n = Self::default();
        let (mut severity, mut plain_severity) = (None, None);
        let (mut file, mut line, mut routine) = (None, None, None);
        let mut rest = body;
        while let Some((&code, tail)) = rest.split_first() {
            if code == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let value = String::from_utf8_lossy(&tail[..end]).into_owned();
            rest = tail.get(end + 1..).unwrap_or_default();
            match code {
                b'S' => severity = Some(value),
                b'V' => plain_severity = Some(value),
                b'C' => n.sqlstate = value,
                b'M' => n.message = value,
                b'D' => n.detail = Some(value),
                b'H' => n.hint = Some(value),
                b'P' => n.position = value.parse().ok(),
                b'p' => n.internal_position = value.parse().ok(),
                b'q' => n.internal_query = Some(value),
                b'W' => n.context = Some(value),
                b's' => n.schema = Some(value),
                b't' => n.table = Some(value),
                b'c' => n.column = Some(value),
                b'd' => n.data_type = Some(value),
                b'n' => n.constraint = Some(value),
                b'F' => file = Some(value),
                b'L' => line = Some(value),
                b'R' => routine = Some(value),
                _ => {}
            }
        }
        n.severity = severity
            .or(plain_severity)
            .unwrap_or_else(|| "NOTICE".into());
        n.location = match (routine, file, line) {
            (Some(r), Some(f), Some(l)) => Some(format!("{r}, {f}:{l}")),
            (None, Some(f), Some(l)) => Some(format!("{f}:{l}")),
            _ => None,
        };
        n
    }

    fn bytes(&self) -> usize {
        let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        self.message.len()
            + opt(&self.detail)
            + opt(&self.hint)
            + opt(&self.internal_query)
            + opt(&self.context)
            + 64
    }
}

/// The notices of one connection not yet taken by a statement, filled by
/// its relay.
#[derive(Debug, Default)]
pub struct NoticeQueue {
    inner: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    kept: Vec<Notice>,
    bytes: usize,
    dropped: u64,
}

impl NoticeQueue {
    /// Decodes a NoticeResponse body and queues it (or counts it, past the
    /// caps).
    pub fn push_frame(&self, body: &[u8]) {
        self.push(Notice::decode(body));
    }

    /// Queues `notice`, or counts it past [`MAX_KEPT`] / [`MAX_KEPT_BYTES`].
    pub fn push(&self, notice: Notice) {
        let mut q = self.lock();
        let size = notice.bytes();
        if q.kept.len() >= MAX_KEPT || q.bytes + size > MAX_KEPT_BYTES {
            q.dropped += 1;
        } else {
            q.bytes += size;
            q.kept.push(notice);
        }
    }

    /// Forgets what arrived before a statement (pglab's own queries' notices).
    pub fn clear(&self) {
        *self.lock() = Queue::default();
    }

    /// The notices received since the last `take` or `clear`, oldest first;
    /// when some were not kept, a last notice says how many.
    pub fn take(&self) -> Vec<Notice> {
        let q = std::mem::take(&mut *self.lock());
        let mut kept = q.kept;
        if q.dropped > 0 {
            kept.push(Notice::note(
                "NOTICE",
                format!(
                    "pglab: {} more notices of this statement were not kept (the console keeps {MAX_KEPT} per statement)",
                    q.dropped
                ),
            ));
        }
        kept
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A poisoned queue only means a panic elsewhere mid-push.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(fields: &[(u8, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (code, value) in fields {
            b.push(*code);
            b.extend_from_slice(value.as_bytes());
            b.push(0);
        }
        b.push(0);
        b
    }

    #[test]
    fn decodes_every_field() {
        let n = Notice::decode(&body(&[
            (b'S', "WARNING"),
            (b'V', "WARNING"),
            (b'C', "22P06"),
            (b'M', "nonstandard use of \\\\ in a string literal"),
            (
                b'H',
                "Use the escape string syntax for backslashes, e.g., E'\\\\'.",
            ),
            (b'P', "8"),
            (b'F', "scan.l"),
            (b'L', "1241"),
            (b'R', "check_string_escape_warning"),
            (b'Z', "unknown code, skipped"),
        ]));
        assert_eq!(n.severity, "WARNING");
        assert_eq!(n.sqlstate, "22P06");
        assert_eq!(n.position, Some(8));
        assert!(n.hint.as_deref().unwrap().starts_with("Use the escape"));
        assert_eq!(
            n.location.as_deref(),
            Some("check_string_escape_warning, scan.l:1241")
        );
        assert_eq!(n.detail, None);
    }

    #[test]
    fn a_cut_body_keeps_what_it_has() {
        let full = body(&[(b'S', "NOTICE"), (b'M', "drop cascades to 2 other objects")]);
        let n = Notice::decode(&full[..full.len() - 10]);
        assert_eq!(n.severity, "NOTICE");
        assert_eq!(n.message, "drop cascades to 2 other");
        assert_eq!(Notice::decode(&[]).severity, "NOTICE");
    }

    #[test]
    fn the_queue_keeps_order_and_counts_past_its_cap() {
        let q = NoticeQueue::default();
        for i in 0..MAX_KEPT + 3 {
            q.push(Notice::note("NOTICE", format!("n{i}")));
        }
        let got = q.take();
        assert_eq!(got.len(), MAX_KEPT + 1);
        assert_eq!(got[0].message, "n0");
        assert_eq!(got[MAX_KEPT - 1].message, format!("n{}", MAX_KEPT - 1));
        assert!(got[MAX_KEPT].message.contains("3 more notices"));
        assert!(q.take().is_empty());
        q.push(Notice::note("NOTICE", "stale"));
        q.clear();
        assert!(q.take().is_empty());
    }
}
