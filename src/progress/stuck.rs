//! Who looks stuck. [`Activity::from_evidence`] condenses a learner's recent
//! evidence when they act (kept in `learner_activity`); [`stuck_reason`]
//! judges it at read time, since "active for 20 minutes" depends on the
//! clock. Both are pure, so the rules are unit-tested exactly. This module
//! reads evidence ([`super::evidence`]) but knows nothing of the store.

use super::evidence::Evidence;

/// A learner is active when they did something this recently (seconds).
pub const ACTIVE_WITHIN: i64 = 5 * 60;
/// Active this long without a pass counts as stuck (seconds).
pub const NO_PROGRESS_FOR: i64 = 20 * 60;
/// A pause longer than this ends a stretch of work (seconds).
pub const STRETCH_GAP: i64 = 10 * 60;

/// What the stuck rules need to know about a learner.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Activity {
    pub last_activity_at: i64,
    /// Start of the current stretch of work, or the last pass within it.
    pub working_since: i64,
    /// The error of the three newest statements when they failed alike.
    pub repeated_error: Option<String>,
}

impl Activity {
    /// The activity after one more statement or check at `at`: a pause longer
    /// than 10 minutes starts a new stretch, and so does a pass.
    pub fn after(
        prev: Option<&Activity>,
        at: i64,
        passed: bool,
        repeated_error: Option<String>,
    ) -> Self {
        let working_since = match prev {
            Some(p) if !passed && at - p.last_activity_at <= STRETCH_GAP => p.working_since,
            _ => at,
        };
        Self {
            last_activity_at: at,
            working_since,
            repeated_error,
        }
    }

    /// Replays evidence (newest first, as stored); `None` without evidence.
    pub fn from_evidence(recent: &[Evidence]) -> Option<Self> {
        let mut activity = None;
        for (i, e) in recent.iter().enumerate().rev() {
            activity = Some(Self::after(
                activity.as_ref(),
                e.created_at,
                e.passed == Some(true),
                same_error_three_times(&recent[i..]),
            ));
        }
        activity
    }
}

/// Why the learner looks stuck at `now`, or `None`.
pub fn stuck_reason(activity: &Activity, now: i64) -> Option<String> {
    if let Some(error) = &activity.repeated_error {
        return Some(format!("same error 3 times: {error}"));
    }
    if now - activity.last_activity_at > ACTIVE_WITHIN {
        return None;
    }
    let working = now - activity.working_since;
    (working >= NO_PROGRESS_FOR).then(|| {
        format!(
            "active for {} minutes without passing a check",
            working / 60
        )
    })
}

/// The error of the three newest statements (`recent` newest first), when all
/// three failed with the same SQLSTATE and message.
pub fn same_error_three_times(recent: &[Evidence]) -> Option<String> {
    let last: Vec<&Evidence> = recent
        .iter()
        .filter(|e| e.kind == "statement")
        .take(3)
        .collect();
    if last.len() < 3 {
        return None;
    }
    let first = last[0].error.as_deref()?;
    last.iter()
        .all(|e| e.error.as_deref() == Some(first) && e.sqlstate == last[0].sqlstate)
        .then(|| first.to_string())
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

    fn judge(recent: &[Evidence]) -> Option<String> {
        stuck_reason(&Activity::from_evidence(recent)?, NOW)
    }

    #[test]
    fn three_same_errors_in_a_row_is_stuck() {
        let e = "relation \"taks\" does not exist";
        let recent = vec![
            stmt(NOW, Some(e)),
            stmt(NOW - 5, Some(e)),
            stmt(NOW - 9, Some(e)),
        ];
        let reason = judge(&recent).unwrap();
        assert!(reason.contains("same error 3 times"), "{reason}");
    }

    #[test]
    fn two_errors_or_different_errors_are_not_stuck() {
        let recent = vec![
            stmt(NOW, Some("a")),
            stmt(NOW - 5, Some("a")),
            stmt(NOW - 9, None),
        ];
        assert_eq!(judge(&recent), None);
        let recent = vec![
            stmt(NOW, Some("a")),
            stmt(NOW - 5, Some("b")),
            stmt(NOW - 9, Some("a")),
        ];
        assert_eq!(judge(&recent), None);
    }

    #[test]
    fn checks_between_errors_do_not_hide_them() {
        let recent = vec![
            stmt(NOW, Some("a")),
            check(NOW - 2, false),
            stmt(NOW - 5, Some("a")),
            stmt(NOW - 9, Some("a")),
        ];
        assert!(judge(&recent).is_some());
    }

    #[test]
    fn twenty_active_minutes_without_a_pass_is_stuck() {
        // A statement every 4 minutes for 24 minutes.
        let recent: Vec<Evidence> = (0..7).map(|i| stmt(NOW - i * 240, None)).collect();
        let reason = judge(&recent).unwrap();
        assert!(reason.contains("24 minutes"), "{reason}");
    }

    #[test]
    fn a_recent_pass_resets_the_clock() {
        let mut recent: Vec<Evidence> = (0..3).map(|i| stmt(NOW - i * 240, None)).collect();
        recent.push(check(NOW - 800, true));
        recent.extend((4..8).map(|i| stmt(NOW - i * 240, None)));
        assert_eq!(judge(&recent), None);
    }

    #[test]
    fn a_long_pause_starts_a_new_stretch() {
        let mut recent: Vec<Evidence> = (0..3).map(|i| stmt(NOW - i * 60, None)).collect();
        recent.extend((0..5).map(|i| stmt(NOW - 3600 - i * 60, None)));
        assert_eq!(judge(&recent), None);
    }

    #[test]
    fn stuck_by_time_ends_when_the_learner_stops() {
        let recent: Vec<Evidence> = (0..10).map(|i| stmt(NOW - i * 240, None)).collect();
        let activity = Activity::from_evidence(&recent).unwrap();
        assert!(stuck_reason(&activity, NOW).is_some());
        assert_eq!(stuck_reason(&activity, NOW + ACTIVE_WITHIN + 1), None);
    }

    #[test]
    fn an_inactive_learner_is_not_stuck_unless_repeating_an_error() {
        let recent: Vec<Evidence> = (0..10)
            .map(|i| stmt(NOW - 600 - i * 240, Some("x")))
            .collect();
        // Same error three times still shows: it is about their last attempts.
        assert!(judge(&recent).unwrap().contains("same error"));
        let recent: Vec<Evidence> = (0..10).map(|i| stmt(NOW - 600 - i * 240, None)).collect();
        assert_eq!(judge(&recent), None);
    }
}
