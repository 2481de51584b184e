//! Who looks stuck, from their recent evidence. Pure functions of the
//! evidence and the time, so the rules are unit-tested exactly.

use super::record::Evidence;

/// A learner is active when they did something this recently (seconds).
pub const ACTIVE_WITHIN: i64 = 5 * 60;
/// Active this long without a pass counts as stuck (seconds).
pub const NO_PROGRESS_FOR: i64 = 20 * 60;
/// A pause longer than this ends a stretch of work (seconds).
const STRETCH_GAP: i64 = 10 * 60;

/// Why the learner looks stuck, or `None`. `recent` is newest first.
pub fn stuck_reason(recent: &[Evidence], now: i64) -> Option<String> {
    same_error_three_times(recent).or_else(|| no_progress(recent, now))
}

/// The three newest statements all failed with the same error.
fn same_error_three_times(recent: &[Evidence]) -> Option<String> {
    let last: Vec<&Evidence> = recent
        .iter()
        .filter(|e| e.kind == "statement")
        .take(3)
        .collect();
    if last.len() < 3 {
        return None;
    }
    let first = last[0].error.as_deref()?;
    let same = last
        .iter()
        .all(|e| e.error.as_deref() == Some(first) && e.sqlstate == last[0].sqlstate);
    same.then(|| format!("same error 3 times: {first}"))
}

/// Active now, and working for 20 minutes or more since the stretch began or
/// since the last pass, whichever is later.
fn no_progress(recent: &[Evidence], now: i64) -> Option<String> {
    let newest = recent.first()?;
    if now - newest.created_at > ACTIVE_WITHIN {
        return None;
    }
    let mut stretch_start = newest.created_at;
    for e in recent {
        if stretch_start - e.created_at > STRETCH_GAP {
            break;
        }
        stretch_start = e.created_at;
        if e.passed == Some(true) {
            break;
        }
    }
    let minutes = (now - stretch_start) / 60;
    (now - stretch_start >= NO_PROGRESS_FOR)
        .then(|| format!("active for {minutes} minutes without passing a check"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(at: i64, error: Option<&str>) -> Evidence {
        Evidence {
            id: at,
            user_id: 1,
            exercise_id: Some("14.B.2".into()),
            kind: "statement".into(),
            sql: Some("select 1".into()),
            error: error.map(Into::into),
            sqlstate: error.map(|_| "42P01".into()),
            passed: None,
            created_at: at,
        }
    }

    fn check(at: i64, passed: bool) -> Evidence {
        Evidence {
            kind: "check".into(),
            sql: None,
            error: (!passed).then(|| "missing".into()),
            sqlstate: None,
            passed: Some(passed),
            ..stmt(at, None)
        }
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn three_same_errors_in_a_row_is_stuck() {
        let e = "relation \"taks\" does not exist";
        let recent = vec![
            stmt(NOW, Some(e)),
            stmt(NOW - 5, Some(e)),
            stmt(NOW - 9, Some(e)),
        ];
        let reason = stuck_reason(&recent, NOW).unwrap();
        assert!(reason.contains("same error 3 times"), "{reason}");
    }

    #[test]
    fn two_errors_or_different_errors_are_not_stuck() {
        let recent = vec![
            stmt(NOW, Some("a")),
            stmt(NOW - 5, Some("a")),
            stmt(NOW - 9, None),
        ];
        assert_eq!(stuck_reason(&recent, NOW), None);
        let recent = vec![
            stmt(NOW, Some("a")),
            stmt(NOW - 5, Some("b")),
            stmt(NOW - 9, Some("a")),
        ];
        assert_eq!(stuck_reason(&recent, NOW), None);
    }

    #[test]
    fn checks_between_errors_do_not_hide_them() {
        let recent = vec![
            stmt(NOW, Some("a")),
            check(NOW - 2, false),
            stmt(NOW - 5, Some("a")),
            stmt(NOW - 9, Some("a")),
        ];
        assert!(stuck_reason(&recent, NOW).is_some());
    }

    #[test]
    fn twenty_active_minutes_without_a_pass_is_stuck() {
        // A statement every 4 minutes for 24 minutes.
        let recent: Vec<Evidence> = (0..7).map(|i| stmt(NOW - i * 240, None)).collect();
        let reason = stuck_reason(&recent, NOW).unwrap();
        assert!(reason.contains("24 minutes"), "{reason}");
    }

    #[test]
    fn a_recent_pass_resets_the_clock() {
        let mut recent: Vec<Evidence> = (0..3).map(|i| stmt(NOW - i * 240, None)).collect();
        recent.push(check(NOW - 800, true));
        recent.extend((4..8).map(|i| stmt(NOW - i * 240, None)));
        assert_eq!(stuck_reason(&recent, NOW), None);
    }

    #[test]
    fn a_long_pause_starts_a_new_stretch() {
        let mut recent: Vec<Evidence> = (0..3).map(|i| stmt(NOW - i * 60, None)).collect();
        recent.extend((0..5).map(|i| stmt(NOW - 3600 - i * 60, None)));
        assert_eq!(stuck_reason(&recent, NOW), None);
    }

    #[test]
    fn an_inactive_learner_is_not_stuck() {
        let recent: Vec<Evidence> = (0..10)
            .map(|i| stmt(NOW - 600 - i * 240, Some("x")))
            .collect();
        // Same error three times still shows: it is about their last attempts.
        assert!(stuck_reason(&recent, NOW).unwrap().contains("same error"));
        let recent: Vec<Evidence> = (0..10).map(|i| stmt(NOW - 600 - i * 240, None)).collect();
        assert_eq!(stuck_reason(&recent, NOW), None);
    }
}
